"""Top-N recommendations for one user or all users at once, vectorised and chunked.

Conventions: items the user has rated are never recommended; ties in score are broken by
ascending item id, so lists are deterministic; ``prediction`` is clipped to the rating
scale for display and ``raw_prediction`` keeps the unclipped score that explanations
add up to. Scoring runs over blocks of users so memory stays under ``max_block_bytes``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from engine.errors import EngineError
from engine.model.base import Recommender
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel, UserVector, clip_to_scale

#: Memory budget of one block of dense scores (float64), in bytes.
DEFAULT_BLOCK_BYTES = 256 * 2**20
SOURCE_MODEL = "model"
SOURCE_FALLBACK = "popularity fallback (no usable rating history)"
COLUMNS = ["user_id", "rank", "item_id", "prediction", "raw_prediction", "source"]


class UnknownUserError(EngineError):
    """A user id the model was not trained on."""


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` highest scores, best first.

    Ties are broken by the lower column index; ``-inf`` (and NaN) marks excluded columns,
    which are returned only when a row has fewer than ``k`` finite scores (callers drop
    them).
    Runs in linear time per row (partition), plus a sort of the ``k`` chosen: only the
    columns scoring at least the row's ``k``-th highest value are gathered, every one
    above it and, among those equal to it, the lowest columns up to ``k``.
    """
    n_rows, n_cols = scores.shape
    k = min(k, n_cols)
    if np.isnan(scores).any():
        scores = np.where(np.isnan(scores), -np.inf, scores)
    if k == 0:
        return np.empty((n_rows, 0), dtype=np.int64)
    kth = np.partition(scores, n_cols - k, axis=1)[:, n_cols - k]
    rows, cols = np.nonzero(scores >= kth[:, None])  # row-major: columns ascend in a row
    values = scores[rows, cols]
    equal = values == kth[rows]
    # rank (1, 2, ...) of each tied column among its row's ties, in column order
    tied = np.cumsum(equal)
    first = np.searchsorted(rows, np.arange(n_rows))
    tie_rank = tied - np.concatenate(([0], tied))[first][rows]
    need = k - np.bincount(rows[~equal], minlength=n_rows)
    keep = ~equal | (tie_rank <= need[rows])
    picked = cols[keep].reshape(n_rows, k)
    order = np.lexsort((picked, -values[keep].reshape(n_rows, k)), axis=1)
    return np.take_along_axis(picked, order, axis=1)


def ranking_order(model: Recommender) -> np.ndarray | None:
    """Return the model's one item order for every user (``item_order()``), else None."""
    order = getattr(model, "item_order", None)
    return None if order is None else order()


def first_unrated(
    inter: Interactions, users: np.ndarray, order: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each user's first ``k`` items of ``order`` that they have not rated: ``(top, valid)``.

    For a model that ranks the items in one ``order`` for every user (``ranking_order``),
    this is ``top_k_indices`` of its scores with rated items (and items not in ``order``)
    at ``-inf``, without scoring every item: a user's first ``k`` unrated items lie within
    the first ``k + (their ratings)`` of ``order``, so the work is ``O(k + ratings)`` per
    user, not ``O(items)``. ``top`` (``len(users) x k``) holds item indices best first;
    ``valid`` is False in the slots after a user's last unrated item of ``order`` (``top``
    is 0 there).
    """
    users = np.asarray(users, dtype=np.int64)
    starts = inter.indptr[users]
    return unrated_prefix(
        order, k, inter.n_items, inter.items, starts, inter.indptr[users + 1] - starts
    )


def unrated_prefix(
    order: np.ndarray,
    k: int,
    n_items: int,
    rated: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``first_unrated`` of users given by their rated items alone (as Spark executors hold them).

    User ``j`` rated the item indices ``rated[starts[j] : starts[j] + counts[j]]`` of a
    catalogue of ``n_items``; ``(top, valid)`` as ``first_unrated``'s.
    """
    starts = np.asarray(starts, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    n_users = len(starts)
    k = min(k, n_items)  # as top_k_indices: no more slots than items
    top = np.zeros((n_users, k), dtype=np.int64)
    valid = np.zeros((n_users, k), dtype=bool)
    if n_users == 0 or k == 0 or len(order) == 0:
        return top, valid
    position = np.full(n_items, len(order), dtype=np.int64)  # past the end: never listed
    position[order] = np.arange(len(order))
    width = np.minimum(k + counts, len(order))  # each user's candidates: that prefix of order
    offset = np.concatenate(([0], np.cumsum(width)))
    owner = np.repeat(np.arange(n_users), width)
    slot = np.arange(offset[-1]) - offset[owner]
    rater = np.repeat(np.arange(n_users), counts)
    rows = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts - starts, counts)
    place = position[rated[rows]]
    inside = place < width[rater]
    free = np.ones(offset[-1], dtype=bool)
    free[offset[rater[inside]] + place[inside]] = False
    seen = np.cumsum(free)
    nth = seen - np.concatenate(([0], seen))[offset[:-1]][owner]  # 1, 2, ... among free slots
    chosen = free & (nth <= k)
    top[owner[chosen], nth[chosen] - 1] = order[slot[chosen]]
    valid[owner[chosen], nth[chosen] - 1] = True
    return top, valid


