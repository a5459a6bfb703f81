r"""What each version is scored on in the future window, and each user's values.

The window is a ratings table (``user_id, item_id, rating`` and optionally ``timestamp``)
given after both versions' training data.

The comparison's population
---------------------------
Every window rating, except those left out for one reason, counted in this order
(``EXCLUSIONS``): a timestamp at or before the end of either version's training data
(when known), or a pair either version was trained on (not a later rating). An offline
A/B scores what each version *would have served*, so a user or item a version does not
know stays in: as in the time protocols' cold start (``engine.protocols``,
``engine.evaluate.held_out_predictions``), that version predicts the rating by its
fallback, the same model with the unknown side left out (SVD: ``mu + b_i`` for a user it
has not seen, ``mu + b_u`` for an item, ``mu`` for both), clipped to the scale. A version
"knows" a user or item when it has at least one training rating of it (a catalogue item
without one is unknown, as in the evaluation). Each used rating records, per version,
why it was predicted by the fallback (``fallback_a``, ``fallback_b``: ``FALLBACKS``, or
``""`` when the model predicted it); ``fallback_counts`` counts them.

Per user (``user_values``): every user with a rating in the population.

* ``se_a, se_b, n_pairs``: summed squared errors of the clipped predictions (model or
  fallback) over the user's window ratings, and their number. A group's RMSE is
  :math:`\sqrt{\sum se / \sum n}` (ratio of sums, as in the audit); lower is better;
  range ``[0, high - low]``.
* ``new_to_a, new_to_b``: whether the version has no training rating of the user;
  ``fallback_a, fallback_b``: how many of the user's window ratings it predicted by its
  fallback.
* ``ndcg_a, ndcg_b``: NDCG@k of each version's top-k list against the user's relevant
  window items ``R_u`` (rating >= threshold, in the population). A version's list of a
  user it knows excludes what the user rated in *that version's* training data
  (``engine.recommend.recommend_all``); a user it does not know gets its fallback list,
  the ``k`` items with most training ratings (``engine.recommend.popular_items``, the
  dashboard's list for a user without history). Items a version does not know are
  relevant but out of its reach, so a version that learned new items can gain. Binary
  relevance, ``DCG / IDCG`` with ``IDCG`` of ``min(k, |R_u|)`` hits (``engine.metrics``);
  users with ``R_u`` empty have no value. Range [0, 1], higher is better.
* Exposure (``exposure_values``): each list's position-weighted share going to an item
  group, ``sum_{r: item in g} w_r / sum_r w_r`` with ``w_r = 1 / log2(1 + r)`` (the
  audit's exposure weight), over every user of the population (model or fallback list).
  No better direction: a change is "higher" or "lower".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.metrics import ranking_scores
from engine.model.svd import TrainedModel, clip_to_scale
from engine.recommend import popular_items, recommend_all

#: Reasons a window rating is left out of the comparison, in the order they are tested.
EXCLUSIONS = (
    "not after the training data",
    "pair in a version's training data",
)
#: Why a version predicted a window rating by its fallback (``""``: by its model).
FALLBACKS = ("user not seen", "item not seen", "user and item not seen")


@dataclass(frozen=True)
class WindowPairs:
    """The window split into the comparison's population and exclusions.

    Attributes
    ----------
    used
        The population (module docstring): ``user_id, item_id, rating``, the clipped
        predictions ``prediction_a, prediction_b`` (model or fallback) and
        ``fallback_a, fallback_b`` (``FALLBACKS`` or ``""``).
    relevant
        ``user_id, item_id`` of the population's relevant ratings (rating >= threshold):
        the NDCG targets.
    excluded
        Rows excluded per reason of ``EXCLUSIONS`` (every reason present, 0 when none).
    """

    used: pd.DataFrame
    relevant: pd.DataFrame
    excluded: dict[str, int]


def known_indices(
    model: TrainedModel, user_ids: np.ndarray, item_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``model``'s user and item indices, ``-1`` where it has no training rating of them."""
    inter = model.interactions
    users, items = inter.user_index(user_ids), inter.item_index(item_ids)
    for index, counts in ((users, inter.counts_per_user()), (items, inter.counts_per_item())):
        found = index >= 0
        index[found] = np.where(counts[index[found]] > 0, index[found], -1)
    return users, items


