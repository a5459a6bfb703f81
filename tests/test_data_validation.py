"""Validation keeps, rejects and de-duplicates rows with hand-checked counts."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from engine import DataFile, LoadOptions, load_dataset
from engine.data.validate import detect_scale
from tests.conftest import rare_half_step_and_lookalike_lines

GOOD = ["u1,i1,4,978300760", "u1,i2,2,978300761", "u2,i1,5,978300762", "u2,i2,3,978300763"]


def load_lines(lines: list[str], header: str = "user_id,item_id,rating,timestamp", **options):
    text = "\n".join([header, *lines]) + "\n"
    return load_dataset(DataFile("ratings.csv", text.encode()), options=LoadOptions(**options))


def test_each_bad_row_is_rejected_once_with_its_reason_and_row_number():
    bad = [
        ",i3,4,978300770",  # row 5: missing user
        "u3,,4,978300771",  # row 6: missing item
        "u3,i3,five,978300772",  # row 7: text rating
        "u3,i3,NaN,978300773",  # row 8: NaN rating
        "u3,i3,,978300774",  # row 9: empty rating
        "u3,i3,-1,978300775",  # row 10: negative -> outside 1-5
        "u3,i3,9,978300776",  # row 11: outside 1-5
        "u1,i1,1,978300700",  # row 12: duplicate of row 1, older -> rejected (latest kept)
        ",,,978300777",  # row 13: missing user (first reason wins)
        "u3,i3,3,978300778",  # row 14: good
    ]
    data = load_lines(GOOD + bad, scale=(1, 5))
    report = data.report
    assert report.rows_read == 14
    assert report.rejected == {
        "missing_user_id": 2,
        "missing_item_id": 1,
        "non_numeric_rating": 3,
        "out_of_scale": 2,
        "duplicate": 1,
    }
    assert report.rows_kept == 5
    assert report.rows_kept + report.rows_rejected == report.rows_read
    assert [e["row"] for e in report.examples["missing_user_id"]] == [5, 13]
    assert [e["rating"] for e in report.examples["non_numeric_rating"]] == ["five", "NaN", ""]
    assert [e["row"] for e in report.examples["out_of_scale"]] == [10, 11]
    assert report.examples["duplicate"] == [{"row": 12, "user": "u1", "item": "i1", "rating": "1"}]
    assert data.ratings.set_index(["user_id", "item_id"]).loc[("u1", "i1"), "rating"] == 4.0


def test_examples_are_capped_at_five_per_reason():
    data = load_lines(GOOD + [f"u{k},i1,x,978300770" for k in range(9)])
    assert data.report.rejected["non_numeric_rating"] == 9
    assert len(data.report.examples["non_numeric_rating"]) == 5


def test_rows_with_extra_fields_are_counted_as_malformed():
    data = load_lines([*GOOD, "u3,i3,4,978300770,extra,fields"])
    assert data.report.rejected == {"malformed_row": 1}
    assert data.report.examples["malformed_row"] == [{"line": 6, "fields": 6}]
    assert data.report.rows_read == 5
    assert data.report.rows_kept == 4


@pytest.mark.parametrize(
    ("policy", "expected_rating", "expected_stamp"),
    [
        ("latest", 2.0, 978300900),  # largest timestamp wins, wherever it is in the file
        ("first", 4.0, 978300760),
        ("last", 3.0, 978300800),
        ("mean", 3.0, 978300800),  # (4 + 2 + 3) / 3; the last row's timestamp
    ],
)
def test_duplicate_policies(policy, expected_rating, expected_stamp):
    rows = ["u1,i1,4,978300760", "u1,i1,2,978300900", "u1,i1,3,978300800", *GOOD[1:]]
    data = load_lines(rows, duplicates=policy)
    kept = data.ratings.set_index(["user_id", "item_id"]).loc[("u1", "i1")]
    assert kept["rating"] == pytest.approx(expected_rating)
    assert kept["timestamp"] == expected_stamp
    assert data.report.rejected == {"duplicate": 2}
    assert data.report.duplicate_policy == policy


def test_latest_without_timestamps_keeps_the_last_in_file_order():
    data = load_lines(["u1,i1,4", "u1,i1,2", "u2,i2,5", "u2,i1,1"], header="user,item,rating")
    kept = data.ratings.set_index(["user_id", "item_id"])["rating"]
    assert kept[("u1", "i1")] == 2.0
    assert data.report.rejected == {"duplicate": 1}


def test_ids_are_strings_and_never_merged():
    data = load_lines(["001,7,4", "1,7,2", "1,07,5", " 001 ,7,1"], header="user,item,rating")
    assert sorted(data.ratings["user_id"].unique()) == ["001", "1"]
    assert sorted(data.ratings["item_id"].unique()) == ["07", "7"]
    # " 001 " is "001" once blanks are stripped: a duplicate of row 1, latest (last) kept.
    assert data.report.rejected == {"duplicate": 1}
    assert data.n_ratings == 3


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 3, 4, 5], (1, 5, 1.0, "detected")),
        ([0.5, 1.5, 3, 4.5, 5], (0.5, 5, 0.5, "detected")),
        ([1.5, 2, 4.5], (0.5, 5, 0.5, "detected")),
        ([1, 4, 7, 10], (1, 10, 1.0, "detected")),
        ([0, 3, 10], (0, 10, 1.0, "detected")),
        ([-9.95, 0.2, 7.3, 9.9], (-9.95, 9.9, None, "observed")),
        ([1.2, 3.7, 4.9], (1, 5, None, "detected")),
    ],
)
def test_scale_detection(values, expected):
    scale = detect_scale(np.array(values, float), LoadOptions())
    assert (scale.low, scale.high, scale.step, scale.source) == expected


def test_rare_outliers_do_not_widen_the_detected_scale():
    values = np.r_[np.tile([1, 2, 3, 4, 5], 200), 99]  # 1 in 1001 outside 1-5
    scale = detect_scale(values.astype(float), LoadOptions())
    assert (scale.low, scale.high) == (1, 5)
    rows = [*GOOD, *[f"u{k},i9,3,978300800" for k in range(200)], "u1,i5,99,978300900"]
    data = load_lines(rows)
    assert data.report.rejected == {"out_of_scale": 1}


def test_given_scale_rejects_values_outside_it():
    data = load_lines(GOOD, scale=(1, 4))
    assert data.report.rejected == {"out_of_scale": 1}
    assert data.scale.source == "given"


def test_iso_dates_and_millisecond_timestamps_become_epoch_seconds():
    iso = load_lines(["u1,i1,4,2001-01-01T00:00:00Z", "u2,i2,2,2001-01-02", "u1,i2,3,2001-01-03"])
    assert iso.ratings["timestamp"].tolist() == [978307200, 978480000, 978393600]
    ms = load_lines(["u1,i1,4,978307200000", "u2,i2,2,978393600000", "u1,i2,3,978480000000"])
    assert ms.ratings["timestamp"].tolist() == [978307200, 978480000, 978393600]
    assert any("milliseconds" in w for w in ms.report.warnings)


def test_unparseable_timestamps_are_kept_as_missing_and_reported():
    data = load_lines(["u1,i1,4,978300760", "u2,i2,2,yesterday", "u1,i2,3,978300761"])
    assert data.n_ratings == 3
    assert data.ratings["timestamp"].isna().sum() == 1
    assert data.report.warnings == [
        "1 timestamps in ratings.csv could not be parsed and were set to missing "
        "(the ratings were kept)."
    ]


def test_fingerprint_ignores_row_order_but_not_content():
    a = load_lines(GOOD)
    b = load_lines(list(reversed(GOOD)))
    c = load_lines([GOOD[0].replace(",4,", ",5,"), *GOOD[1:]])
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != c.fingerprint
    assert len(a.fingerprint) == 64


def test_ratings_are_sorted_by_user_then_item_and_typed():
    data = load_lines(list(reversed(GOOD)))
    assert list(zip(data.ratings["user_id"], data.ratings["item_id"], strict=True)) == [
        ("u1", "i1"),
        ("u1", "i2"),
        ("u2", "i1"),
        ("u2", "i2"),
    ]
    assert data.ratings["rating"].dtype == np.float64
    assert str(data.ratings["timestamp"].dtype) == "Int64"


def test_parquet_with_string_ratings_rejects_the_text_ones():
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b"],
            "item_id": ["x", "y", "x", "y"],
            "rating": ["4", "five", "2", "3"],
        }
    )
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    data = load_dataset(DataFile("r.parquet", buffer.getvalue()))
    assert data.report.rejected == {"non_numeric_rating": 1}
    assert data.report.examples["non_numeric_rating"][0]["rating"] == "five"


def test_repeated_attribute_ids_keep_the_first_row_and_are_reported(tmp_path):
    (tmp_path / "ratings.csv").write_text("\n".join(["user,item,rating,time", *GOOD]) + "\n")
    (tmp_path / "users.csv").write_text("user_id,gender\nu1,F\nu1,M\nu2,M\n")
    data = load_dataset(tmp_path)
    assert data.users.loc["u1", "gender"] == "F"
    assert any("1 rows of" in w and "repeat an id" in w for w in data.report.warnings)


def test_headerless_text_only_attribute_table_is_read_with_its_header(tmp_path):
    (tmp_path / "ratings.csv").write_text("\n".join(["user,item,rating,time", *GOOD]) + "\n")
    (tmp_path / "users.csv").write_text("member,club\nu1,North\nu2,South\n")
    data = load_dataset(tmp_path)
    assert list(data.users.columns) == ["club"]
    assert data.users.loc["u2", "club"] == "South"


def test_rare_half_steps_and_lookalike_ids_are_pointed_out():
    """Hand-counted: 1 of 26 ratings is a half step; 1 user group of 3, 1 item group of 2."""
    data = load_lines(rare_half_step_and_lookalike_lines())
    assert (data.scale.low, data.scale.high, data.scale.step) == (0.5, 5, 0.5)  # MovieLens'
    half, users, items = data.report.warnings
    assert half.startswith("Only 1 of 26 ratings in ratings.csv are half-steps (e.g. 4.5), and "
                           "they make the rating scale 0.5-5 in steps of 0.5")  # fmt: skip
    assert users.startswith("1 group of user ids in ratings.csv differ only by Unicode width")
    assert "e.g. 'U1' and 'u1'" in users  # the group sorted; kept as three users
    assert data.ratings["user_id"].nunique() == 6
    assert "e.g. 'i2' and 'i2\\u200b'" in items
    assert load_lines(GOOD).report.warnings == []
