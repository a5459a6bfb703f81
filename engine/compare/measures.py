r"""What each version is scored on in the future window, and each user's values.

The window is a ratings table (``user_id, item_id, rating`` and optionally ``timestamp``)
given after both versions' training data. Each window rating is used or excluded for one
reason, counted in this order (``EXCLUSIONS``): a timestamp at or before the end of either
version's training data (when known), a pair either version was trained on, a user
unknown to A or to B, an item unknown to A or to B. A used pair is one both versions can
score from history, so RMSE compares the same pairs.

Per user (``user_values``):

* ``se_a, se_b, n_pairs``: summed squared errors of the clipped predictions over the
  user's used pairs, and their number. A group's RMSE is :math:`\sqrt{\sum se / \sum n}`
  (ratio of sums, as in the audit); lower is better; range ``[0, high - low]``.
* ``ndcg_a, ndcg_b``: NDCG@k of each version's top-k list (items the user rated in *that
  version's* training data excluded, ``engine.recommend.recommend_all``) against the
  user's relevant window items ``R_u`` (rating >= threshold, not rated in either training
  set, user known to both; items a version does not know are relevant but out of its
  reach, so a version that learned new items can gain). Binary relevance,
  ``DCG / IDCG`` with ``IDCG`` of ``min(k, |R_u|)`` hits (``engine.metrics``); users
  with ``R_u`` empty have no value. Range [0, 1], higher is better.
* Exposure (``exposure_values``): each list's position-weighted share going to an item
  group, ``sum_{r: item in g} w_r / sum_r w_r`` with ``w_r = 1 / log2(1 + r)`` (the
  audit's exposure weight), over the window users known to both versions. No better
  direction: a change is "higher" or "lower".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.metrics import ranking_scores
from engine.model.svd import TrainedModel, clip_to_scale
from engine.recommend import recommend_all

#: Reasons a window rating is not used for RMSE, in the order they are tested.
EXCLUSIONS = (
    "not after the training data",
    "pair in a version's training data",
    "user unknown to A",
    "user unknown to B",
    "item unknown to A",
    "item unknown to B",
)


@dataclass(frozen=True)
class WindowPairs:
    """The window split into used and excluded ratings.

    Attributes
    ----------
    used
        Window ratings both versions can score: ``user_id, item_id, rating`` and the
        clipped predictions ``prediction_a, prediction_b``.
    relevant
        ``user_id, item_id`` of the relevant window items (rating >= threshold) of users
        known to both versions, pairs in neither training set (the NDCG targets).
    excluded
        Rows excluded per reason of ``EXCLUSIONS`` (every reason present, 0 when none).
    """

    used: pd.DataFrame
    relevant: pd.DataFrame
    excluded: dict[str, int]


def _trained_pairs(model: TrainedModel, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Whether each ``(users, items)`` index pair (``-1`` = unknown) is a training rating."""
    inter = model.interactions
    keys = inter.rows().astype(np.int64) * inter.n_items + inter.items
    known = (users >= 0) & (items >= 0)
    asked = np.where(known, users.astype(np.int64) * inter.n_items + items, -1)
    return known & np.isin(asked, keys)


def pair_window(
    model_a: TrainedModel,
    model_b: TrainedModel,
    window: pd.DataFrame,
    threshold: float,
    trained_until: float | None = None,
) -> WindowPairs:
    """Split ``window`` into used pairs, relevant items and exclusions (module docstring).

    ``trained_until`` is the latest training timestamp of either version; window ratings
    at or before it are excluded when the window has a ``timestamp`` column.
    """
    frame = window[["user_id", "item_id", "rating"]].astype({"user_id": object, "item_id": object})
    frame = frame.assign(rating=frame["rating"].astype(float)).reset_index(drop=True)
    keep = np.ones(len(frame), bool)
    excluded = {}
    if trained_until is not None and "timestamp" in window.columns:
        stamps = pd.to_numeric(window["timestamp"].reset_index(drop=True), errors="coerce")
        # nullable Int64 timestamps: a missing one compares as NA (kept: time unknown)
        late = (stamps > trained_until).fillna(False).to_numpy(bool) | stamps.isna().to_numpy()
    else:
        late = np.ones(len(frame), bool)
    ua = model_a.interactions.user_index(frame["user_id"].to_numpy())
    ub = model_b.interactions.user_index(frame["user_id"].to_numpy())
    ia = model_a.interactions.item_index(frame["item_id"].to_numpy())
    ib = model_b.interactions.item_index(frame["item_id"].to_numpy())
    trained = _trained_pairs(model_a, ua, ia) | _trained_pairs(model_b, ub, ib)
    tests = (late, ~trained, ua >= 0, ub >= 0, ia >= 0, ib >= 0)
    relevant_ok = np.ones(len(frame), bool)
    for position, (reason, passes) in enumerate(zip(EXCLUSIONS, tests, strict=True)):
        excluded[reason] = int((keep & ~passes).sum())
        keep &= passes
        if position < 4:  # time, training pair and users: also rule out NDCG targets
            relevant_ok &= passes
    used = frame[keep].copy()
    used["prediction_a"] = clip_to_scale(model_a.predict_pairs(ua[keep], ia[keep]), model_a.scale)
    used["prediction_b"] = clip_to_scale(model_b.predict_pairs(ub[keep], ib[keep]), model_b.scale)
    relevant = frame.loc[relevant_ok & (frame["rating"].to_numpy() >= threshold),
                         ["user_id", "item_id"]].drop_duplicates()  # fmt: skip
    return WindowPairs(used.reset_index(drop=True), relevant.reset_index(drop=True), excluded)


