"""Rating files read by Spark: the same rows kept, the same rejections, the same scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data import ColumnMapping, LoadOptions, load_dataset
from engine.data.validate import detect_scale
from tests.test_spark_support import spark_fixture  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]

CSV = """user_id,item_id,rating,timestamp
u1,i1,5,100
u1,i2,3,101
u2,i1,4,102
u2,i2,2,103
u3,i1,1,104
u3,i3,4,105
,i2,3,106
u4,,3,107
u4,i1,abc,108
u4,i2,9,109
u1,i1,2,90
u2,i2,5,200
u3, i3 ,3,150
u4,i3,2,110
u5,i2,4.0,111
"""


@pytest.mark.parametrize("duplicates", ["latest", "mean"])
def test_spark_load_keeps_and_rejects_what_load_dataset_does(spark, tmp_path, duplicates):
    from engine.spark.load import load_ratings

    path = tmp_path / "ratings.csv"
    path.write_text(CSV, encoding="utf-8")
    options = LoadOptions(duplicates=duplicates)
    expected = load_dataset(path, options=options)
    loaded = load_ratings(path, options=options)
    got = loaded.to_rating_data()
    pd.testing.assert_frame_equal(got.ratings, expected.ratings)
    assert got.fingerprint == expected.fingerprint
    mine, theirs = loaded.report, expected.report
    assert mine.rows_read == theirs.rows_read == 15
    assert mine.rejected == theirs.rejected
    assert mine.examples == theirs.examples
    assert mine.scale == theirs.scale
    assert mine.rows_kept + mine.rows_rejected == mine.rows_read
    users = loaded.users.toPandas().sort_values("u")
    assert users["user_id"].tolist() == sorted(expected.ratings["user_id"].unique())
    assert users["u"].tolist() == list(range(len(users)))


def test_spark_load_reads_parquet_and_blank_separated_text(spark, tmp_path):
    from engine.spark.load import load_ratings

    frame = pd.DataFrame({"user": ["a", "a", "b", "b"], "movie": ["x", "y", "x", "z"],
                          "stars": [4.5, 3.0, 1.0, 2.5]})  # fmt: skip
    frame.to_parquet(tmp_path / "r.parquet")
    got = load_ratings(tmp_path / "r.parquet").to_rating_data()
    expected = load_dataset(tmp_path / "r.parquet")
    pd.testing.assert_frame_equal(got.ratings, expected.ratings)
    assert got.scale == expected.scale  # half stars: 0.5-5, step 0.5
    (tmp_path / "r.txt").write_text("1  10 5\n1 11   3\n2 10 4\n2\t12 1\n", encoding="utf-8")
    mapping = ColumnMapping(user="column_1", item="column_2", rating="column_3")
    got = load_ratings(tmp_path / "r.txt", mapping=mapping).to_rating_data()
    assert got.ratings["rating"].tolist() == [5.0, 3.0, 4.0, 1.0]
    assert got.ratings["item_id"].tolist() == ["10", "11", "10", "12"]


def test_weighted_scale_detection_equals_detect_scale():
    rng = np.random.default_rng(0)
    for values in (rng.integers(1, 6, 500), rng.integers(1, 11, 500) / 2, rng.random(300) * 7,
                   np.r_[rng.integers(1, 6, 990), [7] * 10]):  # fmt: skip
        values = values.astype(float)
        distinct, counts = np.unique(values, return_counts=True)
        for options in (LoadOptions(), LoadOptions(scale=(0, 10))):
            assert detect_scale(distinct, options, counts) == detect_scale(values, options)