def user_blocks(n_users: int, n_items: int, max_block_bytes: int) -> Iterator[np.ndarray]:
    """Yield arrays of user indices whose dense score block fits in ``max_block_bytes``."""
    size = max(1, max_block_bytes // max(1, n_items * 8))
    for start in range(0, n_users, size):
        yield np.arange(start, min(start + size, n_users))


def list_frame(
    model: Recommender, users: np.ndarray, top: np.ndarray, raw: np.ndarray, source: str
) -> pd.DataFrame:
    """Return ``recommend_all``'s rows of ``users`` and their lists.

    ``top`` holds item indices (best first) and ``raw`` their scores; excluded (``-inf``)
    slots are dropped, ranks count every slot.
    """
    n = top.shape[1]
    valid = np.isfinite(raw)
    shown = clip_to_scale(raw, model.scale) if model.predicts_ratings else raw
    return pd.DataFrame(
        {
            "user_id": np.repeat(model.interactions.user_ids[users], n)[valid.ravel()],
            "rank": np.tile(np.arange(1, n + 1), len(users))[valid.ravel()],
            "item_id": model.interactions.item_ids[top][valid],
            "prediction": shown[valid],
            "raw_prediction": raw[valid],
            "source": source,
        }
    )


def recommend_all(
    model: Recommender,
    n: int = 10,
    *,
    users: np.ndarray | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> pd.DataFrame:
    """Top-``n`` unrated items for every user (or the given user indices).

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id, rank`` (1 = best), ``item_id, prediction`` (clipped to the
        scale), ``raw_prediction`` (unclipped), ``source`` (``"model"``); sorted by user
        then rank. A user with fewer than ``n`` unrated items gets fewer rows.
    """
    inter = model.interactions
    users = np.arange(inter.n_users) if users is None else np.asarray(users)
    order = ranking_order(model)
    parts = []
    for block in user_blocks(len(users), inter.n_items, max_block_bytes):
        chunk = users[block]
        if order is not None:
            top, valid = first_unrated(inter, chunk, order, n)
            raw = model.predict_pairs(np.repeat(chunk, top.shape[1]), top.ravel())
            raw = np.where(valid, raw.reshape(top.shape), -np.inf)
        else:
            scores = model.score_block(chunk)
            scores[inter.rated_mask(chunk)] = -np.inf
            top = top_k_indices(scores, n)
            raw = np.take_along_axis(scores, top, 1)
        parts.append(list_frame(model, chunk, top, raw, SOURCE_MODEL))
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(parts, ignore_index=True)


def recommend(model: Recommender, user_id: str, n: int = 10) -> pd.DataFrame:
    """Top-``n`` for one known user (same columns as ``recommend_all``).

    Raises
    ------
    UnknownUserError
        The user id is not in the model's training data.
    """
    index = model.interactions.user_index([user_id])[0]
    if index < 0:
        raise UnknownUserError(
            f"User {user_id!r} is not in the training data ({model.interactions.n_users:,} "
            "users): check the id (ids are exact strings, '001' is not '1') or enter the "
            "user's ratings to fold them in."
        )
    return recommend_all(model, n, users=np.array([index]))


def popular_items(model: Recommender, exclude: np.ndarray, n: int) -> np.ndarray:
    """Return the ``n`` most-rated training items not in ``exclude`` (ties by item id)."""
    counts = model.interactions.counts_per_item().astype(float)
    counts[exclude] = -np.inf
    counts[counts == 0] = -np.inf
    return top_k_indices(counts[None, :], n)[0]


def recommend_for_vector(
    model: TrainedModel, vector: UserVector, n: int = 10, user_id: str = "(folded-in user)"
) -> pd.DataFrame:
    """Top-``n`` for a folded-in user (what-if edits, new users), excluding rated items.

    With no usable history the list is the most popular items, labelled
    ``source = SOURCE_FALLBACK``; its predictions are the no-history scores ``mu + b_i``.
    """
    scores = model.score_vector(vector)
    scores[vector.items] = -np.inf
    if vector.has_history:
        top, source = top_k_indices(scores[None, :], n), SOURCE_MODEL
    else:
        top, source = popular_items(model, vector.items, n)[None, :], SOURCE_FALLBACK
    frame = list_frame(model, np.array([0]), top, scores[top], source)
    frame["user_id"] = user_id
    return frame


def clipping_note(recs: pd.DataFrame, scale: tuple[float, float], n_ratings: int) -> str | None:
    """Say how many of a list's predictions lie outside the rating scale, or ``None``.

    ``recs``: a list with ``prediction`` (clipped to ``scale``) and ``raw_prediction``;
    ``n_ratings``: the ratings the user's vector rests on. A raw score beyond the scale is
    the model extrapolating; the list's order follows the raw scores, so items shown with
    the same clipped value are still ranked.
    """
    raw = recs["raw_prediction"].to_numpy(np.float64)
    above, below = int((raw > scale[1]).sum()), int((raw < scale[0]).sum())
    if not above and not below:
        return None
    parts = []
    if above:
        parts.append(f"{above} above the top of the scale (raw up to {raw.max():.2f})")
    if below:
        parts.append(f"{below} below its bottom (raw down to {raw.min():.2f})")
    verb = "is" if above + below == 1 else "are"
    return (
        f"Of these {len(recs)} predictions, {' and '.join(parts)} {verb} shown clipped to "
        f"the scale {scale[0]:g}-{scale[1]:g}; the list is ranked by the raw scores. The "
        f"model extrapolates beyond the scale for this user, whose vector rests on "
        f"{n_ratings:,} rating{'s' * (n_ratings != 1)}: read the raw values as an order, not "
        "as ratings."
    )
