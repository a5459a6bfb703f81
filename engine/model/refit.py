r"""Exact user refit: each user's ``[b_u, p_u]`` by ridge regression on their own ratings.

With the item side ``(mu, b_i, q_i)`` of a trained SVD fixed, user ``u`` with rated
items ``J`` gets

.. math::

    X_j = [1, q_j], \quad y_j = r_{uj} - \mu - b_j, \quad
    A_u = X^\top X + \lambda n_u I, \quad
    \theta_u = [b_u, p_u] = A_u^{-1} X^\top y,

and predicts :math:`\hat r_{ui} = \mu + b_i + [1, q_i] \cdot \theta_u`. The
prediction is therefore an exact linear function of the user's ratings,
:math:`\hat r_{ui} = \mu + b_i + \sum_j (x_i^\top A_u^{-1} x_j)\, y_j`, which the
explanation layer splits exactly. A user with no rating gets ``theta = 0``
(the prediction ``mu + b_i``). Measured on MovieLens 100K (5-fold, Surprise
defaults), ``lambda = 0.1`` lowers RMSE from 0.934 (SGD users) to 0.926.
"""

from __future__ import annotations

import numpy as np

from engine.model.interactions import Interactions


def ridge_user_side(
    mu: float,
    bi: np.ndarray,
    Q: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    lam: float,
) -> tuple[float, np.ndarray]:
    """Solve one user's ``(b_u, p_u)``; ``(0, 0)`` when ``items`` is empty."""
    k = Q.shape[1]
    if len(items) == 0:
        return 0.0, np.zeros(k)
    X = np.empty((len(items), k + 1))
    X[:, 0] = 1.0
    X[:, 1:] = Q[items]
    y = ratings - mu - bi[items]
    A = X.T @ X
    A[np.diag_indices_from(A)] += lam * len(items)
    theta = np.linalg.solve(A, X.T @ y)
    return float(theta[0]), theta[1:]


def refit_all_users(
    mu: float, bi: np.ndarray, Q: np.ndarray, interactions: Interactions, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(bu, P)`` for every user of ``interactions`` by ``ridge_user_side``."""
    bu = np.zeros(interactions.n_users)
    P = np.zeros((interactions.n_users, Q.shape[1]))
    for user in range(interactions.n_users):
        items, ratings = interactions.history(user)
        bu[user], P[user] = ridge_user_side(mu, bi, Q, items, ratings, lam)
    return bu, P
