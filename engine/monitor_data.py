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


def data_table(ratings: pd.DataFrame, windows: pd.DataFrame, of: np.ndarray) -> pd.DataFrame:
    """Per-window data quantities (module docstring); ``of`` = each rating's window."""
    first_user = pd.Series(of).groupby(ratings["user_id"].to_numpy()).min()
    first_item = pd.Series(of).groupby(ratings["item_id"].to_numpy()).min()
    rows = []
    for w in windows["window"]:
        part = ratings[of == w]
        counts = part["item_id"].value_counts()
        rows.append({
            "window": int(w), "n_ratings": len(part), "n_users": part["user_id"].nunique(),
            "new_users": int((first_user == w).sum()), "new_items": int((first_item == w).sum()),
            "rating_mean": float(part["rating"].mean()) if len(part) else math.nan,
            "gini": gini(counts.to_numpy()) if len(part) else math.nan,
            "short_head_share": short_head_size(counts) / len(counts) if len(part) else math.nan,
        })  # fmt: skip
    out = pd.DataFrame(rows)
    out.insert(1, "label", windows["label"].to_numpy())
    return out


def distribution(ratings: pd.DataFrame, windows: pd.DataFrame, of: np.ndarray) -> pd.DataFrame:
    """Share of each rating value per window: ``window, label, rating, share``."""
    timed = of >= 0
    shares = pd.crosstab(of[timed], ratings["rating"].to_numpy()[timed], normalize="index")
    shares.index.name, shares.columns.name = "window", "rating"
    out = shares.stack().rename("share").reset_index()
    labels = windows.set_index("window")["label"]
    out.insert(1, "label", labels.reindex(out["window"]).to_numpy())
    return out
