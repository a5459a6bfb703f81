import math

from engine.data import delimiter_name, files_table, rejected_table
from engine.data.describe import DELIMITER_NAMES, example_text
from engine.data.types import DELIMITERS, FileReport, LoadReport, RatingScale


def _report() -> LoadReport:
    files = [
        FileReport("ratings", "mine.tsv", "text", "utf-8", "\t", True, {"user": "who"}),
        FileReport("items", "items.parquet", "parquet"),
    ]
    return LoadReport(
        files=files, rows_read=4, rows_kept=2, rejected={"non_numeric_rating": 2},
        examples={"non_numeric_rating": [{"row": 3, "user_id": "u1", "rating": "abc"},
                                 {"row": 4, "user_id": "u2", "rating": math.nan}]},
        duplicate_policy="mean", scale=RatingScale(1, 5, 1, "given"),
    )  # fmt: skip


def test_every_supported_delimiter_has_a_name_and_none_is_a_dash():
    assert set(DELIMITER_NAMES) == set(DELIMITERS)
    assert delimiter_name("\t") == "tab"
    assert delimiter_name(None) == "—"
    assert delimiter_name("\x1f") == "'\\x1f'"


def test_files_table_shows_names_and_dashes_never_none_or_a_raw_tab():
    table = files_table(_report())
    assert table.to_dict("records") == [
        {"role": "ratings", "file": "mine.tsv", "format": "text", "encoding": "utf-8",
         "delimiter": "tab", "header": "yes", "columns": "user=who"},
        {"role": "items", "file": "items.parquet", "format": "parquet", "encoding": "—",
         "delimiter": "—", "header": "—", "columns": "—"},
    ]  # fmt: skip


def test_rejected_rows_read_as_rows_with_their_values():
    example = {"row": 3, "user_id": "u1", "rating": None}
    assert example_text(example) == "row 3: user_id=u1, rating=—"
    table = rejected_table(_report())
    assert list(table.columns) == ["reason", "rows", "examples"]
    assert table["rows"].tolist() == [2]
    assert table["examples"].iat[0] == "row 3: user_id=u1, rating=abc; row 4: user_id=u2, rating=—"
