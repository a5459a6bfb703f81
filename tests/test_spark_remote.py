"""Ratings at a URI (``hdfs://``, ``s3a://``, ...): read through the Spark session's Hadoop
file system, found by the same rules as on disk. Tested with ``file://`` URIs, which go
through Hadoop's ``FileSystem`` exactly as ``hdfs://`` does: a folder at a URI loads to the
same ratings, report, attribute tables and fingerprint as the same folder on disk."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from engine import load_dataset
from engine.data.archive import open_folder
from engine.data.types import LoadOptions
from engine.errors import DataError
from engine.spark.remote import HadoopPath, folder_archive, is_uri, location
from tests.test_spark_support import spark_fixture, synthetic_fixture  # noqa: F401  (fixtures)

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def test_uris_are_told_from_local_paths_and_named_as_paths_are():
    assert is_uri("hdfs://nn:8020/data/ml-25m/") and is_uri("s3a://bucket/ratings.parquet")
    assert is_uri("file:///tmp/data") and is_uri("abfss://c@account.dfs.core.windows.net/d")
    assert not is_uri("C:\\data\\ratings.csv") and not is_uri("ratings.csv")
    assert not is_uri(Path("/tmp/data")) and not is_uri(None)
    folder = HadoopPath("hdfs://nn:8020/data/ml-25m/")
    assert folder.name == "ml-25m" and HadoopPath("s3a://bucket").name == ""
    file = folder / "ratings.csv"
    assert file.uri == "hdfs://nn:8020/data/ml-25m/ratings.csv" and file.suffix == ".csv"
    assert file.parent.name == "ml-25m" and HadoopPath("s3a://bucket").parent.uri == "s3a://bucket"
    assert location("hdfs://nn/x") == HadoopPath("hdfs://nn/x") and location(file) is file
    assert location("/tmp/x") == Path("/tmp/x")


def _report(inputs) -> dict:
    report = inputs.ratings.report
    return {"files": report.files, "read": report.rows_read, "kept": report.rows_kept,
            "rejected": report.rejected, "scale": report.scale,
            "warnings": report.warnings}  # fmt: skip


def test_a_folder_at_a_uri_loads_as_the_same_folder_on_disk(spark, synthetic_folder):
    from engine.spark.inputs import load_inputs, load_kept_inputs
    from engine.spark.report import fingerprint_in_spark

    uri = synthetic_folder.as_uri()
    assert uri.startswith("file:///")
    assert folder_archive(HadoopPath(uri)).members == open_folder(synthetic_folder).members
    local, remote = load_kept_inputs(synthetic_folder), load_kept_inputs(uri)
    assert remote.name == local.name == synthetic_folder.name
    assert remote.synthetic and local.synthetic  # ground_truth.json read through Spark too
    assert _report(remote) == _report(local)
    assert remote.ratings.report.rows_kept == len(load_dataset(synthetic_folder).ratings)
    pd.testing.assert_frame_equal(remote.users, local.users)
    pd.testing.assert_frame_equal(remote.items, local.items)
    assert fingerprint_in_spark(remote.ratings) == fingerprint_in_spark(local.ratings)
    # --engine spark without --keep-in-spark: collected, the same data as load_dataset's
    collected, expected = load_inputs(uri), load_dataset(synthetic_folder)
    assert collected.fingerprint == expected.fingerprint and collected.synthetic
    pd.testing.assert_frame_equal(collected.ratings, expected.ratings)


def test_a_parquet_rating_folder_and_an_attribute_file_given_by_uri(
    spark, synthetic_folder, tmp_path
):
    from engine.spark.inputs import load_kept_inputs

    ratings = pd.read_csv(synthetic_folder / "ratings.csv")
    spark.createDataFrame(ratings).repartition(3).write.parquet(str(tmp_path / "ratings"))
    assert len(list((tmp_path / "ratings").glob("*.parquet"))) == 3
    kept = load_kept_inputs(ratings=(tmp_path / "ratings").as_uri(),
                            users=(synthetic_folder / "users.csv").as_uri())  # fmt: skip
    expected = load_kept_inputs(ratings=synthetic_folder / "ratings.csv",
                                users=synthetic_folder / "users.csv")  # fmt: skip
    assert kept.ratings.report.rows_kept == expected.ratings.report.rows_kept == len(ratings)
    assert kept.items is None and len(kept.users) == 400
    pd.testing.assert_frame_equal(kept.users, expected.users)


def test_movielens_100k_at_a_uri_loads_as_on_disk(spark, ml100k):
    from engine.spark.inputs import load_kept_inputs

    local, remote = load_kept_inputs(ml100k), load_kept_inputs(ml100k.as_uri())
    assert _report(remote) == _report(local) and remote.ratings.report.rows_kept == 100_000
    pd.testing.assert_frame_equal(remote.items, local.items)
    assert remote.users is not None and len(remote.users) == 943


def test_what_cannot_be_read_at_a_uri_is_said_in_one_sentence(spark, synthetic_folder, tmp_path):
    from engine.spark.inputs import load_inputs, load_kept_inputs

    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(DataError) as raised:
        load_kept_inputs(missing)
    assert str(raised.value) == (
        f"{missing} does not exist: check the URI (Spark reads it with the file system of its "
        "scheme, configured by spark.hadoop.* settings)."
    )
    (tmp_path / "ratings.csv.gz").write_bytes(gzip.compress(b"user,item,rating\nu1,i1,4\n"))
    packed = (tmp_path / "ratings.csv.gz").as_uri()
    with pytest.raises(DataError) as raised:
        load_inputs(ratings=packed)  # in memory load_dataset would read it; not at a URI
    assert str(raised.value) == (
        f"{packed} cannot be read at its URI: Spark reads CSV/TSV/Parquet only, not gzip. Only "
        "Spark reads a URI: give a CSV, TSV or Parquet rating file there (--ratings URI), or "
        "copy the data to a local path."
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("nothing here\n")
    with pytest.raises(DataError, match=r"holds no rating file Spark reads \(ratings.csv"):
        load_kept_inputs(empty.as_uri())
    # the row limit: counted by Spark at a URI, the same sentence as on disk
    small = LoadOptions(max_rows=1_000)
    with pytest.raises(DataError) as on_disk:
        load_kept_inputs(synthetic_folder, options=small)
    with pytest.raises(DataError) as at_uri:
        load_kept_inputs(synthetic_folder.as_uri(), options=small)
    assert str(at_uri.value) == str(on_disk.value) and "1,000" in str(on_disk.value)
