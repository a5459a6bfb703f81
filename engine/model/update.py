r"""A trained SVD brought up to date with new ratings, without retraining.

Given the merged training ratings (old ratings with a batch merged in) and the users and
items the batch touched, ``update_arrays`` returns a ``TrainedModel`` on the merged ratings:

1. **Axes.** Users and items are re-indexed to the merged ratings (sorted raw ids, as
   ``Interactions.from_frame``); every array of a known id is copied unchanged. The
   global mean :math:`\mu` is kept as trained (it is not re-estimated). A new item
   starts with :math:`b_i = 0, q_i = 0`, Surprise's convention for an unknown item.
2. **Touched users** (any rating in the batch; new users included) are refit exactly by
   the ridge user side of ``engine.model.ridge`` on their whole merged history, with the
   item side fixed: :math:`x_j = [1, q_j]`, :math:`y_j = r_{uj} - \mu - b_j`,
   :math:`\theta_u = (X^\top X + \lambda n_u I)^{-1} X^\top y`. A new user's result is
   therefore ``fold_in`` of their ratings. A rating of an item with no item side
   (:math:`q_j = 0, b_j = 0`) has :math:`x_j = [1, 0]`: it informs the user's bias only.
3. **Touched items** (only with ``refresh_items``; new items included) get the mirror-image
   ridge step with the users of step 2 fixed: over the :math:`n_i` users who rated item
   :math:`i`, :math:`z_u = [1, p_u]`, :math:`y_u = r_{ui} - \mu - b_u`,
   :math:`[b_i, q_i] = (Z^\top Z + \lambda n_i I)^{-1} Z^\top y` (``ridge.fit_item``, the
   same :math:`\lambda` = ``config.refit_lambda``, per rating).
4. **Users of refreshed items.** A new :math:`q_i` changes the design of every user who
   rated item :math:`i`, so each of them is refit once more by step 2's formula on the new
   item side. Afterwards every user's :math:`[b_u, p_u]` is exactly the ridge solution of
   their history on the model's item side, which keeps every explanation exact; users
   with no rating of a refreshed item keep their arrays bit for bit.

Without ``refresh_items`` steps 3 and 4 are skipped: the item side is the trained one, and
new items keep :math:`b_i = q_i = 0` (they are predicted :math:`\mu + b_u`, no item effect).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engine.errors import ConfigError
from engine.model.interactions import Interactions
from engine.model.ridge import fit_item, fit_user, one_blas_thread
from engine.model.svd import TrainedModel


@dataclass(frozen=True)
class ArrayUpdate:
    """What ``update_arrays`` did, in index terms of the updated model.

    Attributes
    ----------
    users_refit
        Indices of the touched users (step 2).
    items_refreshed
        Indices of the items given a new ``[b_i, q_i]`` (step 3; empty without refresh).
    users_refit_for_items
        Indices of users refit in step 4 that the batch did not touch.
    seconds
        Wall-clock seconds per step: ``users``, ``items``, ``users_for_items``.
    """

    users_refit: np.ndarray
    items_refreshed: np.ndarray
    users_refit_for_items: np.ndarray
    seconds: dict[str, float]


def solve_each(
    fit: Callable[..., np.ndarray],
    mu: float,
    keys: np.ndarray,
    others: np.ndarray,
    ratings: np.ndarray,
    wanted: np.ndarray,
    fixed: tuple[np.ndarray, np.ndarray],
    out: tuple[np.ndarray, np.ndarray],
    lam: float,
) -> None:
    """Solve ``fit`` (``ridge.fit_user`` or ``fit_item``) for each of ``wanted``, in place.

    ``keys`` (ascending) say whose each rating is and ``others`` its item (or user), in the
    order the solve takes them; ``fixed``: the other side's biases and factors; ``out``:
    this side's biases and factors, written row by row. Small solves, one BLAS thread: more
    threads only contend for the cores.
    """
    lo, hi = np.searchsorted(keys, wanted), np.searchsorted(keys, wanted, side="right")
    with one_blas_thread():
        for key, a, b in zip(wanted, lo, hi, strict=True):
            theta = fit(mu, *fixed, others[a:b], ratings[a:b], lam)
            out[0][key], out[1][key] = theta[0], theta[1:]


def _refit_users(
    model: TrainedModel, inter: Interactions, users: np.ndarray, bu: np.ndarray, P: np.ndarray
) -> None:
    """Write ``fit_user`` of each of ``users`` (on ``model``'s item side) into ``bu``, ``P``."""
    solve_each(fit_user, model.mu, inter.rows(), inter.items, inter.ratings, users,
               (model.bi, model.Q), (bu, P), model.config.refit_lambda)  # fmt: skip


def update_arrays(
    model: TrainedModel,
    ratings: pd.DataFrame,
    touched_users: np.ndarray,
    touched_items: np.ndarray,
    *,
    refresh_items: bool = False,
    fingerprint: str = "",
) -> tuple[TrainedModel, ArrayUpdate]:
    """Return the model updated to ``ratings`` (see the module docstring) and what changed.

    Parameters
    ----------
    model
        A trained SVD with the exact user refit (``config.refit_users``).
    ratings
        The merged canonical ratings (``user_id, item_id, rating``): every old pair plus
        the batch.
    touched_users, touched_items
        Raw ids with a rating in the batch.
    refresh_items
        Also refresh the touched items (steps 3 and 4).
    fingerprint
        The merged dataset's fingerprint, recorded in the model.

    Raises
    ------
    ConfigError
        The model keeps Surprise's SGD user vectors: an exact update needs the refit.
    """
    if not model.config.refit_users:
        raise ConfigError(
            "This model keeps Surprise's SGD user vectors (no exact refit): an update refits "
            "users exactly, so run the analysis with the refit (leave out --no-refit) first."
        )
    inter = Interactions.from_frame(ratings)
    old_u = model.interactions.user_index(inter.user_ids)
    old_i = model.interactions.item_index(inter.item_ids)
    ku, ki = old_u >= 0, old_i >= 0
    k = model.Q.shape[1]
    bu, P = np.zeros(inter.n_users), np.zeros((inter.n_users, k))
    bi, Q = np.zeros(inter.n_items), np.zeros((inter.n_items, k))
    bu[ku], P[ku] = model.bu[old_u[ku]], model.P[old_u[ku]]
    bi[ki], Q[ki] = model.bi[old_i[ki]], model.Q[old_i[ki]]
    updated = replace(model, bu=bu, bi=bi, P=P, Q=Q, interactions=inter, fingerprint=fingerprint)
    users = np.sort(inter.user_index(touched_users))
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    _refit_users(updated, inter, users, bu, P)
    seconds["users"] = time.perf_counter() - start
    refreshed = np.zeros(0, dtype=np.int64)
    extra = np.zeros(0, dtype=np.int64)
    if refresh_items:
        start = time.perf_counter()
        refreshed = np.sort(inter.item_index(touched_items))
        rows = inter.rows()
        order = np.argsort(inter.items, kind="stable")  # by item, raters in user order
        solve_each(fit_item, model.mu, inter.items[order], rows[order], inter.ratings[order],
                   refreshed, (bu, P), (bi, Q), model.config.refit_lambda)  # fmt: skip
        seconds["items"] = time.perf_counter() - start
        start = time.perf_counter()
        affected = np.unique(rows[np.isin(inter.items, refreshed)])
        _refit_users(updated, inter, affected, bu, P)
        extra = np.setdiff1d(affected, users)
        seconds["users_for_items"] = time.perf_counter() - start
    return updated, ArrayUpdate(users, refreshed, extra, seconds)
