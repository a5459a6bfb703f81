"""Descriptive profile of a ``RatingData``: size, sparsity, rating and activity distributions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.data.types import RatingData

SHORT_HEAD_SHARE = 0.8


def distribution_summary(counts: pd.Series) -> dict[str, float]:
    """Return ``min, p25, median, mean, p75, p95, max`` of a count series."""
    q = counts.quantile([0.25, 0.5, 0.75, 0.95])
    return {
        "min": float(counts.min()),
        "p25": float(q[0.25]),
        "median": float(q[0.5]),
        "mean": float(counts.mean()),
        "p75": float(q[0.75]),
        "p95": float(q[0.95]),
        "max": float(counts.max()),
    }


def short_head_size(popularity: pd.Series, share: float = SHORT_HEAD_SHARE) -> int:
    """Smallest number of most-rated items whose ratings reach ``share`` of all ratings.

    With ``c_1 >= c_2 >= ...`` the items' rating counts and ``C`` their sum, this is
    the least ``h`` with ``sum_{i<=h} c_i >= share * C`` (the "short head" of
    Abdollahpouri et al. 2019 / Elliot; the other items are the long tail).
    """
    counts = np.sort(popularity.to_numpy())[::-1]
    cumulative = np.cumsum(counts)
    return int(np.searchsorted(cumulative, share * cumulative[-1] - 1e-9) + 1)


@dataclass(frozen=True)
class DatasetProfile:
    """Size and distributions of a dataset.

    Attributes
    ----------
    density
        ``n_ratings / (n_users * n_items)``, in (0, 1]; the rest of the matrix is unknown.
    rating_histogram
        Columns ``rating`` (each distinct value, ascending), ``count``, ``share``.
    user_activity
        Ratings per user, indexed by ``user_id``, descending.
    item_popularity
        Ratings per item, indexed by ``item_id``, descending.
    short_head_items
        Most-rated items that together hold 80% of the ratings (``short_head_size``).
    long_tail_item_share
        ``1 - short_head_items / n_items``: share of the catalogue in the long tail.
    """

    name: str
    synthetic: bool
    n_users: int
    n_items: int
    n_ratings: int
    density: float
    rating_mean: float
    rating_std: float
    scale: str
    rating_histogram: pd.DataFrame
    user_activity: pd.Series
    item_popularity: pd.Series
    short_head_items: int
    long_tail_item_share: float
    first_timestamp: int | None
    last_timestamp: int | None
    user_attributes: list[str]
    item_attributes: list[str]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (distributions as summaries and histogram)."""
        return {
            "name": self.name,
            "synthetic": self.synthetic,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_ratings": self.n_ratings,
            "density": self.density,
            "rating_mean": self.rating_mean,
            "rating_std": self.rating_std,
            "scale": self.scale,
            "rating_histogram": self.rating_histogram.to_dict(orient="records"),
            "ratings_per_user": distribution_summary(self.user_activity),
            "ratings_per_item": distribution_summary(self.item_popularity),
            "short_head_items": self.short_head_items,
            "short_head_share": SHORT_HEAD_SHARE,
            "long_tail_item_share": self.long_tail_item_share,
            "first_timestamp": self.first_timestamp,
            "last_timestamp": self.last_timestamp,
            "user_attributes": self.user_attributes,
            "item_attributes": self.item_attributes,
        }


def dataset_profile(data: RatingData) -> DatasetProfile:
    """Compute the ``DatasetProfile`` of ``data``."""
    ratings = data.ratings
    return profile_of_counts(
        data.name,
        data.synthetic,
        ratings["rating"].value_counts(),
        ratings["user_id"].value_counts(),
        ratings["item_id"].value_counts(),
        float(ratings["rating"].mean()),
        float(ratings["rating"].std(ddof=0)),
        data.scale.describe(),
        data.time_span(),
        [] if data.users is None else list(data.users.columns),
        [] if data.items is None else list(data.items.columns),
    )


def profile_of_counts(
    name: str,
    synthetic: bool,
    values: pd.Series,
    activity: pd.Series,
    popularity: pd.Series,
    mean: float,
    std: float,
    scale: str,
    span: tuple[int | None, int | None],
    user_attributes: list[str],
    item_attributes: list[str],
) -> DatasetProfile:
    """Assemble a ``DatasetProfile`` from counts (``dataset_profile`` counts them in memory).

    ``values``: ratings per rating value; ``activity``/``popularity``: ratings per user /
    item (index the ids); ``mean``, ``std`` (population) of the ratings; ``span``: first and
    last timestamp (``None`` without times).
    """
    n_ratings = int(values.sum())
    histogram = values.sort_index().rename("count").rename_axis("rating").reset_index()
    histogram["share"] = histogram["count"] / n_ratings
    activity = activity.sort_values(ascending=False, kind="stable")
    popularity = popularity.sort_values(ascending=False, kind="stable")
    head = short_head_size(popularity)
    return DatasetProfile(
        name=name,
        synthetic=synthetic,
        n_users=len(activity),
        n_items=len(popularity),
        n_ratings=n_ratings,
        density=n_ratings / (len(activity) * len(popularity)),
        rating_mean=mean,
        rating_std=std,
        scale=scale,
        rating_histogram=histogram,
        user_activity=activity,
        item_popularity=popularity,
        short_head_items=head,
        long_tail_item_share=1 - head / len(popularity),
        first_timestamp=span[0],
        last_timestamp=span[1],
        user_attributes=user_attributes,
        item_attributes=item_attributes,
    )


