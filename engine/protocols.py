"""Evaluation protocols: which ratings each model is trained on and which it is tested on.

Every protocol yields splits in one form (``Split``: a split index, called ``fold`` in the
evaluation's tables, and boolean masks over the rating rows), so the evaluation, the audit,
the explanations and the report read every protocol's predictions and lists the same way.

Protocols (``EvaluationConfig.split``)
--------------------------------------
``kfold``
    Seeded K-fold (``assign_folds``): split ``j`` tests the ratings of fold ``j`` and trains
    on the other folds. Every rating is tested once. Time is ignored, so a model may be
    trained on ratings later than the ones it is tested on.
``temporal``
    One global time split. With ``t_min`` and ``t_max`` the earliest and latest rating time
    (epoch seconds) and ``span = t_max - t_min``, the cut is
    ``ceil(t_max - test_share * span)``: the models train on every rating with
    ``t < cut`` and are tested on every rating with ``t >= cut``. "The last 20% of time"
    (``test_share = 0.2``, the default) is 20% of the time *span*, not 20% of the ratings.
``last-n``
    Per user: each user's ``N`` latest ratings (``last_n``, default 1) are tested, the rest
    trained on. Ratings are ordered by ``(timestamp, item_id)``, so of two ratings in the
    same second the one with the larger item id (string order) counts as the later one.
    A user with ``<= N`` timed ratings stays in training only (counted). This is not a
    global time split: the training part holds other users' ratings later than a test one.
``rolling``
    Rolling origin with an expanding window: the last ``test_share`` of the time span is cut
    into ``W`` windows (``windows``, default 3) of equal length, with boundaries
    ``c_w = ceil(t_max - test_share * span * (W - w) / W)``, ``w = 0..W``. Window ``w``
    tests the ratings with ``c_w <= t < c_{w+1}`` (the last window also ``t = t_max``) and
    trains on every rating with ``t < c_w``. ``temporal`` is the case ``W = 1``. (The value
    under ``ceil`` is first rounded to the microsecond, so float noise cannot move a cut.)

Conventions
-----------
* No time protocol trains on a rating later than its cut: every training rating of a
  ``temporal`` or ``rolling`` split has ``t < cut <= `` every test rating's ``t``.
* Ratings without a time (``timestamp`` ``<NA>``) take no part in a time protocol: they are
  neither trained on nor tested, and are counted (``split_table``'s ``n_unused``).
* Cold start: a test rating whose user or item has no rating in the split's training part
  cannot be predicted from history. It is kept: the models predict it with their fallback
  (``mu + b_i``, ``mu + b_u`` or ``mu``, flagged ``was_impossible`` with the reason), it
  counts in RMSE and MAE, a cold user has no top-N list and a cold item cannot be
  recommended. ``split_table`` counts these users, items and ratings per split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pandas as pd

from engine.errors import ConfigError, DataError

SplitName = Literal["kfold", "temporal", "last-n", "rolling"]
#: The protocols ``EvaluationConfig.split`` may name.
SPLITS: tuple[str, ...] = ("kfold", "temporal", "last-n", "rolling")
#: Each protocol's name for a reader (the Model page's selector).
SPLIT_NAMES: dict[str, str] = {
    "kfold": "K-fold (random folds)",
    "temporal": "Temporal split (train before a cut, test after)",
    "last-n": "Leave-last-N per user",
    "rolling": "Rolling origin (expanding windows)",
}
#: The protocols that need a time for each rating.
TIME_SPLITS: tuple[str, ...] = ("temporal", "last-n", "rolling")
#: Columns of ``split_table``.
SPLIT_COLUMNS: list[str] = [
    "fold",
    "n_train",
    "n_test",
    "n_unused",
    "test_start",
    "test_end",
    "train_latest",
    "n_test_users",
    "n_train_only_users",
    "n_cold_users",
    "n_cold_items",
    "n_cold_ratings",
]


def check_protocol(split: str, test_share: float, last_n: int, windows: int) -> None:
    """Refuse protocol settings outside their allowed values (one sentence each).

    Raises
    ------
    ConfigError
        An unknown ``split``, ``test_share`` not strictly between 0 and 1, ``last_n`` or
        ``windows`` below 1.
    """
    if split not in SPLITS:
        raise ConfigError(f"Unknown evaluation split {split!r}: choose one of {', '.join(SPLITS)}.")
    if isinstance(test_share, bool) or not (
        isinstance(test_share, (int, float)) and 0 < test_share < 1
    ):
        raise ConfigError(
            f"test_share={test_share!r} is not allowed: use a share of the time span "
            "strictly between 0 and 1 (default 0.2, the last 20% of time)."
        )
    if isinstance(last_n, bool) or not isinstance(last_n, int) or last_n < 1:
        raise ConfigError(f"last_n={last_n!r} must be a whole number >= 1 (default 1).")
    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise ConfigError(f"windows={windows!r} must be a whole number >= 1 (default 3).")


def n_splits(split: str, folds: int, windows: int) -> int:
    """Return the number of splits a protocol makes: ``folds``, 1, 1 or ``windows``."""
    return {"kfold": folds, "temporal": 1, "last-n": 1, "rolling": windows}[split]


@dataclass(frozen=True)
class Split:
    """One train/test split of the rating rows.

    Attributes
    ----------
    fold
        The split's index, ``0..n-1`` (the ``fold`` column of the evaluation's tables).
    train, test
        Boolean masks over the rating rows (disjoint; a row in neither is unused).
    test_start, test_end
        The time window tested, in epoch seconds: ``test_start <= t < test_end`` (the last
        window of a protocol also holds ``t = test_end``); NaN for ``kfold`` and
        ``last-n``, which are not windows of time.
    """

    fold: int
    train: np.ndarray
    test: np.ndarray
    test_start: float = math.nan
    test_end: float = math.nan


def assign_folds(n_ratings: int, folds: int, seed: int) -> np.ndarray:
    """Fold id (0..K-1) of each rating: ``fold[perm[j]] = j mod K`` for a seeded permutation."""
    perm = np.random.default_rng(seed).permutation(n_ratings)
    fold = np.empty(n_ratings, dtype=np.int64)
    fold[perm] = np.arange(n_ratings) % folds
    return fold


def make_splits(
    ratings: pd.DataFrame,
    split: str,
    *,
    folds: int = 5,
    seed: int = 0,
    test_share: float = 0.2,
    last_n: int = 1,
    windows: int = 3,
    name: str = "the data",
) -> list[Split]:
    """Return the splits of ``ratings`` (columns ``user_id, item_id, timestamp``) by protocol.

    See the module docstring for each protocol's definition.

    Raises
    ------
    ConfigError
        A time protocol on ratings without any time (one sentence naming the fix).
    DataError
        A time protocol whose training part or a test window holds no rating (e.g. all
        ratings in the same second), or ``last-n`` with no user above N ratings.
    """
    check_protocol(split, test_share, last_n, windows)
    n = len(ratings)
    if split == "kfold":
        fold_of = assign_folds(n, folds, seed)
        return [Split(j, fold_of != j, fold_of == j) for j in range(folds)]
    times = _times(ratings, split, name)
    timed = ~np.isnan(times)
    if split == "last-n":
        test = _latest(ratings, times, last_n)
        if not test.any():
            raise DataError(
                f"{name} has no user with more than {last_n} timed rating(s), so leave-last-"
                f"{last_n} tests nothing: use a smaller last N or the kfold split."
            )
        return [Split(0, timed & ~test, test)]
    t_min, t_max = float(np.nanmin(times)), float(np.nanmax(times))
    count = 1 if split == "temporal" else windows
    share = test_share * (t_max - t_min)
    # Rounded to the microsecond first, so float noise in share * span cannot move a cut.
    bounds = [math.ceil(round(t_max - share * (count - w) / count, 6)) for w in range(count + 1)]
    out = []
    for w in range(count):
        train = timed & (times < bounds[w])
        last = w == count - 1
        before_end = (times <= t_max) if last else (times < bounds[w + 1])
        test = timed & (times >= bounds[w]) & before_end
        what = "the cut" if split == "temporal" else f"window {w + 1} of {count}"
        if not train.any():
            raise DataError(
                f"{name} has no rating before {what} ({_when(bounds[w])}): every rating falls "
                "in the same stretch of time; use a smaller test share or the kfold split."
            )
        if not test.any():
            raise DataError(
                f"{name} has no rating in {what} ({_when(bounds[w])} to "
                f"{_when(bounds[w + 1])}): use fewer windows or a larger test share."
            )
        out.append(Split(w, train, test, float(bounds[w]), float(bounds[w + 1])))
    return out


def require_times(ratings: pd.DataFrame, split: str, name: str = "the data") -> None:
    """Refuse a time protocol on ratings without any time (``kfold`` needs none).

    Raises
    ------
    ConfigError
        ``split`` is a time protocol and no rating has a timestamp.
    """
    if split in TIME_SPLITS:
        _times(ratings, split, name)


def _times(ratings: pd.DataFrame, split: str, name: str) -> np.ndarray:
    """Rating times as float seconds (NaN where unknown); refuse data with no time at all."""
    if "timestamp" in ratings:
        times = ratings["timestamp"].to_numpy("float64", na_value=np.nan)
    else:
        times = np.full(len(ratings), np.nan)
    if np.isnan(times).all():
        raise ConfigError(
            f"The {split} split needs a time for each rating, and {name} has none: load a "
            "timestamp column (--columns timestamp=NAME) or use --split kfold."
        )
    return times


def _latest(ratings: pd.DataFrame, times: np.ndarray, n: int) -> np.ndarray:
    """Mask of each user's ``n`` latest timed ratings, for users with more than ``n``."""
    frame = pd.DataFrame(
        {
            "user_id": ratings["user_id"].to_numpy(),
            "item_id": ratings["item_id"].to_numpy(),
            "t": times,
            "row": np.arange(len(ratings)),
        }
    )
    frame = frame[~np.isnan(times)].sort_values(["user_id", "t", "item_id"], kind="stable")
    size = frame.groupby("user_id", sort=False)["row"].transform("size").to_numpy()
    from_end = frame.groupby("user_id", sort=False).cumcount(ascending=False).to_numpy()
    mask = np.zeros(len(ratings), dtype=bool)
    mask[frame["row"].to_numpy()[(from_end < n) & (size > n)]] = True
    return mask