def fallback_reasons(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Per pair of indices (``-1`` = unknown): ``FALLBACKS`` entry, or ``""`` when known."""
    return np.where(
        users < 0,
        np.where(items < 0, FALLBACKS[2], FALLBACKS[0]),
        np.where(items < 0, FALLBACKS[1], ""),
    )


def fallback_counts(used: pd.DataFrame, version: str) -> dict[str, int]:
    """Ratings of ``used`` the version (``"a"`` or ``"b"``) predicted by fallback, per reason."""
    reasons = used[f"fallback_{version}"]
    return {reason: int((reasons == reason).sum()) for reason in FALLBACKS}


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
    """Split ``window`` into the population, its relevant items and exclusions (module docstring).

    ``trained_until`` is the latest training timestamp of either version; window ratings
    at or before it are excluded when the window has a ``timestamp`` column.
    """
    frame = window[["user_id", "item_id", "rating"]].astype({"user_id": object, "item_id": object})
    frame = frame.assign(rating=frame["rating"].astype(float)).reset_index(drop=True)
    if trained_until is not None and "timestamp" in window.columns:
        stamps = pd.to_numeric(window["timestamp"].reset_index(drop=True), errors="coerce")
        # nullable Int64 timestamps: a missing one compares as NA (kept: time unknown)
        late = (stamps > trained_until).fillna(False).to_numpy(bool) | stamps.isna().to_numpy()
    else:
        late = np.ones(len(frame), bool)
    user_ids, item_ids = frame["user_id"].to_numpy(), frame["item_id"].to_numpy()
    ua, ia = known_indices(model_a, user_ids, item_ids)
    ub, ib = known_indices(model_b, user_ids, item_ids)
    trained = _trained_pairs(model_a, ua, ia) | _trained_pairs(model_b, ub, ib)
    keep = np.ones(len(frame), bool)
    excluded = {}
    for reason, passes in zip(EXCLUSIONS, (late, ~trained), strict=True):
        excluded[reason] = int((keep & ~passes).sum())
        keep &= passes
    used = frame[keep].copy()
    for name, model, users, items in (("a", model_a, ua, ia), ("b", model_b, ub, ib)):
        predicted = model.predict_pairs(users[keep], items[keep])
        used[f"prediction_{name}"] = clip_to_scale(predicted, model.scale)
        used[f"fallback_{name}"] = fallback_reasons(users[keep], items[keep])
    used = used.reset_index(drop=True)
    relevant = used.loc[used["rating"].to_numpy() >= threshold, ["user_id", "item_id"]]
    return WindowPairs(used, relevant.drop_duplicates().reset_index(drop=True), excluded)


def _lists(model: TrainedModel, user_ids: np.ndarray, k: int) -> pd.DataFrame:
    """Top-``k`` lists of ``user_ids``: ``user_id, rank, item_id`` (module docstring).

    A user ``model`` knows gets its list (``recommend_all``); one it does not know gets
    its fallback list, the ``k`` most-rated training items (``popular_items``).
    """
    users, _ = known_indices(model, user_ids, np.empty(0, dtype=object))
    known = users >= 0
    parts = []
    if known.any():
        listed = recommend_all(model, k, users=users[known])
        parts.append(listed[["user_id", "rank", "item_id"]])
    if not known.all():
        top = popular_items(model, np.empty(0, dtype=np.int64), k)
        top = top[model.interactions.counts_per_item()[top] > 0]
        strangers = np.asarray(user_ids, dtype=object)[~known]
        parts.append(pd.DataFrame({
            "user_id": np.repeat(strangers, len(top)),
            "rank": np.tile(np.arange(1, len(top) + 1), len(strangers)),
            "item_id": np.tile(model.interactions.item_ids[top], len(strangers)),
        }))  # fmt: skip
    listed = pd.concat(parts, ignore_index=True)
    return listed.astype({"user_id": object, "item_id": object, "rank": np.int64})


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

    Columns ``n_pairs, se_a, se_b, fallback_a, fallback_b, new_to_a, new_to_b`` and
    ``ndcg_a, ndcg_b`` (NaN for users without a relevant item); rows: every user of the
    population (module docstring). The lists (``"A"``, ``"B"``) feed ``exposure_values``.
    """
    used = pairs.used
    errors = used.assign(
        se_a=(used["prediction_a"] - used["rating"]) ** 2,
        se_b=(used["prediction_b"] - used["rating"]) ** 2,
        fallback_a=(used["fallback_a"] != "").astype(float),
        fallback_b=(used["fallback_b"] != "").astype(float),
    ).groupby("user_id").agg(n_pairs=("rating", "size"), se_a=("se_a", "sum"),
                             se_b=("se_b", "sum"), fallback_a=("fallback_a", "sum"),
                             fallback_b=("fallback_b", "sum"))  # fmt: skip
    everyone = pd.Index(sorted(set(used["user_id"])), name="user_id", dtype=object)
    table = errors.reindex(everyone)
    table["n_pairs"] = table["n_pairs"].astype(float)
    ids = everyone.to_numpy()
    none = np.empty(0, dtype=object)
    table["new_to_a"] = known_indices(model_a, ids, none)[0] < 0
    table["new_to_b"] = known_indices(model_b, ids, none)[0] < 0
    lists = {"A": _lists(model_a, ids, k), "B": _lists(model_b, ids, k)}
    with_relevant = pd.Index(sorted(set(pairs.relevant["user_id"])), name="user_id", dtype=object)
    for version, listed in lists.items():
        ndcg = _ndcg(listed, pairs.relevant, with_relevant, k)
        table[f"ndcg_{version.lower()}"] = ndcg.reindex(everyone)
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