@dataclass(frozen=True)
class UserProfile:
    """One user's ratings and tastes next to the population's.

    ``ratings``: ``item_id, title, rating, rated_at`` (newest first; ``rated_at`` is the
    rating's time as a UTC datetime, missing when the data has none); ``histogram``:
    ``rating, user_share, population_share``; ``genres``: ``genre, user_share,
    population_share`` (each rated item spreads weight 1 over its genres; empty without
    genres); ``attributes``: the user's attribute values; ``population_mean``: the mean of
    all ratings.
    """

    user_id: str
    ratings: pd.DataFrame
    histogram: pd.DataFrame
    genres: pd.DataFrame
    attributes: dict[str, Any]
    population_mean: float


def _genre_shares(counts: pd.Series, genres: pd.Series) -> pd.Series:
    """Return each genre's share of ratings; ``counts``: the ratings per item id.

    A rating spreads weight 1 over its item's genres.
    """
    tuples = genres.reindex(counts.index)
    keep = tuples.notna() & (tuples.map(len, na_action="ignore") > 0)
    tuples, counts = tuples[keep], counts[keep]
    weights = counts.to_numpy(np.float64) / tuples.map(len).to_numpy(np.float64)
    exploded = pd.DataFrame({"genre": tuples.to_numpy(), "weight": weights}).explode("genre")
    shares = exploded.groupby("genre")["weight"].sum()
    return shares / shares.sum() if shares.sum() else shares


def _duration_text(seconds: float) -> str:
    """``seconds`` as a reader says it: "45 s", "1 h 32 min", "3.5 days", "2.1 years"."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86_400:
        hours, minutes = divmod(round(seconds / 60), 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if seconds < 365.25 * 86_400:
        return f"{seconds / 86_400:.1f} days"
    return f"{seconds / (365.25 * 86_400):.1f} years"


def rating_period(rated_at: pd.Series) -> str | None:
    """Say over how long a user's ratings were given.

    E.g. "737 ratings given within 1 h 32 min (1998-01-07 14:20 to 15:52 UTC)". A user
    who rated hundreds of items in an hour (a bulk import, a script) reads differently from
    one who rated them over years; the period lets the analyst see it. ``rated_at``:
    ``UserProfile.ratings["rated_at"]``. ``None`` without any time.
    """
    stamps = rated_at.dropna()
    if stamps.empty:
        return None
    first, last = stamps.min(), stamps.max()
    missing = (
        f"; {len(rated_at) - len(stamps):,} without a time" if len(stamps) < len(rated_at) else ""
    )
    if len(stamps) == 1:
        return f"1 rating given on {first.strftime('%Y-%m-%d %H:%M')} UTC{missing}."
    span = (last - first).total_seconds()
    day = "%Y-%m-%d"
    end = last.strftime("%H:%M" if first.strftime(day) == last.strftime(day) else f"{day} %H:%M")
    within = f"within {_duration_text(span)}" if span > 0 else "at one moment"
    return (f"{len(stamps):,} ratings given {within} ({first.strftime(f'{day} %H:%M')} to "
            f"{end} UTC){missing}.")  # fmt: skip


def user_profile(
    data: RatingData, user_id: str, population: DatasetProfile | None = None
) -> UserProfile:
    """Build the ``UserProfile`` of ``user_id`` (empty tables for an unknown user).

    ``population``: the whole data's profile when ``data`` holds only some users' ratings
    (a run kept in Spark, ``engine.saved.user_side``): the population's shares and mean come
    from its ``rating_histogram``, ``item_popularity`` and ``rating_mean``, else from ``data``.
    """
    ratings = data.ratings[data.ratings["user_id"] == user_id]
    titles = data.items["title"] if data.items is not None and "title" in data.items else None
    table = pd.DataFrame(
        {
            "item_id": ratings["item_id"].to_numpy(),
            "title": titles.reindex(ratings["item_id"]).to_numpy()
            if titles is not None
            else ratings["item_id"].to_numpy(),
            "rating": ratings["rating"].to_numpy(),
            "rated_at": pd.to_datetime(ratings["timestamp"].to_numpy(), unit="s", utc=True),
        }
    ).sort_values("rated_at", ascending=False, na_position="last", ignore_index=True)
    if population is None:
        per_value = data.ratings["rating"].value_counts()
        per_item = data.ratings["item_id"].value_counts()
        mean = float(data.ratings["rating"].mean())
    else:
        hist = population.rating_histogram
        per_value = pd.Series(hist["count"].to_numpy(), index=hist["rating"].to_numpy())
        per_item, mean = population.item_popularity, population.rating_mean
    values = sorted(per_value.index)
    histogram = pd.DataFrame(
        {
            "rating": values,
            "user_share": ratings["rating"]
            .value_counts(normalize=True)
            .reindex(values, fill_value=0)
            .to_numpy(),
            "population_share": (per_value / per_value.sum()).reindex(values).to_numpy(),
        }
    )
    genres = pd.DataFrame(columns=["genre", "user_share", "population_share"])
    if data.items is not None and "genres" in data.items:
        everyone = _genre_shares(per_item, data.items["genres"])
        mine = _genre_shares(ratings["item_id"].value_counts(), data.items["genres"])
        genres = pd.DataFrame(
            {
                "genre": everyone.index,
                "user_share": mine.reindex(everyone.index, fill_value=0).to_numpy(),
                "population_share": everyone.to_numpy(),
            }
        ).sort_values("user_share", ascending=False, ignore_index=True)
    attributes = {}
    if data.users is not None and user_id in data.users.index:
        attributes = {k: (None if pd.isna(v) else v) for k, v in data.users.loc[user_id].items()}
    return UserProfile(user_id, table, histogram, genres, attributes, mean)
