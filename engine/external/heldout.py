"""The held-out ratings an external system's lists are judged against, and the ratings it saw.

Top-N utility needs ratings the lists did not see. Two sources (``HeldOut.source``):

``temporal`` (default)
    The rating data's temporal split (``engine.protocols.make_splits(..., "temporal")``):
    with ``span = t_max - t_min`` the cut is ``ceil(t_max - test_share * span)``; ratings with
    ``t < cut`` are what the systems rest on (``HeldOut.train``: the audit's popularity,
    long tail, profiles and "already rated" come from them), ratings with ``t >= cut`` are
    held out. The lists are taken to have been made at the cut: every system (external,
    built-in SVD, popularity) is judged on the same users and held-out ratings. Ratings
    without a time take no part in either.
``file``
    A file of ratings the analyst names (``load_dataset(..., batch=True)``: the same row
    checks as any rating file), collected after the lists were made; the systems rest on
    the whole rating data. Held-out rows of users or items unknown to the data are counted
    and left out; pairs also in the rating data are left out (the lists saw them).
``none``
    No time and no file: no held-out rating, so top-N utility (and accuracy of predictions)
    is not audited; every other list family still is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from engine.data.load import fingerprint_of, load_dataset
from engine.data.types import ColumnMapping, RatingData, Source
from engine.errors import DataError
from engine.protocols import make_splits

HeldOutSource = Literal["temporal", "file", "none"]


def _when(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "n/a"
    return datetime.fromtimestamp(float(seconds), tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class HeldOut:
    """The ratings the systems rest on and the ratings held out from them.

    Attributes
    ----------
    train
        The rating data the systems are taken to have seen (the audit's data).
    ratings
        Held-out ratings: ``user_id, item_id, rating, timestamp`` (one row per pair).
    source
        ``"temporal"``, ``"file"`` or ``"none"`` (module docstring).
    cut
        The temporal cut in epoch seconds (``None`` otherwise).
    notes
        Sentences on what was left out.
    """

    train: RatingData
    ratings: pd.DataFrame
    source: HeldOutSource
    cut: float | None = None
    name: str = ""
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One sentence: which ratings were used, with dates and counts."""
        n, users = len(self.ratings), self.ratings["user_id"].nunique()
        train = self.train.ratings
        seen = (f"the systems are judged as if their lists were made from the "
                f"{len(train):,} ratings")  # fmt: skip
        if self.source == "none":
            return (
                f"No held-out ratings ({self.train.name} has no rating time and no held-out "
                "file was named): top-N utility and prediction accuracy are not audited."
            )
        times = self.ratings["timestamp"].astype("Float64")
        span = (f"dated {_when(times.min())} to {_when(times.max())}"
                if times.notna().any() else "without dates")  # fmt: skip
        if self.source == "temporal":
            return (
                f"Held-out ratings: the temporal split of {self.train.name.split(' before ')[0]}"
                f" at {_when(self.cut)}: {n:,} ratings by {users:,} users {span}; {seen} "
                f"before the cut ({_when(train['timestamp'].astype('Float64').min())} to "
                f"{_when(train['timestamp'].astype('Float64').max())})."
            )
        return (
            f"Held-out ratings: the file {self.name}: {n:,} ratings by {users:,} users {span}; "
            f"{seen} of {self.train.name}."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: source, sentence, counts, cut and dates."""
        times = self.ratings["timestamp"].astype("Float64")
        return {
            "source": self.source, "description": self.describe(), "name": self.name,
            "n_ratings": len(self.ratings), "n_users": int(self.ratings["user_id"].nunique()),
            "n_train_ratings": len(self.train.ratings), "cut": self.cut,
            "first": _when(times.min()) if times.notna().any() else None,
            "last": _when(times.max()) if times.notna().any() else None, "notes": self.notes,
        }  # fmt: skip


def subset(data: RatingData, mask: np.ndarray, name: str) -> RatingData:
    """Return ``data`` restricted to the rows of ``mask`` (same attributes, new fingerprint)."""
    ratings = data.ratings[np.asarray(mask, bool)].reset_index(drop=True)
    return replace(data, ratings=ratings, name=name,
                   fingerprint=fingerprint_of(ratings, data.users, data.items))  # fmt: skip


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"user_id": pd.Series([], dtype=object),
                         "item_id": pd.Series([], dtype=object),
                         "rating": pd.Series([], dtype=float),
                         "timestamp": pd.Series([], dtype="Int64")})  # fmt: skip


def no_heldout(data: RatingData, notes: list[str] | None = None) -> HeldOut:
    """Return no held-out ratings (``source="none"``): every rating is what the lists saw."""
    return HeldOut(data, _empty(), "none", name=data.name, notes=list(notes or []))


def temporal_heldout(data: RatingData, test_share: float = 0.2) -> HeldOut:
    """Hold out the last ``test_share`` of the time span (module docstring).

    Data without any rating time gives ``source="none"`` (everything is ``train``).

    Raises
    ------
    DataError
        All ratings fall in the same stretch of time (``engine.protocols.make_splits``).
    """
    times = data.ratings["timestamp"].to_numpy("float64", na_value=np.nan)
    if np.isnan(times).all():
        return HeldOut(data, _empty(), "none", name=data.name)
    split = make_splits(data.ratings, "temporal", test_share=test_share, name=data.name)[0]
    cut = split.test_start
    train = subset(data, split.train, f"{data.name} before {_when(cut)}")
    held = data.ratings[split.test].reset_index(drop=True)
    notes = []
    untimed = int(np.isnan(times).sum())
    if untimed:
        notes.append(f"{untimed:,} ratings without a time take no part in the temporal split.")
    return HeldOut(train, held, "temporal", cut=cut, name=data.name, notes=notes)


def heldout_at(data: RatingData, cut: float, notes: list[str] | None = None) -> HeldOut:
    """Return the temporal held-out ratings of ``data`` at a known ``cut`` (a saved one).

    Ratings with ``t < cut`` are what the systems rest on, ``t >= cut`` are held out, as
    ``temporal_heldout`` (which finds the cut from the share of the time span).
    """
    times = data.ratings["timestamp"].to_numpy("float64", na_value=np.nan)
    timed = ~np.isnan(times)
    train = subset(data, timed & (times < cut), f"{data.name} before {_when(cut)}")
    held = data.ratings[timed & (times >= cut)].reset_index(drop=True)
    return HeldOut(train, held, "temporal", cut=float(cut), name=data.name,
                   notes=list(notes or []))  # fmt: skip


def heldout_from_file(
    data: RatingData, source: Source, mapping: ColumnMapping | None = None
) -> HeldOut:
    """Held-out ratings from a file (module docstring); the systems rest on all of ``data``.

    Raises
    ------
    DataError
        The file cannot be read as ratings, or none of its ratings is by a known user of a
        known item and absent from ``data``.
    """
    batch = load_dataset(ratings=source, mapping=mapping, batch=True)
    held = batch.ratings
    known = held["user_id"].isin(data.ratings["user_id"]) & held["item_id"].isin(
        data.ratings["item_id"]
    )
    pairs = pd.MultiIndex.from_frame(data.ratings[["user_id", "item_id"]])
    seen = pd.MultiIndex.from_frame(held[["user_id", "item_id"]]).isin(pairs)
    notes = []
    if (~known).sum():
        notes.append(
            f"{int((~known).sum()):,} held-out ratings of {batch.name} are by users or of items "
            "not in the rating data: left out."
        )
    if (known & seen).sum():
        notes.append(
            f"{int((known & seen).sum()):,} held-out ratings of {batch.name} rate pairs already "
            "in the rating data (the lists saw them): left out."
        )
    kept = held[known & ~seen].reset_index(drop=True)
    if kept.empty:
        raise DataError(
            f"None of the {len(held):,} ratings of {batch.name} is a new rating by a known user "
            "of a known item: name a file of ratings collected after the lists were made, "
            "for users and items of this dataset."
        )
    return HeldOut(data, kept, "file", name=batch.name, notes=notes + batch.report.warnings)
