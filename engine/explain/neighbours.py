r"""Neighbours behind a prediction: similar users who rated the item, similar rated items.

Similarity is the cosine of latent vectors, :math:`\cos(a, b) = a \cdot b / (|a| |b|)`
in [-1, 1] (higher = more alike): user factors :math:`p_u` for users, item factors
:math:`q_i` for items. It describes the SVD's own notion of "alike"; with few ratings a
user's vector is shrunk towards zero, so similarities of sparse users are less reliable.
For the ``KNNBaseline`` comparator, ``knn_split`` gives its exact additive split
:math:`\hat r_{ui} = b_{ui} + \sum_j w_j (r_{uj} - b_{uj})`. When none of the user's rated
items is positively similar to the target, the sum is empty and the estimate is the
baseline :math:`b_{ui} = \mu + b_u + b_i` (``NO_KNN_NEIGHBOUR`` says so).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.explain.additive import additive_view
from engine.explain.titles import titles_for
from engine.model.comparators import KNNBaselineModel
from engine.model.svd import TrainedModel, UserVector

if TYPE_CHECKING:  # shap takes ~2 s to import: loaded where first used
    import shap

N_NEIGHBOURS = 10
#: Why a ``knn_split`` has no neighbour term.
NO_KNN_NEIGHBOUR = (
    "none of the user's rated items is positively similar to this item; the prediction is "
    "the baseline"
)


def _cosine(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(vector)
    return np.divide(matrix @ vector, norms, out=np.zeros(len(matrix)), where=norms > 0)


def similar_users(
    model: TrainedModel,
    vector: UserVector,
    item: int,
    n: int = N_NEIGHBOURS,
    exclude_user: int | None = None,
) -> pd.DataFrame:
    """Users most similar to this one (cosine of ``p_u``) among those who rated ``item``.

    Columns ``user_id, similarity, rating`` (their rating of the item), most similar first.
    """
    inter = model.interactions
    raters, ratings = inter.raters(item)
    keep = raters != exclude_user if exclude_user is not None else np.ones(len(raters), bool)
    raters, ratings = raters[keep], ratings[keep]
    sims = _cosine(model.P[raters], vector.pu)
    order = np.lexsort((raters, -sims))[:n]
    return pd.DataFrame(
        {"user_id": inter.user_ids[raters[order]], "similarity": sims[order],
         "rating": ratings[order]}
    )  # fmt: skip


def similar_items(
    model: TrainedModel,
    vector: UserVector,
    item: int,
    titles: dict[str, str] | None = None,
    n: int = N_NEIGHBOURS,
) -> pd.DataFrame:
    """Return the user's rated items most similar to ``item`` (cosine of ``q``).

    Columns ``item_id, title, similarity, rating`` (the user's rating), most similar first.
    """
    items, ratings = vector.items, vector.ratings
    sims = _cosine(model.Q[items], model.Q[item])
    order = np.lexsort((items, -sims))[:n]
    ids = model.interactions.item_ids[items[order]]
    return pd.DataFrame(
        {"item_id": ids, "title": titles_for(ids, titles),
         "similarity": sims[order], "rating": ratings[order]}
    )  # fmt: skip


def knn_split(
    knn: KNNBaselineModel, user: int, item: int, titles: dict[str, str] | None = None
) -> shap.Explanation:
    """``KNNBaseline``'s estimate as ``base = b_ui`` plus ``w_j (r_uj - b_uj)`` per neighbour.

    ``base_values + values.sum()`` equals ``knn.predict_pairs`` for the pair (unclipped).
    With no positively similar rated item the view has no terms (``data`` is ``None``)
    and the estimate is ``b_ui`` (see ``NO_KNN_NEIGHBOUR``).
    """
    items, weights, deviation = knn.neighbours(user, item)
    ids = knn.interactions.item_ids[items]
    return additive_view(
        weights * deviation,
        float(knn.mu + knn.bu[user] + knn.bi[item]),
        deviation,
        titles_for(ids, titles),
    )


def most_similar_users(
    model: TrainedModel, vector: UserVector, n: int = N_NEIGHBOURS, exclude_user: int | None = None
) -> pd.DataFrame:
    """Users most similar to this one overall (cosine of ``p_u``): ``user_id, similarity``."""
    sims = _cosine(model.P, vector.pu)
    if exclude_user is not None:
        sims[exclude_user] = -np.inf
    order = np.lexsort((np.arange(len(sims)), -sims))[:n]
    return pd.DataFrame({"user_id": model.interactions.user_ids[order], "similarity": sims[order]})
