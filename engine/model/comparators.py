r"""Comparators trained on the same folds as the SVD engine.

* ``BaselineModel``: Surprise ``BaselineOnly`` (ALS baselines),
  :math:`\hat r_{ui} = \mu + b_u + b_i`.
* ``KNNBaselineModel``: Surprise ``KNNBaseline``, item-based with ``pearson_baseline``
  similarity, ``k = 40``, ``min_k = 1`` (Koren, "Factor in the neighbors", TKDD 2010):

  .. math::

      \hat r_{ui} = b_{ui} + \frac{\sum_{j \in N^k_u(i)} s_{ij}^+ (r_{uj} - b_{uj})}
                                  {\sum_{j \in N^k_u(i)} s_{ij}^+},
      \qquad b_{ui} = \mu + b_u + b_i,

  where :math:`N^k_u(i)` are the ``k`` items rated by ``u`` most similar to ``i`` and only
  positive similarities :math:`s^+` count (Surprise's rule); with none, :math:`\hat r = b_{ui}`.
  The baselines are Surprise's ALS fit; the similarity :math:`s_{ij}` is Surprise's
  ``pearson_baseline`` (shrinkage 100) computed by :func:`engine.model.similarity.pearson_baseline`
  (one fused sparse product, not Surprise's Python-level loop) directly in our item order.
  Scoring is numpy, all items of a user at once; equal to Surprise's ``estimate``.
* ``PopularityModel``: ranks items by their number of training ratings (ties by item id).
  It predicts no rating, so only ranking metrics apply to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from surprise import BaselineOnly, KNNBaseline

from engine.errors import ConfigError
from engine.model.base import check_finite, surprise_order, surprise_trainset
from engine.model.interactions import Interactions
from engine.model.similarity import pearson_baseline

KNN_K = 40
KNN_MIN_K = 1
#: Item-item similarity is dense: n_items^2 float64. Above this many items it is refused.
KNN_MAX_ITEMS = 12_000


@dataclass(frozen=True)
class BaselineModel:
    r"""Surprise ``BaselineOnly``: :math:`\hat r_{ui} = \mu + b_u + b_i` (ALS estimates)."""

    mu: float
    bu: np.ndarray
    bi: np.ndarray
    interactions: Interactions
    scale: tuple[float, float]
    name: str = "BaselineOnly"
    predicts_ratings: bool = True

    def predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Unclipped ``mu + b_u + b_i``; unknown users/items contribute 0."""
        users, items = np.asarray(users), np.asarray(items)
        bu = np.where(users >= 0, self.bu[np.maximum(users, 0)], 0.0)
        bi = np.where(items >= 0, self.bi[np.maximum(items, 0)], 0.0)
        return self.mu + bu + bi

    def score_block(self, users: np.ndarray) -> np.ndarray:
        """All-item scores for the given users."""
        return self.mu + self.bu[np.asarray(users), None] + self.bi[None, :]

    def item_order(self) -> np.ndarray | None:
        """Item indices best first, one order for every user: by ``b_i``, ties by index.

        ``mu + b_u`` is the same for all of a user's items, so every user ranks the items
        by ``b_i`` (``engine.recommend.first_unrated`` then lists without scoring every
        item). Dense scoring rounds ``mu + b_u + b_i``: two ``b_i`` closer than that rounding
        (about 4e-16 on a 1-5 scale) tie there and keep the lower index; here the larger
        ``b_i`` comes first.
        """
        return np.argsort(-self.bi, kind="stable")


