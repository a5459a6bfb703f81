r"""Paired statistics of a version comparison: the same users scored by versions A and B.

Each user :math:`u` contributes a numerator under each version, :math:`a^A_u` and
:math:`a^B_u`, and one shared denominator :math:`b_u` (the same window pairs or the same
one list for both versions). A group's value under version :math:`V` is the audit's ratio
of sums, :math:`m_V(G) = f(\sum_{u \in G} a^V_u / \sum_{u \in G} b_u)` (RMSE:
:math:`a_u` = summed squared errors, :math:`b_u` = number of pairs, :math:`f = \sqrt{\cdot}`;
per-user means such as NDCG@k: :math:`b_u = 1`, :math:`f` = identity), and the paired
difference is :math:`d(G) = m_B(G) - m_A(G)`.

* Confidence interval: percentile bootstrap over the group's users, resampled *in
  pairs* (a drawn user brings both versions' values), ``reps`` replicates
  (``engine.audit.stats.percentile_ci``); none with 0 reps.
* p-value: paired permutation (sign-flip) test. Under "A and B are exchangeable for each
  user", each user's two values may swap labels; a permutation swaps each user
  independently with probability 1/2 and recomputes :math:`d`. Two-sided,
  ``p = (1 + #{|d*| >= |d|}) / (1 + permutations)`` (Phipson and Smyth 2010), never below
  ``1 / (1 + permutations)``; at that floor it is an upper bound
  (``engine.audit.stats.is_floor``). Identical versions give ``d* = 0 = d`` in every
  permutation, so p = 1.

Reference: Smucker, Allan and Carterette, "A comparison of statistical significance
tests for information retrieval evaluation", CIKM 2007 (paired randomisation test).
"""

from __future__ import annotations

import numpy as np

from engine.audit.stats import Transform, percentile_ci

_CHUNK = 500
#: Tolerance of ``|d*| >= |d|`` (floating-point sums in another order).
_TOLERANCE = 1e-12


def paired_difference(
    a_a: np.ndarray, a_b: np.ndarray, b: np.ndarray, transform: Transform
) -> tuple[float, float, float]:
    """Return ``(m_A, m_B, m_B - m_A)`` over all users given; NaNs when ``sum b`` is 0."""
    total = float(np.sum(b))
    if not total > 0:
        return float("nan"), float("nan"), float("nan")
    value_a = float(transform(np.array(np.sum(a_a) / total)))
    value_b = float(transform(np.array(np.sum(a_b) / total)))
    return value_a, value_b, value_b - value_a


def paired_bootstrap_ci(
    a_a: np.ndarray,
    a_b: np.ndarray,
    b: np.ndarray,
    transform: Transform,
    reps: int,
    rng: np.random.Generator,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile interval of ``m_B - m_A`` resampling users in pairs; NaNs without reps."""
    n = len(b)
    if n == 0 or reps == 0:
        return float("nan"), float("nan")
    idx = rng.integers(0, n, size=(reps, n))
    den = b[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = transform(a_b[idx].sum(axis=1) / den) - transform(a_a[idx].sum(axis=1) / den)
    return percentile_ci(np.asarray(diff, float), level)


def sign_flip_differences(
    a_a: np.ndarray, a_b: np.ndarray, b: np.ndarray, transform: Transform, flips: np.ndarray
) -> np.ndarray:
    """``d*`` for each row of ``flips`` (boolean ``(n_perm, n_users)``: True = swap A, B)."""
    gap = np.asarray(a_a, float) - np.asarray(a_b, float)
    moved = np.asarray(flips, float) @ gap  # what the swaps move from A's sum to B's
    total = float(np.sum(b))
    with np.errstate(invalid="ignore", divide="ignore"):
        return transform((np.sum(a_b) + moved) / total) - transform((np.sum(a_a) - moved) / total)


def paired_permutation_p(
    a_a: np.ndarray,
    a_b: np.ndarray,
    b: np.ndarray,
    transform: Transform,
    permutations: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided sign-flip p-value of ``m_B - m_A`` (see the module docstring).

    In ``[1 / (1 + permutations), 1]``; NaN when the difference is not finite or
    ``permutations`` is 0.
    """
    observed = paired_difference(a_a, a_b, b, transform)[2]
    if not np.isfinite(observed) or permutations == 0:
        return float("nan")
    extreme, done = 0, 0
    while done < permutations:
        reps = min(_CHUNK, permutations - done)
        flips = rng.random((reps, len(b))) < 0.5
        diff = sign_flip_differences(a_a, a_b, b, transform, flips)
        extreme += int((np.abs(diff) >= abs(observed) - _TOLERANCE).sum())
        done += reps
    return (1 + extreme) / (1 + permutations)
