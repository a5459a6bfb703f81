"""Data per monitoring window: sizes, newcomers, rating mean and distribution, concentration.

Definitions are in ``engine.monitor``'s module docstring (``Monitoring.data``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from engine.audit.measures import gini
from engine.data.profile import short_head_size

#: Status of a window or row too small to compare.
INSUFFICIENT = "insufficient data"


def window_status(
    data: pd.DataFrame, min_ratings: int, min_users: int
) -> tuple[list[str], list[str]]:
    """Each window's status (``"ok"`` or ``INSUFFICIENT``) and the reason why."""
    status, reason = [], []
    for row in data.itertuples():
        why = []
        if row.n_ratings < min_ratings:
            why.append(f"{row.n_ratings:,} ratings (< {min_ratings:,})")
        if row.n_users < min_users:
            why.append(f"{row.n_users:,} active users (< {min_users:,})")
        status.append(INSUFFICIENT if why else "ok")
        reason.append("; ".join(why))
    return status, reason


class WindowCounts:
    """What ``data_table`` and ``distribution`` rest on, added up chunk by chunk.

    ``add`` takes ratings as integer user and item codes (``0 <= u < n_users``,
    ``0 <= i < n_items``), values and each rating's window (``-1``: no time); every rating of
    a user must come in one chunk (a user's first window and activity are then the chunk's).
    Kept: ratings, active users and the rating sum per window; users new per window; each
    item's first window (``-1`` when any of its ratings has no time, as ``data_table``);
    ratings per (window, item) and per (window, rating value). ``data_table`` adds the whole
    frame as one chunk; a run kept in Spark adds its ratings part by part
    (``engine.saved.kept_over_time``).
    """

    def __init__(self, n_windows: int, n_items: int) -> None:
        self.n_windows, self.n_items = n_windows, n_items
        self.ratings = np.zeros(n_windows, dtype=np.int64)
        self.users = np.zeros(n_windows, dtype=np.int64)
        self.new_users = np.zeros(n_windows, dtype=np.int64)
        self.rating_sum = np.zeros(n_windows)
        self.first_item = np.full(n_items, n_windows, dtype=np.int64)  # n_windows: none yet
        self._pairs: list[pd.Series] = []
        self._values: list[pd.Series] = []

    def add(self, users: np.ndarray, items: np.ndarray, values: np.ndarray,
            of: np.ndarray) -> None:  # fmt: skip
        """Add a chunk of ratings (class docstring)."""
        users, items, of = (np.asarray(a, dtype=np.int64) for a in (users, items, of))
        values = np.asarray(values, dtype=np.float64)
        first = pd.Series(of).groupby(users).min().to_numpy()
        self.new_users += np.bincount(first[first >= 0], minlength=self.n_windows)
        np.minimum.at(self.first_item, items, of)
        timed = of >= 0
        w, u, i, v = of[timed], users[timed], items[timed], values[timed]
        self.ratings += np.bincount(w, minlength=self.n_windows)
        self.rating_sum += np.bincount(w, weights=v, minlength=self.n_windows)
        stride = int(users.max(initial=0)) + 1
        active = pd.unique(w * stride + u) // stride  # each (window, user) pair once
        self.users += np.bincount(active, minlength=self.n_windows)
        self._pairs.append(pd.Series(1, index=w * self.n_items + i).groupby(level=0).sum())
        self._values.append(pd.Series(1, index=pd.MultiIndex.from_arrays([w, v])).groupby(
            level=[0, 1]).sum())  # fmt: skip

    def table(self, windows: pd.DataFrame) -> pd.DataFrame:
        """Return ``data_table``'s per-window rows (module docstring for the definitions)."""
        pairs = (pd.concat(self._pairs).groupby(level=0).sum() if self._pairs
                 else pd.Series(dtype=np.int64))  # fmt: skip
        per_window = dict(iter(pairs.groupby(pairs.index.to_numpy() // self.n_items)))
        new_items = np.bincount(self.first_item[self.first_item < self.n_windows].clip(-1) + 1,
                                minlength=self.n_windows + 1)[1:]  # fmt: skip
        rows = []
        for w in windows["window"]:
            counts = per_window.get(w, pairs.iloc[:0])
            n = int(self.ratings[w])
            rows.append({
                "window": int(w), "n_ratings": n, "n_users": int(self.users[w]),
                "new_users": int(self.new_users[w]), "new_items": int(new_items[w]),
                "rating_mean": float(self.rating_sum[w] / n) if n else math.nan,
                "gini": gini(counts.to_numpy()) if n else math.nan,
                "short_head_share": short_head_size(counts) / len(counts) if n else math.nan,
            })  # fmt: skip
        out = pd.DataFrame(rows)
        out.insert(1, "label", windows["label"].to_numpy())
        return out

    def distribution(self, windows: pd.DataFrame) -> pd.DataFrame:
        """Return ``distribution``'s rows: the share of each rating value per window."""
        counts = (pd.concat(self._values).groupby(level=[0, 1]).sum() if self._values
                  else pd.Series(dtype=np.int64))  # fmt: skip
        shares = counts.unstack(fill_value=0).sort_index().sort_index(axis=1)
        shares = shares.div(shares.sum(axis=1), axis=0)
        shares.index.name, shares.columns.name = "window", "rating"
        out = shares.stack().rename("share").reset_index()
        labels = windows.set_index("window")["label"]
        out.insert(1, "label", labels.reindex(out["window"]).to_numpy())
        return out


def _counts(ratings: pd.DataFrame, windows: pd.DataFrame, of: np.ndarray) -> WindowCounts:
    """``WindowCounts`` of a whole ratings frame (``user_id, item_id, rating``), one chunk."""
    users = pd.factorize(ratings["user_id"])[0]
    items, uniques = pd.factorize(ratings["item_id"])
    counts = WindowCounts(len(windows), len(uniques))
    counts.add(users, items, ratings["rating"].to_numpy(np.float64), of)
    return counts


def data_table(ratings: pd.DataFrame, windows: pd.DataFrame, of: np.ndarray) -> pd.DataFrame:
    """Per-window data quantities (module docstring); ``of`` = each rating's window."""
    return _counts(ratings, windows, of).table(windows)


def distribution(ratings: pd.DataFrame, windows: pd.DataFrame, of: np.ndarray) -> pd.DataFrame:
    """Share of each rating value per window: ``window, label, rating, share``."""
    return _counts(ratings, windows, of).distribution(windows)