def _lists(model: TrainedModel, user_ids: np.ndarray, k: int) -> pd.DataFrame:
    """Top-``k`` lists of ``user_ids`` (known to ``model``): ``user_id, rank, item_id``."""
    users = model.interactions.user_index(user_ids)
    listed = recommend_all(model, k, users=users)
    return listed[["user_id", "rank", "item_id"]].astype({"user_id": object, "item_id": object})


def _ndcg(listed: pd.DataFrame, relevant: pd.DataFrame, users: pd.Index, k: int) -> pd.Series:
    """NDCG@k per user of ``users`` (index ``user_id``) from lists and relevant pairs."""
    hit = listed.merge(relevant.assign(hit=True), on=["user_id", "item_id"], how="left")
    hit["hit"] = hit["hit"].fillna(False).astype(bool)
    matrix = np.zeros((len(users), k), bool)
    rows = users.get_indexer(hit["user_id"])
    inside = (rows >= 0) & (hit["rank"].to_numpy() <= k)
    matrix[rows[inside], hit["rank"].to_numpy()[inside] - 1] = hit["hit"].to_numpy()[inside]
    n_relevant = relevant.groupby("user_id").size().reindex(users).to_numpy(float)
    scores = ranking_scores(matrix, n_relevant, k)["ndcg"].to_numpy()
    return pd.Series(scores, index=users, name="ndcg")


def user_values(
    model_a: TrainedModel, model_b: TrainedModel, pairs: WindowPairs, k: int
) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Per-user values (index ``user_id``) and each version's lists of the window users.

    Columns ``n_pairs, se_a, se_b`` (NaN/0 for users without a used pair) and
    ``ndcg_a, ndcg_b`` (NaN for users without a relevant item); rows: every window user
    known to both versions. The lists (``"A"``, ``"B"``) feed ``exposure_values``.
    """
    used = pairs.used
    errors = used.assign(
        se_a=(used["prediction_a"] - used["rating"]) ** 2,
        se_b=(used["prediction_b"] - used["rating"]) ** 2,
    ).groupby("user_id").agg(n_pairs=("rating", "size"), se_a=("se_a", "sum"),
                             se_b=("se_b", "sum"))  # fmt: skip
    known = pd.Index(sorted(set(pairs.relevant["user_id"]) | set(used["user_id"])),
                     name="user_id", dtype=object)  # fmt: skip
    lists = {"A": _lists(model_a, known.to_numpy(), k), "B": _lists(model_b, known.to_numpy(), k)}
    with_relevant = pd.Index(sorted(set(pairs.relevant["user_id"])), name="user_id", dtype=object)
    table = errors.reindex(known)
    table["n_pairs"] = table["n_pairs"].fillna(0).astype(float)
    for version, listed in lists.items():
        ndcg = _ndcg(listed, pairs.relevant, with_relevant, k)
        table[f"ndcg_{version.lower()}"] = ndcg.reindex(known)
    return table, lists


def exposure_values(
    listed: pd.DataFrame, membership: pd.DataFrame, users: pd.Index
) -> pd.DataFrame:
    """Each user's position-weighted exposure share per item group (module docstring).

    ``membership``: boolean items x groups (index ``item_id``); returns users x groups
    (index ``users``); a user without a list has NaN.
    """
    weight = 1 / np.log2(1 + listed["rank"].to_numpy(float))
    member = membership.reindex(listed["item_id"].to_numpy()).fillna(False).to_numpy(bool)
    frame = pd.DataFrame(member * weight[:, None], columns=membership.columns)
    frame["_total"] = weight
    frame["user_id"] = listed["user_id"].to_numpy()
    sums = frame.groupby("user_id").sum()
    shares = sums[list(membership.columns)].div(sums["_total"], axis=0)
    return shares.reindex(users)
