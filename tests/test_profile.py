"""Dataset profile figures on a toy dataset whose answers are computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from engine import DataFile, charts, dataset_profile, load_dataset
from engine.data.profile import distribution_summary, short_head_size

# Item popularity: a=4, b=3, c=2, d=1 (10 ratings); users: u1=4, u2=3, u3=2, u4=1.
ROWS = [
    ("u1", "a", 5), ("u1", "b", 4), ("u1", "c", 3), ("u1", "d", 1),
    ("u2", "a", 4), ("u2", "b", 4), ("u2", "c", 2),
    ("u3", "a", 5), ("u3", "b", 3),
    ("u4", "a", 1),
]  # fmt: skip


@pytest.fixture
def profile():
    text = "user,item,rating\n" + "\n".join(f"{u},{i},{r}" for u, i, r in ROWS) + "\n"
    return dataset_profile(load_dataset(DataFile("toy.csv", text.encode())))


def test_sizes_and_density(profile):
    assert (profile.n_users, profile.n_items, profile.n_ratings) == (4, 4, 10)
    assert profile.density == pytest.approx(10 / 16)
    assert profile.rating_mean == pytest.approx(3.2)


def test_rating_histogram(profile):
    hist = profile.rating_histogram
    assert hist["rating"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert hist["count"].tolist() == [2, 1, 2, 3, 2]
    assert hist["share"].sum() == pytest.approx(1.0)


def test_short_head_holds_eighty_percent(profile):
    # a+b = 7 of 10 ratings < 80%; a+b+c = 9 >= 80%: the short head is 3 items.
    assert profile.short_head_items == 3
    assert profile.long_tail_item_share == pytest.approx(0.25)
    assert short_head_size(pd.Series([5, 2, 2, 1])) == 3  # 5+2 = 70% < 80%, 5+2+2 = 90%


def test_activity_summaries(profile):
    assert profile.user_activity.tolist() == [4, 3, 2, 1]
    summary = distribution_summary(profile.user_activity)
    assert summary["min"] == 1
    assert summary["max"] == 4
    assert summary["median"] == pytest.approx(2.5)
    assert summary["mean"] == pytest.approx(2.5)
    assert profile.item_popularity.to_dict() == {"a": 4, "b": 3, "c": 2, "d": 1}


def test_charts_plot_the_profile_numbers(profile):
    hist = charts.rating_histogram(profile)
    assert list(hist.data[0].y) == [2, 1, 2, 3, 2]
    curve = charts.long_tail_curve(profile)
    assert list(curve.data[0].y) == [4, 3, 2, 1]
    assert curve.layout.shapes[0].x1 == pytest.approx(3.5)  # short head band ends after item 3
    activity = charts.activity_distribution(profile)
    assert sorted(activity.data[0].x) == [1, 2, 3, 4]


def test_user_profile_shows_dates_and_rating_values_as_categories():
    from engine.data.profile import user_profile

    text = "user,item,rating,timestamp\nu1,a,4,978307200\nu1,b,2.5,978480000\nu2,a,1,978393600\n"
    data = load_dataset(DataFile("toy.csv", text.encode()))
    mine = user_profile(data, "u1")
    # Newest first, as UTC datetimes: 978480000 s is 2001-01-03 00:00 UTC.
    assert list(mine.ratings["rated_at"]) == [
        pd.Timestamp("2001-01-03", tz="UTC"), pd.Timestamp("2001-01-01", tz="UTC")
    ]  # fmt: skip
    figure = charts.shares_vs_population(mine.histogram, "rating", "Ratings given")
    assert list(figure.data[0].x) == ["1", "2.5", "4"]
    assert figure.layout.xaxis.type == "category"
    assert list(figure.data[0].y) == [0, 0.5, 0.5]


def test_rating_period_says_how_long_a_user_took_to_give_their_ratings():
    from engine.data.profile import rating_period

    def at(*stamps: str | None) -> pd.Series:
        return pd.Series(pd.to_datetime(list(stamps), utc=True, format="ISO8601"))

    # a bulk rater (MovieLens 100K's user 405: 737 ratings in 1 h 28 min) reads as one
    bulk = at("1998-01-23 08:37", "1998-01-23 09:00", "1998-01-23 10:05")
    assert (
        rating_period(bulk) == "3 ratings given within 1 h 28 min (1998-01-23 08:37 to 10:05 UTC)."
    )
    years = at("1997-09-22 21:57", None, "1999-09-22 21:57")
    assert rating_period(years) == (
        "2 ratings given within 2.0 years (1997-09-22 21:57 to 1999-09-22 21:57 UTC); 1 "
        "without a time."
    )
    assert rating_period(at("2000-01-01 00:00", "2000-01-04 12:00")).startswith(
        "2 ratings given within 3.5 days"
    )
    assert rating_period(at("2000-01-01 00:00", "2000-01-01 00:00:45")).startswith(
        "2 ratings given within 45 s"
    )
    assert rating_period(at("2000-01-01 00:00", "2000-01-01 00:00")) == (
        "2 ratings given at one moment (2000-01-01 00:00 to 00:00 UTC)."
    )
    assert rating_period(at("2000-01-01 00:00")) == "1 rating given on 2000-01-01 00:00 UTC."
    assert rating_period(at(None)) is None