@dataclass(frozen=True)
class KNNBaselineModel(BaselineModel):
    """Surprise ``KNNBaseline`` (item-based, pearson_baseline) with numpy scoring.

    ``sim`` is the item-item similarity ``(n_items, n_items)`` in our item order.
    """

    sim: np.ndarray = None  # type: ignore[assignment]
    k: int = KNN_K
    name: str = "KNNBaseline"

    def neighbours(self, user: int, item: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return one estimate's terms: ``(items j, weights w_j, deviations r_uj - b_uj)``.

        ``j`` are the user's rated items among the ``k`` most similar to ``item`` with a
        positive similarity; ``w_j = s_ij / sum s``; the estimate is
        ``mu + b_u + b_i + sum_j w_j (r_uj - b_uj)``.
        """
        items, ratings = self.interactions.history(user)
        if len(items) == 0:
            return items, np.zeros(0), np.zeros(0)
        sims = self.sim[item, items]
        if len(items) > self.k:
            keep = _top_k_stable(sims[None, :], self.k)[0]
            items, ratings, sims = items[keep], ratings[keep], sims[keep]
        positive = sims > 0
        items, ratings, sims = items[positive], ratings[positive], sims[positive]
        deviation = ratings - self.mu - self.bu[user] - self.bi[items]
        weights = sims / sims.sum() if len(sims) >= KNN_MIN_K else np.zeros(0)
        return items[: len(weights)], weights, deviation[: len(weights)]

    def _user_scores(self, user: int, targets: np.ndarray) -> np.ndarray:
        """Scores of one known user for the target item indices (all known)."""
        base = self.mu + self.bu[user] + self.bi[targets]
        items, ratings = self.interactions.history(user)
        if len(items) == 0:
            return base
        deviation = ratings - self.mu - self.bu[user] - self.bi[items]
        sims = self.sim[np.ix_(targets, items)]
        if len(items) > self.k:
            top = _top_k_stable(sims, self.k)
            sims = np.take_along_axis(sims, top, axis=1)
            deviation = deviation[top]
        else:
            deviation = np.broadcast_to(deviation, sims.shape)
        weights = np.where(sims > 0, sims, 0.0)
        total = weights.sum(axis=1)
        weighted = (weights * deviation).sum(axis=1)
        enough = (weights > 0).sum(axis=1) >= KNN_MIN_K
        return base + np.where(enough & (total > 0), weighted / np.where(total > 0, total, 1), 0)

    def predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Unclipped KNNBaseline estimates; unknown users/items get the baseline."""
        users, items = np.asarray(users), np.asarray(items)
        out = BaselineModel.predict_pairs(self, users, items)
        both = (users >= 0) & (items >= 0)
        for user in np.unique(users[both]):
            rows = np.flatnonzero(both & (users == user))
            out[rows] = self._user_scores(int(user), items[rows])
        return out

    def score_block(self, users: np.ndarray) -> np.ndarray:
        """All-item scores for the given users."""
        targets = np.arange(self.interactions.n_items)
        return np.vstack([self._user_scores(int(u), targets) for u in np.asarray(users)])

    def item_order(self) -> np.ndarray | None:
        """None: the neighbours' term makes each user's order of the items their own."""
        return None


def _top_k_stable(values: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` largest values, ties taken in column order.

    This is Surprise's ``heapq.nlargest(k)`` over the history order. A partition finds
    the top ``k`` in linear time; rows where a positive ``k``-th value is tied across
    the cut are redone with a stable sort.
    """
    top = np.argpartition(-values, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(values, top, axis=1).min(axis=1)
    # Only positive similarities are used, so a tie at a value <= 0 changes nothing.
    tied = (kth > 0) & ((values >= kth[:, None]).sum(axis=1) > k)
    if tied.any():
        top[tied] = np.argsort(-values[tied], axis=1, kind="stable")[:, :k]
    return top


def popularity_scores(counts: np.ndarray) -> np.ndarray:
    """``count - index / n_items``: the ratings count, ties broken towards the lower index."""
    n = len(counts)
    return np.asarray(counts, dtype=float) - np.arange(n) / max(n, 1)


@dataclass(frozen=True)
class PopularityModel:
    """Ranks items by training rating count; ``score = count - rank(item_id) / n_items``.

    The fractional part breaks ties by ascending item id, so the ranking is
    deterministic. It predicts no rating (``predicts_ratings = False``).
    """

    counts: np.ndarray
    interactions: Interactions
    scale: tuple[float, float]
    name: str = "Popularity"
    predicts_ratings: bool = False

    def _scores(self) -> np.ndarray:
        return popularity_scores(self.counts)

    def predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Popularity score of each item (the same for every user); NaN for unknown items."""
        items = np.asarray(items)
        return np.where(items >= 0, self._scores()[np.maximum(items, 0)], np.nan)

    def score_block(self, users: np.ndarray) -> np.ndarray:
        """Return the popularity scores repeated for each user."""
        return np.broadcast_to(self._scores(), (len(np.asarray(users)), len(self.counts))).copy()

    def item_order(self) -> np.ndarray | None:
        """Item indices best first, the same for every user (most rated, ties by index)."""
        return np.argsort(-self._scores(), kind="stable")


def _baseline_arrays(algo, trainset, interactions: Interactions):
    present = interactions.counts_per_item() > 0
    users, items = surprise_order(trainset, interactions.user_ids, interactions.item_ids[present])
    bi = np.zeros(interactions.n_items)
    bi[present] = algo.bi[items]
    return float(trainset.global_mean), algo.bu[users].copy(), bi


def _fit_baselines(
    ratings: pd.DataFrame,
    scale: tuple[float, float],
    item_ids: np.ndarray | None,
    interactions: Interactions | None = None,
) -> tuple[float, np.ndarray, np.ndarray, Interactions]:
    """Surprise's ALS baselines ``(mu, b_u, b_i)`` in our user and item order.

    ``BaselineOnly`` with its default options runs the same ``baseline_als`` as
    ``KNNBaseline.compute_baselines`` with its default ``bsl_options``. ``interactions``:
    ``Interactions.from_frame(ratings, item_ids)`` if already built (``engine.evaluate``
    indexes each split once for every model).
    """
    trainset = surprise_trainset(ratings, scale)
    algo = BaselineOnly(verbose=False)
    algo.fit(trainset)
    check_finite("BaselineOnly", "check the ratings for extreme values", algo.bu, algo.bi)
    if interactions is None:
        interactions = Interactions.from_frame(ratings, item_ids)
    return *_baseline_arrays(algo, trainset, interactions), interactions


def train_baseline(
    ratings: pd.DataFrame,
    scale: tuple[float, float],
    item_ids: np.ndarray | None = None,
    *,
    interactions: Interactions | None = None,
) -> BaselineModel:
    """Fit Surprise ``BaselineOnly`` (default ALS options); ``interactions`` as in ``train_svd``."""
    mu, bu, bi, interactions = _fit_baselines(ratings, scale, item_ids, interactions)
    return BaselineModel(mu, bu, bi, interactions, scale)


def train_knn_baseline(
    ratings: pd.DataFrame,
    scale: tuple[float, float],
    item_ids: np.ndarray | None = None,
    *,
    interactions: Interactions | None = None,
) -> KNNBaselineModel:
    """Fit Surprise's ``KNNBaseline`` (item-based, ``pearson_baseline``, k=40, min_k=1).

    The ALS baselines come from Surprise; the similarity from
    :func:`~engine.model.similarity.pearson_baseline`, computed in our item order so
    that the ``n_items x n_items`` matrix is the only one of its size (Surprise's fit
    allocates five, and a reordered copy would be a sixth). Items without training
    ratings have an all-zero row and column. Equal to Surprise's ``KNNBaseline`` to
    rounding (``tests/test_comparators.py``).

    Raises
    ------
    ConfigError
        More than ``KNN_MAX_ITEMS`` items: the dense similarity matrix would not fit.
    """
    n_items = len(item_ids) if item_ids is not None else ratings["item_id"].nunique()
    if n_items > KNN_MAX_ITEMS:
        gib = n_items**2 * 8 / 2**30
        raise ConfigError(
            f"KNNBaseline needs a {n_items:,} x {n_items:,} item "
            f"similarity matrix ({gib:.1f} GiB), over the limit of {KNN_MAX_ITEMS:,} items: "
            "leave KNNBaseline out of the comparison for this dataset."
        )
    mu, bu, bi, interactions = _fit_baselines(ratings, scale, item_ids, interactions)
    rows = interactions.rows()
    sim = pearson_baseline(interactions.items, rows, interactions.ratings, mu, bi, bu)
    return KNNBaselineModel(mu, bu, bi, interactions, scale, sim=sim)


class FastKNNBaseline(KNNBaseline):
    """Surprise's ``KNNBaseline`` whose ``pearson_baseline`` similarity is ours.

    Only ``compute_similarities`` changes: for ``name="pearson_baseline"`` (user- or
    item-based, any ``shrinkage`` and ``min_support``) it returns
    :func:`~engine.model.similarity.pearson_baseline` on the trainset's inner ids, the
    same matrix as Surprise's to rounding, except where a denominator is zero: Surprise
    raises ``ZeroDivisionError`` there, this gives 0. Fitting, ``sim`` and ``estimate``
    are otherwise Surprise's; other similarities use Surprise's code.
    """

    def compute_similarities(self) -> np.ndarray:
        """Return the similarity matrix over Surprise inner ids (see the class docstring)."""
        if self.sim_options.get("name", "msd").lower() != "pearson_baseline":
            return super().compute_similarities()
        bu, bi = self.compute_baselines()
        users, items, ratings = _trainset_arrays(self.trainset)
        if self.sim_options["user_based"]:
            x, y, bx, by = users, items, bu, bi
        else:
            x, y, bx, by = items, users, bi, bu
        return pearson_baseline(
            x, y, ratings, self.trainset.global_mean, bx, by,
            shrinkage=self.sim_options.get("shrinkage", 100),
            min_support=self.sim_options.get("min_support", 1),
        )  # fmt: skip


def _trainset_arrays(trainset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inner user ids, inner item ids and ratings of a Surprise ``Trainset``."""
    n = trainset.n_ratings
    users = np.empty(n, dtype=np.int64)
    items = np.empty(n, dtype=np.int64)
    ratings = np.empty(n)
    for k, (u, i, r) in enumerate(trainset.all_ratings()):
        users[k], items[k], ratings[k] = u, i, r
    return users, items, ratings


def train_popularity(
    ratings: pd.DataFrame | None,
    scale: tuple[float, float],
    item_ids: np.ndarray | None = None,
    *,
    interactions: Interactions | None = None,
) -> PopularityModel:
    """Count each item's training ratings; ``interactions`` as in ``train_svd``.

    ``ratings`` is not read when ``interactions`` is given (it may then be ``None``).
    """
    if interactions is None:
        interactions = Interactions.from_frame(ratings, item_ids)
    return PopularityModel(interactions.counts_per_item().astype(float), interactions, scale)
