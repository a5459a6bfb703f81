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
  Computed here in numpy, all items of a user at once; equal to Surprise's ``estimate``.
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
        n = len(self.counts)
        return self.counts - np.arange(n) / max(n, 1)

    def predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Popularity score of each item (the same for every user); NaN for unknown items."""
        items = np.asarray(items)
        return np.where(items >= 0, self._scores()[np.maximum(items, 0)], np.nan)

    def score_block(self, users: np.ndarray) -> np.ndarray:
        """Return the popularity scores repeated for each user."""
        return np.broadcast_to(self._scores(), (len(np.asarray(users)), len(self.counts))).copy()


def _baseline_arrays(algo, trainset, interactions: Interactions):
    present = interactions.counts_per_item() > 0
    users, items = surprise_order(trainset, interactions.user_ids, interactions.item_ids[present])
    bi = np.zeros(interactions.n_items)
    bi[present] = algo.bi[items]
    return float(trainset.global_mean), algo.bu[users].copy(), bi, present, items


def train_baseline(
    ratings: pd.DataFrame, scale: tuple[float, float], item_ids: np.ndarray | None = None
) -> BaselineModel:
    """Fit Surprise ``BaselineOnly`` (default ALS options)."""
    trainset = surprise_trainset(ratings, scale)
    algo = BaselineOnly(verbose=False)
    algo.fit(trainset)
    check_finite("BaselineOnly", "check the ratings for extreme values", algo.bu, algo.bi)
    interactions = Interactions.from_frame(ratings, item_ids)
    mu, bu, bi, _, _ = _baseline_arrays(algo, trainset, interactions)
    return BaselineModel(mu, bu, bi, interactions, scale)


def train_knn_baseline(
    ratings: pd.DataFrame, scale: tuple[float, float], item_ids: np.ndarray | None = None
) -> KNNBaselineModel:
    """Fit Surprise ``KNNBaseline`` (item-based, ``pearson_baseline``, k=40, min_k=1).

    Raises
    ------
    ConfigError
        More than ``KNN_MAX_ITEMS`` items: the dense similarity matrix would not fit.
    """
    interactions = Interactions.from_frame(ratings, item_ids)
    if interactions.n_items > KNN_MAX_ITEMS:
        gib = interactions.n_items**2 * 8 / 2**30
        raise ConfigError(
            f"KNNBaseline needs a {interactions.n_items:,} x {interactions.n_items:,} item "
            f"similarity matrix ({gib:.1f} GiB), over the limit of {KNN_MAX_ITEMS:,} items: "
            "leave KNNBaseline out of the comparison for this dataset."
        )
    trainset = surprise_trainset(ratings, scale)
    algo = KNNBaseline(
        k=KNN_K,
        min_k=KNN_MIN_K,
        sim_options={"name": "pearson_baseline", "user_based": False},
        verbose=False,
    )
    algo.fit(trainset)
    mu, bu, bi, present, items = _baseline_arrays(algo, trainset, interactions)
    sim = np.zeros((interactions.n_items, interactions.n_items))
    sim[np.ix_(present, present)] = algo.sim[np.ix_(items, items)]
    return KNNBaselineModel(mu, bu, bi, interactions, scale, sim=sim)


def train_popularity(
    ratings: pd.DataFrame, scale: tuple[float, float], item_ids: np.ndarray | None = None
) -> PopularityModel:
    """Count each item's training ratings."""
    interactions = Interactions.from_frame(ratings, item_ids)
    return PopularityModel(interactions.counts_per_item().astype(float), interactions, scale)
