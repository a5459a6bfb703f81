"""Unusable input gives one clear DataError sentence naming the file, never a traceback."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from engine import DataError, DataFile, LoadOptions, load_dataset
from tests.conftest import zip_bytes

RATINGS = "user_id,item_id,rating\nu1,i1,4\nu1,i2,2\nu2,i1,5\nu2,i2,3\n"


def bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ratings.csv", b"0" * 50_000_000)  # compresses ~1000-fold
    return buffer.getvalue()


def traversal() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ratings.csv", RATINGS)
        zf.writestr("../../etc/evil.csv", RATINGS)
    return buffer.getvalue()


CASES = {
    "empty": (b"", "is empty"),
    "blank_lines_only": (b"\n\n  \n", "is empty"),
    "header_only": (b"user_id,item_id,rating\n", "holds only a header"),
    "binary_garbage": (os.urandom(4096) + b"\x00" * 10, "is binary"),
    "control_characters": (bytes(range(1, 32)) * 50, "is binary"),
    "one_column": (b"user\nu1\nu2\nu3\n", "has only one column"),
    "unknown_delimiter": (b"u1#i1#4\nu1#i2#3\nu2#i1#5\n", "separates its fields with '#'"),
    "two_columns": (b"user,item\nu1,i1\nu2,i2\n", "no recognisable rating column"),
    "all_text_ratings": (
        b"user,item,rating\nu1,i1,good\nu2,i2,bad\n",
        "no row with a user id, an item id and a numeric rating",
    ),
    "implicit_only": (
        b"user,item,rating\nu1,i1,1\nu1,i2,1\nu2,i1,1\nu3,i3,1\n",
        "looks like implicit feedback",
    ),
    "single_user": (b"user,item,rating\nu1,i1,1\nu1,i2,5\nu1,i3,3\n", "only 1 user"),
    "single_item": (b"user,item,rating\nu1,i1,1\nu2,i1,5\nu3,i1,3\n", "only 1 item"),
    "zip_without_ratings": (zip_bytes({"notes.txt": "hello"}), "holds no recognisable ratings"),
    "zip_path_traversal": (traversal(), "points outside the archive"),
    "zip_bomb": (bomb(), "likely zip bomb"),
    "truncated_zip": (zip_bytes({"ratings.csv": RATINGS * 50})[:120], "not a readable zip"),
    "excel_workbook": (zip_bytes({"xl/workbook.xml": "<x/>"}), "Excel workbook"),
    "corrupt_parquet": (b"PAR1" + b"\x00garbage" * 20, "not a readable Parquet"),
    "corrupt_gzip": (b"\x1f\x8b\x08\x00" + b"\xff" * 40, "not a readable gzip"),
    "unbalanced_quote": (
        b'user,item,rating\nu1,"i1,4\n' + b"u2,i2,3\n" * 3,
        "quotes are balanced",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_gives_one_sentence_naming_it(case):
    content, fragment = CASES[case]
    name = f"{case}.bin"
    with pytest.raises(DataError) as caught:
        load_dataset(DataFile(name, content))
    message = str(caught.value)
    assert fragment in message
    assert name in message
    assert "\n" not in message
    assert message.endswith(".")


def test_archive_over_the_size_limit_is_refused_before_unpacking():
    archive = zip_bytes({"ratings.csv": RATINGS * 1000})
    with pytest.raises(DataError, match="would unpack to 55,000 bytes, over the limit"):
        load_dataset(DataFile("big.zip", archive), options=LoadOptions(max_archive_bytes=10_000))


def test_user_file_whose_ids_match_no_rating_is_refused(tmp_path):
    (tmp_path / "ratings.csv").write_text(RATINGS)
    (tmp_path / "users.csv").write_text("user_id,gender\n1,F\n2,M\n")
    with pytest.raises(DataError, match=r"None of the 2 ids in .*users.csv .* matches a user id"):
        load_dataset(tmp_path)


def test_missing_path_and_mapping_to_absent_column(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope.csv")
    from engine import ColumnMapping

    with pytest.raises(DataError, match="has no column 'stars' for the rating field"):
        load_dataset(DataFile("r.csv", RATINGS.encode()), mapping=ColumnMapping(rating="stars"))


def test_nothing_given():
    with pytest.raises(DataError, match="No rating data given"):
        load_dataset()


def test_folder_without_rating_file(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(DataError, match="holds no recognisable ratings file"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(
    ("rows", "reason", "count"),
    [
        (["u3,i3,terrible"], "non_numeric_rating", 1),
        (["u3,i3,NaN", "u3,i4,nan"], "non_numeric_rating", 2),
        (["u3,i3,-2"], "out_of_scale", 1),
        (["u3,i3,6"], "out_of_scale", 1),
        ([",i3,4", "u3,,4"], "missing_user_id", 1),
        (["u1,i1,3", "u1,i1,1"], "duplicate", 2),
    ],
)
def test_bad_rows_are_counted_not_fatal(rows, reason, count):
    text = RATINGS + "\n".join(rows) + "\n"
    data = load_dataset(DataFile("r.csv", text.encode()), options=LoadOptions(scale=(1, 5)))
    assert data.report.rejected[reason] == count
    assert data.report.rows_kept + data.report.rows_rejected == data.report.rows_read
    assert data.report.rows_read == 4 + len(rows)
