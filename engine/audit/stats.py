r"""Group statistics shared by every audit metric.

A group metric is a ratio of sums over the group's users,
:math:`m(G) = f\big(\sum_{u \in G} a_u / \sum_{u \in G} b_u\big)`: RMSE has
:math:`a_u` = the user's summed squared errors, :math:`b_u` = their number of ratings and
:math:`f = \sqrt{\cdot}`; a mean of per-user values has :math:`b_u = 1`. Users are the
unit of resampling, because one user's ratings are correlated:

* confidence interval: percentile bootstrap over the group's users (``bootstrap`` reps;
  none with 0 reps). A percentile interval need not contain the point estimate: when
  the resampled values are skewed or shifted against it (a ratio of sums, the square
  root of RMSE, a group dominated by a few heavy users) or there are few replicates,
  the estimate can lie just outside; it is reported as is, never stretched to cover it;
* p-value of the difference to the reference group: permutation of the group labels among
  the users of both groups, ``p = (1 + #{|d*| >= |d|}) / (1 + permutations)`` (two-sided).
  When no permuted difference reaches the observed one, that count only says
  ``p < 1 / (1 + permutations)``, too coarse to survive a correction over many tests;
  the p-value is then the normal tail of the permutation distribution,
  ``erfc(|d| / (sd* sqrt 2))``;
* Holm's step-down correction over all tests of the audit (``holm``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]
_CHUNK = 500


def identity(x: np.ndarray) -> np.ndarray:
    """Return ``x`` (the transform of mean-type metrics)."""
    return x


def ratio_of_sums(a: np.ndarray, b: np.ndarray, transform: Transform = identity) -> float:
    """``transform(sum a / sum b)``; NaN when ``sum b`` is 0."""
    total = b.sum()
    return float(transform(np.array(a.sum() / total))) if total > 0 else float("nan")


def bootstrap_ci(
    a: np.ndarray,
    b: np.ndarray,
    transform: Transform,
    reps: int,
    rng: np.random.Generator,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``ratio_of_sums`` resampling users with replacement.

    ``(nan, nan)`` without users or with ``reps`` = 0 (no bootstrap, no interval); see the
    module docstring for why the interval may not contain the point estimate.
    """
    n = len(a)
    if n == 0 or reps == 0:
        return float("nan"), float("nan")
    idx = rng.integers(0, n, size=(reps, n))
    num, den = a[idx].sum(axis=1), b[idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = transform(num / den)
    low, high = np.nanquantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def permutation_p(
    a_group: np.ndarray,
    b_group: np.ndarray,
    a_ref: np.ndarray,
    b_ref: np.ndarray,
    transform: Transform,
    permutations: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided permutation p-value of ``m(group) - m(reference)`` (labels shuffled)."""
    observed = ratio_of_sums(a_group, b_group, transform) - ratio_of_sums(a_ref, b_ref, transform)
    if not np.isfinite(observed) or permutations == 0:
        return float("nan")
    a = np.concatenate([a_group, a_ref])
    b = np.concatenate([b_group, b_ref])
    a_total, b_total = a.sum(), b.sum()
    # Mean-type metrics have b = 1 for every user: a group's sum of b is its size, exactly
    # (sums of small integers are exact in any order), so it needs no gather.
    unit = bool((b == 1).all())
    n_group, extreme, done = len(a_group), 0, 0
    null_sum, null_sq = 0.0, 0.0
    labels = np.arange(len(a))
    order = np.empty((min(_CHUNK, permutations), len(a)), dtype=labels.dtype)
    while done < permutations:
        reps = min(_CHUNK, permutations - done)
        block = order[:reps]
        block[:] = labels
        rng.permuted(block, axis=1, out=block)  # the same draws as permuted(np.tile(...))
        in_group = block[:, :n_group]
        a_g = a[in_group].sum(axis=1)
        b_g = np.full(reps, float(n_group)) if unit else b[in_group].sum(axis=1)
        a_r, b_r = a_total - a_g, b_total - b_g
        with np.errstate(invalid="ignore", divide="ignore"):
            diff = transform(a_g / b_g) - transform(a_r / b_r)
        extreme += int((np.abs(diff) >= abs(observed) - 1e-12).sum())
        finite = diff[np.isfinite(diff)]
        null_sum, null_sq = null_sum + finite.sum(), null_sq + (finite**2).sum()
        done += reps
    if extreme == 0:
        sd = math.sqrt(max(null_sq / permutations - (null_sum / permutations) ** 2, 0.0))
        return normal_tail(observed, sd)
    return (1 + extreme) / (1 + permutations)


def normal_tail(difference: float, sd: float) -> float:
    """Two-sided normal p-value ``erfc(|d| / (sd sqrt 2))`` (0 when ``sd`` is 0 and d != 0)."""
    if sd == 0:
        return 0.0 if difference else 1.0
    return math.erfc(abs(difference) / (sd * math.sqrt(2)))


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN entries are ignored and stay NaN).

    With the ``m`` valid p-values sorted ascending, ``p_adj(i) = max_{j<=i} min(1,
    (m - j + 1) p_(j))``; rejecting ``p_adj < alpha`` controls the family-wise error.
    """
    p = np.asarray(p_values, float)
    out = np.full(len(p), np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    if len(valid) == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(adjusted)
    return out
