"""Rating files read by Spark: the same rows kept, the same rejections, the same scale."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.data import ColumnMapping, LoadOptions, load_dataset
from engine.data.validate import detect_scale
from tests.conftest import rare_half_step_and_lookalike_lines
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


#: Every rejection reason, one malformed row (more fields than the header) in the middle,
#: an unused column, and a column mapping needed (no known names).
MESSY = """uid;movie;stars;when;note
u1;i1;5;1600000100;a
u1;i2;3;1600000101;a
u2;i1;4;1600000102;a
u2;i2;2;1600000103;a
u3;i1;1;1600000104;a;extra
u3;i3;4;1600000105;a
;i2;3;1600000106;a
u4;;3;1600000107;a
u4;i1;abc;1600000108;a
u4;i2;9;1600000109;a
u1;i1;2;1600000090;a
u2;i2;5;1600000200;a
u3; i3 ;3;1600000150;a
u4;i3;2;1600000110;a
u5;i2;4.0;1600000111;a
"""


def _cli_args(path, *options: str):
    from engine.cli import build_parser

    return build_parser().parse_args(["evaluate", str(path), "--engine", "spark", *options])


def _same_as_load_dataset(got, expected) -> None:
    """Equal data, fingerprint and load report (files, counts, examples, warnings)."""
    pd.testing.assert_frame_equal(got.ratings, expected.ratings)
    for table in ("users", "items"):
        mine, theirs = getattr(got, table), getattr(expected, table)
        assert (mine is None) == (theirs is None)
        if theirs is not None:
            pd.testing.assert_frame_equal(mine, theirs)
    assert got.fingerprint == expected.fingerprint
    assert got.report.to_dict() == expected.report.to_dict()
    for name in ("name", "scale", "synthetic"):
        assert getattr(got, name) == getattr(expected, name)


SCALE_AND_TIMES = ["--columns", "user=uid,item=movie,rating=stars,timestamp=when", "--scale", "1,5",
                   "--sheet", "ratings"]  # fmt: skip
MEAN_AND_DELIMITER = ["--columns", "user=uid,item=movie,rating=stars", "--duplicates", "mean",
                      "--delimiter", ";"]  # fmt: skip


@pytest.mark.parametrize(
    ("options", "folder"),
    [(SCALE_AND_TIMES, False), (MEAN_AND_DELIMITER, True)],
    ids=["file-scale-latest", "folder-with-attributes-mean"],
)
def test_cli_reads_the_ratings_with_spark_as_load_dataset(spark, tmp_path, options, folder, capsys):
    """A messy file alone, or as ``ratings.csv`` of a folder with user and item tables.

    ``--delimiter`` applies to every table of the folder, as in ``load_dataset``.
    """
    from engine.cli import load_inputs

    path = tmp_path / "messy.csv"
    if folder:
        path = tmp_path / "shop"
        path.mkdir()
        (path / "users.csv").write_text("user_id;age\nu1;30\nu2;40\nu9;50\n", encoding="utf-8")
        (path / "items.csv").write_text("item_id;title\ni1;A\ni2;B\n", encoding="utf-8")
    (path / "ratings.csv" if folder else path).write_text(MESSY, encoding="utf-8")
    args = _cli_args(path, *options)
    got = load_inputs(args)
    assert "read in memory" not in capsys.readouterr().err  # read by Spark
    args.engine = "surprise"
    expected = load_inputs(args)
    _same_as_load_dataset(got, expected)
    report = got.report
    assert report.rows_read == 15 and report.rows_kept + report.rows_rejected == 15
    reasons = {"malformed_row", "missing_user_id", "missing_item_id", "non_numeric_rating",
               "duplicate"} | ({"out_of_scale"} if "--scale" in options else set())  # fmt: skip
    assert set(report.rejected) == reasons
    assert report.examples["malformed_row"] == [{"line": 6, "fields": 6}]
    if folder:
        assert got.users is not None and got.items is not None
        assert report.attribute_coverage  # u9 rated nothing; some rated items have no title


def test_cli_reads_movielens_100k_with_spark_as_load_dataset(spark, ml100k, capsys):
    from engine.cli import load_inputs

    args = _cli_args(ml100k)
    got = load_inputs(args)
    assert "read in memory" not in capsys.readouterr().err
    expected = load_dataset(ml100k)
    _same_as_load_dataset(got, expected)
    assert got.report.files[0].format == "movielens-100k" and got.n_ratings == 100_000
    assert got.users is not None and got.items is not None


def test_formats_spark_does_not_read_are_read_in_memory_saying_so(tmp_path):
    """Falls back before any Spark job: no session is needed."""
    from engine.spark.inputs import load_inputs

    lines = [("u1", "i1", 5), ("u1", "i2", 3), ("u2", "i1", 4), ("u2", "i2", 1)]
    (tmp_path / "r.dat").write_text("".join(f"{u}::{i}::{r}\n" for u, i, r in lines))
    records = [{"user": u, "item": i, "rating": r} for u, i, r in lines]
    pd.DataFrame(records).to_json(tmp_path / "r.json", orient="records")
    (tmp_path / "r.csv").write_text("user;item;rating\n" + "".join(
        f"{u};{i};{r},5\n" for u, i, r in lines))  # fmt: skip
    ml1m = tmp_path / "ml-1m"  # MovieLens 1M's layout: ratings.dat is '::' text
    ml1m.mkdir()
    (ml1m / "ratings.dat").write_text("".join(f"{u[1]}::{i[1]}::{r}::9{r}8000000\n"
                                              for u, i, r in lines))  # fmt: skip
    (ml1m / "movies.dat").write_text("1::Toy Story (1995)::Animation\n2::Heat (1995)::Action\n")
    said = []
    for name, what in (("r.dat", "not '::'"), ("r.json", "not JSON"), ("r.csv", "not commas"),
                       ("ml-1m", "not '::'")):  # fmt: skip
        got = load_inputs(tmp_path / name, say=said.append)
        shown = "ratings.dat" if name == "ml-1m" else name
        assert said[-1].startswith(f"engine: {shown} read in memory: Spark reads ")
        assert said[-1].endswith(f"{what}.")
        expected = load_dataset(tmp_path / name)
        assert got.fingerprint == expected.fingerprint
        assert got.report.to_dict() == expected.report.to_dict()
    assert len(said) == 4


def test_max_rows_is_checked_before_spark_reads_as_load_dataset_does(tmp_path):
    from engine.errors import DataError
    from engine.spark.inputs import load_inputs

    path = tmp_path / "ratings.csv"
    path.write_text(CSV, encoding="utf-8")
    options = LoadOptions(max_rows=10)
    with pytest.raises(DataError) as theirs:
        load_dataset(path, options=options)
    with pytest.raises(DataError) as mine:
        load_inputs(path, options=options, say=pytest.fail)
    assert str(mine.value) == str(theirs.value)
    assert "over the row limit of 10" in str(mine.value)


def test_spark_load_gives_the_half_step_and_lookalike_id_warnings(spark, tmp_path):
    """The same three warnings, word for word, as ``load_dataset`` (hand-counted there)."""
    from engine.spark.load import load_ratings

    path = tmp_path / "ratings.csv"
    lines = ["user_id,item_id,rating,timestamp", *rare_half_step_and_lookalike_lines()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    expected = load_dataset(path).report.warnings
    assert len(expected) == 3
    assert load_ratings(path).report.warnings == expected


@pytest.mark.parametrize("duplicates", ["first", "last"])
def test_rows_are_numbered_across_partitions_as_in_the_file(spark, tmp_path, duplicates):
    """Split into many partitions, row numbers (examples, first/last duplicate) stay the file's.

    ``first``/``last`` pick a duplicate by its row number alone, and each reason's examples
    are the first five rows in file order: a wrong partition offset changes both.
    """
    from engine.spark.load import _read, load_ratings

    rng = np.random.default_rng(1)
    lines = ["user_id,item_id,rating"]
    for n in range(400):
        user, item, rating = f"u{rng.integers(30)}", f"i{rng.integers(20)}", rng.integers(1, 6)
        kind = n % 37
        lines.append(f"{user},{item},{rating},extra" if kind == 5 else  # malformed
                     f"{user},{item},x{rating}" if kind == 11 else  # not a number
                     f"{user},{item},{rating}")  # fmt: skip
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = LoadOptions(duplicates=duplicates)
    before = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "512")
    try:
        assert _read(spark, path, options, None)[0].rdd.getNumPartitions() > 4
        loaded = load_ratings(path, options=options)
        got = loaded.to_rating_data()
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", before)
    expected = load_dataset(path, options=options)
    assert expected.report.rejected["duplicate"] > 50
    pd.testing.assert_frame_equal(got.ratings, expected.ratings)
    assert loaded.report.rejected == expected.report.rejected
    assert loaded.report.examples == expected.report.examples


def test_text_that_stops_being_utf8_past_the_checked_start_is_refused(spark, tmp_path):
    """Past the first MiB, a Latin-1 'é' in an id would be read as U+FFFD: refused, with the row."""
    from engine.errors import DataError
    from engine.spark.inputs import HEAD_BYTES, load_inputs

    good = [f"u{n % 500},i{n % 97},{1 + n % 5}" for n in range(HEAD_BYTES // 10)]
    body = "\n".join(["user_id,item_id,rating", *good]).encode() + b"\n"
    assert len(body) > HEAD_BYTES
    path = tmp_path / "late.csv"
    path.write_bytes(body + "Ren\xe9,i1,4\nRen\xe9,i2,5\n".encode("latin-1"))
    with pytest.raises(DataError, match=rf"late.csv is not UTF-8 throughout: 2 rows hold ids "
                                        rf"with bytes that are not UTF-8 \(the first at row "
                                        rf"{len(good) + 1:,},"):  # fmt: skip
        load_inputs(path, say=pytest.fail)  # read by Spark, not in memory
