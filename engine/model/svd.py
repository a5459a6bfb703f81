r"""The SVD engine: Surprise ``SVD`` trained once, then every score in numpy.

Prediction (Koren, Bell & Volinsky, "Matrix factorization techniques for recommender
systems", IEEE Computer 2009; Surprise's ``SVD``):

.. math:: \hat r_{ui} = \mu + b_u + b_i + q_i^\top p_u

where an unknown user contributes no ``b_u, p_u`` and an unknown item no ``b_i, q_i``
(Surprise's convention). Scores here are unclipped; clip to the rating scale for display
and accuracy metrics (``clip_to_scale``), keep them unclipped for explanations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from surprise import SVD

from engine.data.types import RatingData
from engine.model.base import check_finite, surprise_order, surprise_trainset
from engine.model.config import ModelConfig
from engine.model.interactions import Interactions
from engine.model.refit import refit_all_users
from engine.model.ridge import fit_user

log = logging.getLogger(__name__)

#: ``progress(fraction, message)`` callback used by long operations.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TrainedModel:
    """A trained SVD as plain arrays.

    Attributes
    ----------
    mu
        Global mean of the training ratings.
    bu, P
        User biases ``(n_users,)`` and factors ``(n_users, k)``: Surprise's SGD values,
        or the exact ridge refit when ``config.refit_users``.
    bi, Q
        Item biases ``(n_items,)`` and factors ``(n_items, k)`` from Surprise.
    interactions
        The training ratings; fixes the user and item order of every array.
    scale
        ``(low, high)`` rating scale used for clipping.
    rotation
        The orthogonal rotation applied to ``P`` and ``Q`` (e.g. varimax), or ``None``.
    """

    config: ModelConfig
    mu: float
    bu: np.ndarray
    bi: np.ndarray
    P: np.ndarray
    Q: np.ndarray
    interactions: Interactions
    scale: tuple[float, float]
    fingerprint: str = ""
    rotation: np.ndarray | None = None
    name: str = "SVD"
    predicts_ratings: bool = True

    def predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Unclipped predictions; ``-1`` users/items fall back as in Surprise."""
        users, items = np.asarray(users), np.asarray(items)
        known_u, known_i = users >= 0, items >= 0
        u, i = np.where(known_u, users, 0), np.where(known_i, items, 0)
        est = np.full(users.shape, self.mu)
        est += np.where(known_u, self.bu[u], 0.0)
        est += np.where(known_i, self.bi[i], 0.0)
        dot = np.einsum("nk,nk->n", self.P[u], self.Q[i])
        return est + np.where(known_u & known_i, dot, 0.0)

    def score_block(self, users: np.ndarray) -> np.ndarray:
        """All-item scores ``mu + b_u + b_i + P_u Q^T`` for the given users."""
        users = np.asarray(users)
        return self.mu + self.bu[users, None] + self.bi[None, :] + self.P[users] @ self.Q.T

    def fold_in(self, item_ids: list[str] | np.ndarray, ratings: np.ndarray) -> UserVector:
        """Solve the user side for a new or edited rating list, without retraining.

        The same ridge solve as the refit (``engine.model.ridge.fit_user``), so a
        training user's own ratings give back their refit ``(b_u, p_u)``.
        Ratings of items unknown to the model cannot inform the solve; they are
        returned in ``UserVector.unknown_items`` rather than silently dropped.
        """
        idx = self.interactions.item_index(item_ids)
        ratings = np.asarray(ratings, dtype=np.float64)
        known = idx >= 0
        theta = fit_user(
            self.mu, self.bi, self.Q, idx[known], ratings[known], self.config.refit_lambda
        )
        unknown = [str(i) for i in np.asarray(item_ids, dtype=object)[~known]]
        return UserVector(float(theta[0]), theta[1:], idx[known], ratings[known], unknown)

    def score_vector(self, vector: UserVector) -> np.ndarray:
        """All-item unclipped scores for a folded-in user."""
        return self.mu + vector.bu + self.bi + self.Q @ vector.pu

    def score_items(self, vector: UserVector, items: np.ndarray) -> np.ndarray:
        """``score_vector(vector)[items]`` without scoring the whole catalogue."""
        items = np.asarray(items, dtype=np.int64)
        return self.mu + vector.bu + self.bi[items] + self.Q[items] @ vector.pu

    def user_vector(self, user: int) -> UserVector:
        """Return the trained user side of user index ``user``, with its training ratings."""
        items, ratings = self.interactions.history(user)
        return UserVector(float(self.bu[user]), self.P[user], items, ratings, [])


@dataclass(frozen=True)
class UserVector:
    """A user's side of the model from ``TrainedModel.fold_in``.

    ``items``/``ratings`` are the (known) rated items used; ``unknown_items`` lists
    the raw ids that the model does not know and that were therefore not used.
    """

    bu: float
    pu: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    unknown_items: list[str]

    @property
    def has_history(self) -> bool:
        """Whether at least one rating informed the solve."""
        return len(self.items) > 0


def clip_to_scale(scores: np.ndarray, scale: tuple[float, float]) -> np.ndarray:
    """Clip scores into the rating scale, as Surprise's ``predict(clip=True)``."""
    return np.clip(scores, scale[0], scale[1])


def train_svd(
    ratings: pd.DataFrame,
    scale: tuple[float, float],
    config: ModelConfig | None = None,
    *,
    item_ids: np.ndarray | None = None,
    fingerprint: str = "",
    interactions: Interactions | None = None,
) -> TrainedModel:
    """Train Surprise ``SVD`` on canonical ratings and extract its arrays.

    ``item_ids`` fixes the item axis (items without training ratings get ``b_i = 0``,
    ``q_i = 0``, exactly what Surprise predicts for an unknown item); by default it is
    the items in ``ratings``. ``interactions``: ``Interactions.from_frame(ratings,
    item_ids)`` if already built (``engine.evaluate`` indexes each split once for every model).

    Raises
    ------
    ConfigError
        The factors diverged (NaN/inf): the message names the setting to change.
    """
    config = config or ModelConfig()
    trainset = surprise_trainset(ratings, scale)
    algo = SVD(**config.surprise_params())
    with np.errstate(over="ignore", invalid="ignore"):
        algo.fit(trainset)
    check_finite(
        "SVD",
        f"lower lr_all (now {config.lr_all}) or raise reg_all (now {config.reg_all})",
        algo.bu, algo.bi, algo.pu, algo.qi,
    )  # fmt: skip
    if interactions is None:
        interactions = Interactions.from_frame(ratings, item_ids)
    present = interactions.counts_per_item() > 0
    users, known_items = surprise_order(
        trainset, interactions.user_ids, interactions.item_ids[present]
    )
    bi = np.zeros(interactions.n_items)
    Q = np.zeros((interactions.n_items, config.n_factors))
    bi[present], Q[present] = algo.bi[known_items], algo.qi[known_items]
    mu = float(trainset.global_mean)
    if config.refit_users:
        bu, P = refit_all_users(mu, bi, Q, interactions, config.refit_lambda)
    else:
        bu, P = algo.bu[users].copy(), algo.pu[users].copy()
    log.info("trained SVD on %d ratings (%s)", len(ratings), config)
    return TrainedModel(config, mu, bu, bi, P, Q, interactions, scale, fingerprint)


def train(data: RatingData, config: ModelConfig | None = None) -> TrainedModel:
    """Train the SVD engine on a whole dataset."""
    return train_svd(
        data.ratings, (data.scale.low, data.scale.high), config, fingerprint=data.fingerprint
    )
