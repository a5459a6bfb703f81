"""Messy real exports (issue #14): what the corpus files load to, beyond 'no traceback'."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import ConfigError, DataError, DataFile, LoadOptions, load_dataset
from engine.data.timestamps import parse_timestamps
from engine.data.types import RatingScale

CORPUS = Path(__file__).parent / "data" / "bad"


def load(name: str, **options: object):
    return load_dataset(CORPUS / name, options=LoadOptions(**options) if options else None)


@pytest.mark.parametrize(
    ("low", "high", "step", "expected"),
    [
        (1, 5, 1.0, 4.0),  # 1 + 0.75 * 4 = 4
        (0.5, 5, 0.5, 4.0),  # 3.875 rounded up to the half step
        (0, 5, 1.0, 4.0),  # 3.75 -> 4
        (1, 7, 1.0, 6.0),  # 5.5 -> 6
        (1, 10, 1.0, 8.0),  # 7.75 -> 8
        (0, 100, 1.0, 75.0),
        (-1, 1, 1.0, 1.0),  # thumbs: 0.5 -> 1
        (1, 5, None, 4.0),  # continuous: not rounded
        (0, 1, None, 0.75),
    ],
)
def test_relevance_threshold_is_the_top_quarter_rounded_up_to_the_step(low, high, step, expected):
    assert RatingScale(low, high, step, "given").relevance_threshold() == expected


def test_load_report_states_the_relevance_threshold():
    data = load("one_half_star.csv")
    assert data.report.to_dict()["relevance_threshold"] == 4.0


def test_out_of_range_dates_become_missing_and_the_rest_parse():
    data = load("dates_out_of_range.csv")
    stamps = data.ratings["timestamp"]
    assert stamps.isna().sum() == 2
    years = pd.to_datetime(stamps.dropna(), unit="s").dt.year
    assert set(years) == {2020}


def test_non_finite_and_huge_epoch_numbers_become_missing():
    data = load("timestamps_not_finite.csv")
    assert data.ratings["timestamp"].isna().sum() == 3
    assert data.ratings["timestamp"].dropna().between(1_600_000_000, 1_600_000_200).all()


def test_mixed_second_and_millisecond_timestamps_are_each_read_in_their_unit():
    data = load("timestamps_mixed_units.csv")
    # every value, seconds or milliseconds, lands within 120 s of 1.6e9 (Sept 2020)
    assert data.ratings["timestamp"].between(1_600_000_000, 1_600_000_120).all()


def test_parse_timestamps_counts_units_per_value():
    parsed = parse_timestamps(pd.Series([1.6e9, 1.6e12, 1.6e15, 1.6e18, 1e30]))
    assert parsed.units == {
        "seconds": 1,
        "milliseconds": 1,
        "microseconds": 1,
        "nanoseconds": 1,
    }
    assert parsed.seconds.iloc[:4].tolist() == [1_600_000_000] * 4
    assert parsed.out_of_range == 1 and parsed.seconds.isna().iat[4]


def test_a_parquet_datetime_in_year_2500_does_not_overflow():
    data = load("year_2500.parquet")
    assert data.ratings["timestamp"].isna().sum() == 1
    assert pd.to_datetime(data.ratings["timestamp"].dropna(), unit="s").dt.year.eq(2020).all()


def test_a_minutes_column_named_like_time_is_not_the_timestamp():
    data = load("watch_time_minutes.csv")
    assert "timestamp" not in data.report.files[0].columns
    assert data.ratings["timestamp"].isna().all()


def test_a_field_longer_than_the_csv_module_limit_is_read_and_the_limit_restored():
    before = csv.field_size_limit()
    data = load("long_review_field.csv")
    assert data.n_ratings == 120
    assert csv.field_size_limit() == before


def test_decimal_commas_are_read_as_decimals():
    data = load("european_decimal_comma.csv")
    raw = (CORPUS / "european_decimal_comma.csv").read_text().splitlines()[1:]
    expected = sorted(float(line.split(";")[2].replace(",", ".")) for line in raw)
    assert sorted(data.ratings["rating"]) == expected
    assert data.report.files[0].delimiter == ";"
    assert (data.ratings["rating"] % 1 == 0.5).any()


def test_a_file_mixing_whole_and_decimal_comma_ratings_keeps_the_halves():
    data = load("european_mixed_decimals.csv")
    assert data.report.rows_rejected == 0
    assert (data.ratings["rating"] % 1 == 0.5).sum() > 30


def test_an_explicit_point_decimal_rejects_comma_ratings_and_says_why():
    data = load("european_mixed_decimals.csv", decimal=".")
    halves = data.report.rejected["non_numeric_rating"]
    assert halves > 30
    assert any("rejected as non-numeric" in w for w in data.report.warnings)


def test_delimiter_can_be_forced():
    with pytest.raises(DataError, match=r"has only one column|no recognisable"):
        load("european_decimal_comma.csv", delimiter="\t")


def test_comma_cannot_be_both_delimiter_and_decimal_mark():
    with pytest.raises(ConfigError, match="both the delimiter and the decimal mark"):
        LoadOptions(delimiter=",", decimal=",")


def test_infinite_scale_is_refused():
    with pytest.raises(ConfigError, match="both finite"):
        LoadOptions(scale=(-np.inf, np.inf))


def test_headerless_file_whose_item_column_has_few_values_is_read_right_and_said():
    data = load("headerless_few_items.csv")
    assert data.report.files[0].columns == {
        "rating": "column_3",
        "user": "column_1",
        "item": "column_2",
    }
    assert data.report.rows_rejected == 0  # taking the item for the rating made duplicates
    assert any("guessed from their content" in w for w in data.report.warnings)


def test_list_valued_parquet_genres_are_multi_valued():
    data = load("list_genres.zip")
    genres = set(data.items["genres"])
    assert genres == {("Action", "Comedy"), ("Drama",)}


def test_list_valued_user_column_is_left_out_with_a_warning(tmp_path):
    users = pd.DataFrame({"user_id": ["u1", "u2"], "langs": [["en", "fr"], ["de"]]})
    users.to_parquet(tmp_path / "users.parquet")
    data = load_dataset(ratings=CORPUS / "one_half_star.csv", users=tmp_path / "users.parquet")
    assert "langs" not in data.users.columns
    assert any("langs" in w and "hold lists" in w for w in data.report.warnings)


def test_excel_reads_the_ratings_sheet_and_another_can_be_named():
    data = load("ratings.xlsx")
    expected = load("one_half_star.csv")  # same rows but for the half star in row 1
    assert data.n_ratings == expected.n_ratings == 120
    assert data.report.files[0].format == "excel"
    with pytest.raises(DataError, match=r"no sheet named 'Sheet9' \(sheets: notes, ratings\)"):
        load("ratings.xlsx", sheet="Sheet9")
    with pytest.raises(DataError, match=r"only one column|no recognisable"):
        load("ratings.xlsx", sheet="notes")


def test_json_forms_load_the_same_ratings():
    frames = [
        load(name).ratings
        for name in ("ratings.json", "ratings_api_export.json", "ratings.jsonl", "ratings.xlsx")
    ]
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])


def test_deeply_nested_json_is_one_sentence():
    with pytest.raises(DataError, match="nests JSON deeper"):
        load_dataset(DataFile("deep.json", b"[" * 100_000 + b"]" * 100_000))


def test_json_over_the_row_limit_is_refused():
    records = json.dumps([{"user": f"u{k}", "item": "i1", "rating": 3} for k in range(20)])
    with pytest.raises(DataError, match="20 records, over the row limit of 10"):
        load_dataset(DataFile("r.json", records.encode()), options=LoadOptions(max_rows=10))


def test_folder_prefers_data_extensions_and_refuses_two_candidates(tmp_path):
    (tmp_path / "ratings.bak").write_text("junk")
    (tmp_path / "ratings.R").write_text("x <- 1")
    (tmp_path / "ratings.csv").write_bytes((CORPUS / "one_half_star.csv").read_bytes())
    data = load_dataset(tmp_path)
    assert data.report.files[0].name.endswith("ratings.csv")
    assert any("ratings.R, ratings.bak were not read" in w for w in data.report.warnings)
    (tmp_path / "ratings.parquet").write_bytes((CORPUS / "year_2500.parquet").read_bytes())
    with pytest.raises(DataError, match=r"2 files that could be the ratings \(ratings.csv, "):
        load_dataset(tmp_path)


def test_a_single_half_star_among_whole_stars_is_pointed_out():
    data = load("one_half_star.csv")
    assert data.scale.low == 0.5 and data.scale.step == 0.5
    assert any("Only 1 of 120 ratings" in w for w in data.report.warnings)


def test_the_same_column_for_two_fields_is_refused():
    from engine import ColumnMapping

    with pytest.raises(DataError, match="gives column 'user_id' to both user and item"):
        load_dataset(
            CORPUS / "one_half_star.csv",
            mapping=ColumnMapping(user="user_id", item="user_id"),
        )


def test_whole_float_ids_lose_their_point_even_beside_a_fraction():
    ids = set(load("float_ids.parquet").ratings["item_id"])
    assert "1.5" in ids and "11" in ids and "11.0" not in ids


def test_binary_parquet_ids_are_decoded_and_invalid_bytes_kept_escaped():
    data = load("binary_ids.parquet")
    assert set(data.ratings["user_id"]) <= {f"u{k}" for k in range(1, 41)}
    assert data.ratings["item_id"].str.startswith("\\xffi").all()


def test_a_trailing_delimiter_does_not_shift_the_columns():
    data = load("trailing_delimiter.csv")
    assert data.ratings["user_id"].str.startswith("u").all()
    assert data.ratings["rating"].between(1, 5).all()
