r"""Exact user refit: each user's ``[b_u, p_u]`` by ridge regression on their own ratings.

The item side ``(mu, b_i, q_i)`` of the trained SVD is kept and every user's side is
the closed-form ridge solution ``theta_u = A_u^{-1} X^T y`` of ``engine.model.ridge``
(which states the formulas, the exact split and the subset solves). A user with no
rating gets ``theta = 0`` (the prediction ``mu + b_i``).
"""

from __future__ import annotations

import numpy as np

from engine.model.interactions import Interactions
from engine.model.ridge import fit_user


def refit_all_users(
    mu: float, bi: np.ndarray, Q: np.ndarray, interactions: Interactions, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(bu, P)``: row ``u`` is ``fit_user`` on user ``u``'s training ratings."""
    bu = np.zeros(interactions.n_users)
    P = np.zeros((interactions.n_users, Q.shape[1]))
    for user in range(interactions.n_users):
        items, ratings = interactions.history(user)
        theta = fit_user(mu, bi, Q, items, ratings, lam)
        bu[user], P[user] = theta[0], theta[1:]
    return bu, P