def split_table(ratings: pd.DataFrame, splits: list[Split]) -> pd.DataFrame:
    """One row per split: sizes, the time window and the cold-start counts.

    Columns: ``fold``; ``n_train``, ``n_test`` (ratings), ``n_unused`` (ratings in neither
    part: without a time, or after a rolling window); ``test_start``, ``test_end`` (epoch
    seconds, NaN when the split is not a window of time); ``train_latest`` (the latest
    training rating's time, NaN without times); ``n_test_users`` (users with a test
    rating); ``n_train_only_users`` (users with training ratings and no test rating);
    ``n_cold_users`` / ``n_cold_items`` (test users / items with no training rating);
    ``n_cold_ratings`` (test ratings whose user or item has no training rating).
    """
    times = (
        ratings["timestamp"].to_numpy("float64", na_value=np.nan)
        if "timestamp" in ratings
        else np.full(len(ratings), np.nan)
    )
    users, items = ratings["user_id"].to_numpy(), ratings["item_id"].to_numpy()
    rows = []
    for s in splits:
        train_users, train_items = set(users[s.train]), set(items[s.train])
        test_users, test_items = set(users[s.test]), set(items[s.test])
        cold_user = ~pd.Series(users[s.test]).isin(train_users).to_numpy()
        cold_item = ~pd.Series(items[s.test]).isin(train_items).to_numpy()
        train_times = times[s.train]
        latest = np.nanmax(train_times) if np.isfinite(train_times).any() else math.nan
        rows.append({
            "fold": s.fold, "n_train": int(s.train.sum()), "n_test": int(s.test.sum()),
            "n_unused": int((~s.train & ~s.test).sum()),
            "test_start": s.test_start, "test_end": s.test_end, "train_latest": float(latest),
            "n_test_users": len(test_users),
            "n_train_only_users": len(train_users - test_users),
            "n_cold_users": len(test_users - train_users),
            "n_cold_items": len(test_items - train_items),
            "n_cold_ratings": int((cold_user | cold_item).sum()),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=SPLIT_COLUMNS)


def protocol_label(
    split: str, *, folds: int, seed: int, test_share: float, last_n: int, windows: int
) -> str:
    """Return the protocol's settings in a few words, before any data is split.

    E.g. ``"5-fold (seed 0)"``, ``"temporal split, the last 20% of the time span tested"``.
    """
    share = f"the last {test_share:.0%} of the time span"
    return {
        "kfold": f"{folds}-fold (seed {seed})",
        "temporal": f"temporal split, {share} tested",
        "last-n": f"leave-last-{last_n} per user (each user's {last_n} latest tested)",
        "rolling": f"rolling origin, {windows} expanding windows over {share}",
    }[split]


def _when(seconds: float) -> str:
    """Epoch seconds as ``YYYY-MM-DD HH:MM UTC``."""
    return pd.Timestamp(seconds, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M UTC")


def describe_protocol(
    split: str,
    table: pd.DataFrame,
    *,
    folds: int,
    seed: int,
    test_share: float,
    last_n: int,
) -> str:
    """Describe the protocol in one or two sentences, with the sizes and cold-start counts.

    ``table`` is ``split_table``'s output for the splits evaluated.
    """
    if split == "kfold":
        return (
            f"{folds}-fold cross-validation (seed {seed}): every rating is held out once, and "
            "every model is trained and tested on the same folds."
        )
    share = f"{test_share:.0%}"
    counts = {c: int(table[c].iloc[0]) for c in SPLIT_COLUMNS if c.startswith("n_")}
    first = SimpleNamespace(**counts)
    start = float(table["test_start"].iloc[0])
    if split == "temporal":
        text = (
            f"Temporal split: trained on the {first.n_train:,} ratings before "
            f"{_when(start)}, tested on the {first.n_test:,} from then on (the "
            f"last {share} of the time span)."
        )
    elif split == "last-n":
        text = (
            f"Leave-last-{last_n} per user: each user's {last_n} latest rating(s) are tested "
            f"({first.n_test:,} ratings of {first.n_test_users:,} users; ties in time broken by "
            f"item id, the larger counting as later), the other {first.n_train:,} are trained "
            f"on; {first.n_train_only_users:,} users with {last_n} or fewer ratings stay in "
            "training only."
        )
    else:
        text = (
            f"Rolling origin over {len(table)} windows covering the last {share} of the time "
            f"span ({_when(start)} to {_when(table['test_end'].iloc[-1])}), each "
            f"trained on every rating before its window (expanding): "
            + "; ".join(
                f"window {int(r.fold) + 1} trains on {int(r.n_train):,} and tests {int(r.n_test):,}"
                for r in table.itertuples()
            )
            + "."
        )
    users, items, cold = (int(table[c].sum()) for c in
                          ("n_cold_users", "n_cold_items", "n_cold_ratings"))  # fmt: skip
    where = {
        "temporal": "first appear after the cut",
        "last-n": "appear only in the test part",
        "rolling": "have no rating before their window (summed over the windows)",
    }[split]
    text += (
        f" Cold start: {users:,} test users and {items:,} items {where}; their {cold:,} "
        "test ratings are predicted by the models' fallback (counted in RMSE and MAE, "
        "flagged was_impossible), and cold users get no top-N list."
    )
    untimed = int(table["n_unused"].min())  # the last window leaves out only the untimed
    if untimed:
        text += f" {untimed:,} ratings have no time and are neither trained on nor tested."
    return text
