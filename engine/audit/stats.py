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
  the estimate can lie just outside; it is reported as is, never stretched to cover it.
  A bootstrap distribution without variance (``no_variation``: every user of the group
  has the same value) cannot feed a normal approximation: item-group rows then get no
  interval and no test (status ``"no variation"``, never p = 0);
* p-value of the difference to the reference group: permutation of the group labels among
  the users of both groups, ``p = (1 + #{|d*| >= |d|}) / (1 + permutations)`` (two-sided,
  Phipson and Smyth 2010). It is never below ``1 / (1 + permutations)``: when no permuted
  difference reaches the observed one the p-value *is* that floor and only says the
  true p is at most it (``is_floor``; shown ``"< 0.0005"`` for 2,000 permutations by
  ``format_p_value``);
* refinement of a family's permutation p-values whose Holm decision depends on the number
  of permutations (``refine_permutation_p``, used by the monitor; the audit does not call
  it): the tests with p <= alpha or at the floor are redrawn with
  ``B' = max(B, ceil(20 m / alpha))`` permutations, so that ``m / (B' + 1) <= alpha / 20``;
* item-group shares are tested with a normal approximation, the two-sided normal tail of
  the bootstrap distribution around the catalogue share (``normal_tail``); such p-values
  are kept as computed but never displayed below ``P_DISPLAY_FLOOR`` (1e-6), where the
  normal tail is not to be trusted;
* Holm's step-down correction (``holm``) within one family of tests, chosen by the caller
  (the audit corrects over the groups of one metric by one grouping,
  ``engine.audit.rows.adjust``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]
_CHUNK = 500
#: Values gathered at once by ``bootstrap_values`` (8M float64: 64 MB).
_GATHER_VALUES = 8_000_000


def identity(x: np.ndarray) -> np.ndarray:
    """Return ``x`` (the transform of mean-type metrics)."""
    return x


def ratio_of_sums(a: np.ndarray, b: np.ndarray, transform: Transform = identity) -> float:
    """``transform(sum a / sum b)``; NaN when ``sum b`` is 0."""
    total = b.sum()
    return float(transform(np.array(a.sum() / total))) if total > 0 else float("nan")


def bootstrap_values(
    a: np.ndarray,
    b: np.ndarray,
    transform: Transform,
    reps: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``reps`` bootstrap replicates of ``ratio_of_sums`` resampling users with replacement.

    Empty without users or with ``reps`` = 0 (no bootstrap).
    """
    n = len(a)
    if n == 0 or reps == 0:
        return np.empty(0)
    idx = rng.integers(0, n, size=(reps, n))
    # summed a block of replicates at a time: gathering a and b for every replicate at
    # once would hold two more (reps, n) arrays (0.5 GB with 162k users)
    num, den = np.empty(reps), np.empty(reps)
    step = max(1, _GATHER_VALUES // n)
    for start in range(0, reps, step):
        block = idx[start : start + step]
        num[start : start + step] = a[block].sum(axis=1)
        den[start : start + step] = b[block].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(transform(num / den), float)


def percentile_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``values``; ``(nan, nan)`` when there are none."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def no_variation(values: np.ndarray) -> bool:
    """Whether bootstrap ``values`` (two or more replicates) are all equal, up to rounding.

    Such a distribution has no spread to build an interval or a test from: every
    resample of the group gives the same value (e.g. every user of the group has 0).
    False with fewer than two replicates, which cannot show a spread either way.
    """
    finite = values[np.isfinite(values)]
    if len(values) < 2:
        return False
    if len(finite) < 2:
        return len(finite) == 0
    return float(np.ptp(finite)) <= 1e-12 * max(1.0, float(np.abs(finite).max()))


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
    return percentile_ci(bootstrap_values(a, b, transform, reps, rng), level)


def permutation_p(
    a_group: np.ndarray,
    b_group: np.ndarray,
    a_ref: np.ndarray,
    b_ref: np.ndarray,
    transform: Transform,
    permutations: int,
    rng: np.random.Generator,
) -> float:
    """Two-sided permutation p-value of ``m(group) - m(reference)`` (labels shuffled).

    ``p = (1 + #{|d*| >= |d|}) / (1 + permutations)``, in ``[1 / (1 + permutations), 1]``;
    NaN when the observed difference is not finite or ``permutations`` is 0. At the floor
    (no permuted difference reached ``|d|``) the value is an upper bound (``is_floor``).
    """
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
    # int32 labels halve the (chunk, users) block; the shuffle is the same for any dtype
    labels = np.arange(len(a), dtype=np.int32 if len(a) < 2**31 else np.int64)
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
        done += reps
    return (1 + extreme) / (1 + permutations)


def is_floor(p: float, permutations: int) -> bool:
    """Whether a permutation ``p`` is its floor ``1 / (1 + permutations)`` (an upper bound)."""
    return bool(permutations > 0 and math.isfinite(p) and p * (1 + permutations) < 1 + 1e-9)


REFINE_FACTOR = 20
"""``refine_permutation_p`` redraws with ``B'`` permutations such that the floor times the
family size, ``m / (B' + 1)``, is at most ``alpha / REFINE_FACTOR``."""


def refined_permutations(permutations: int, m: int, alpha: float) -> int:
    """``B' = max(B, ceil(REFINE_FACTOR * m / alpha))``: the redraw size of a family of ``m``."""
    return max(permutations, math.ceil(REFINE_FACTOR * m / alpha - 1e-9))


def refine_permutation_p(
    p_values: np.ndarray,
    permutations: int,
    alpha: float,
    redraw: Callable[[int, int], float],
    refinable: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine the permutation p-values of one Holm family where the decision depends on ``B``.

    A permutation p from ``B`` draws is never below its floor ``1 / (B + 1)`` and Holm
    multiplies the smallest of ``m`` p-values by ``m``: with ``m / (B + 1)`` near ``alpha``
    (m = 46, B = 1,000: 0.046) whether a test at the floor is rejected is decided by ``B``,
    not by the data. Rule (fixed before looking at any result): after the first pass with
    ``B`` draws, each test of the family (``m`` = its finite p-values, ``refinable`` ones
    those of a permutation test) whose first-pass p is at most ``alpha`` or at its floor
    (``is_floor``) is redrawn afresh, ``redraw(i, B')`` (the caller's permutation test of
    test ``i`` with ``B'`` draws from its seeded stream), with
    ``B' = refined_permutations(B, m, alpha) = max(B, ceil(20 m / alpha))``, so that
    ``m / (B' + 1) <= alpha / 20``: a p at the refined floor is 20 times below Holm's
    strictest threshold. The redrawn p replaces the first-pass one. A first-pass p above
    ``alpha`` and its floor is kept: its Holm-adjusted p is at least itself, so no
    refinement of the others can make it significant (only its own Monte Carlo error,
    sd ``sqrt(p (1 - p) / B)``, could, which the rule does not chase). Nothing is redrawn
    when ``B' = B`` or no test qualifies.

    The result is still a valid p-value (``P(p <= t) <= t`` under the null): the redraw is
    independent of the first pass given the data, so for ``t <= alpha`` ``P(p <= t) <=
    P(p' <= t) <= t``, and for larger ``t`` ``p <= t`` needs the first pass ``<= t`` (or at
    a floor above ``t`` and ``p' <= t``). Both passes use ``(1 + #) / (1 + draws)``, never 0
    (Phipson and Smyth 2010, "Permutation p-values should never be zero"); spending extra
    draws only where the decision is uncertain is the idea of sequential Monte Carlo
    p-values under multiple testing (Gandy 2009; Sandve et al. 2011), here in two fixed
    stages. A refined p at its floor ``1 / (B' + 1)`` is still only a bound: ``is_floor(p,
    draws)`` with the returned count.

    Returns ``(p, draws)``: a copy of ``p_values`` with the refined values, and the number
    of permutations behind each (``B`` or ``B'``; 0 where the p is NaN or not refinable).
    """
    p = np.array(p_values, float)
    ok = np.isfinite(p) & (np.ones(len(p), bool) if refinable is None else np.asarray(refinable))
    draws = np.where(ok, permutations, 0)
    if permutations <= 0:
        return p, draws
    refined = refined_permutations(permutations, int(np.isfinite(p).sum()), alpha)
    if refined == permutations:
        return p, draws
    floor = np.array([is_floor(x, permutations) for x in p], bool)
    for i in np.flatnonzero(ok & ((p <= alpha) | floor)):
        p[i], draws[i] = redraw(int(i), refined), refined
    return p, draws


def normal_tail(difference: float, sd: float) -> float:
    """Two-sided normal p-value ``erfc(|d| / (sd sqrt 2))``; NaN when ``sd`` is 0.

    A zero spread gives no test (the audit's status ``"no variation"``), never p = 0.
    """
    if not sd > 0:
        return float("nan")
    return math.erfc(abs(difference) / (sd * math.sqrt(2)))


P_DISPLAY_FLOOR = 1e-6
"""Smallest p-value displayed as a number: below it a normal-approximation p is written
``"< 1e-6"`` (its tail is not accurate that far out)."""


def format_p_value(p: float, is_bound: bool = False) -> str:
    """Display text of a p-value.

    Rule: NaN (no test) -> ``""``; ``is_bound`` (a permutation p at its floor
    ``1 / (1 + permutations)``, which only says the true p is at most that) -> ``"< "`` and
    the bound rounded *up* to 2 significant figures (``"< 0.0005"`` for 1/2001); a value
    below ``P_DISPLAY_FLOOR`` -> ``"< 1e-6"``; otherwise 2 significant figures, in plain
    decimal from 1e-4 up (``"0.31"``, ``"0.012"``, ``"0.00031"``) and in scientific
    notation below (``"3.0e-05"``).

    Examples
    --------
    >>> format_p_value(1 / 2001, True), format_p_value(3e-4), format_p_value(1e-9)
    ('< 0.0005', '0.0003', '< 1e-6')
    """
    if p is None or not math.isfinite(p):
        return ""
    if is_bound:
        return "< " + _two_significant(p, up=True)
    if p < P_DISPLAY_FLOOR:
        return "< 1e-6"
    return _two_significant(p)


def _two_significant(p: float, up: bool = False) -> str:
    """``p`` (> 0) with 2 significant figures, rounded up with ``up``; see ``format_p_value``."""
    if p <= 0:
        return "0"
    scale = 10.0 ** (math.floor(math.log10(p)) - 1)
    value = math.ceil(p / scale - 1e-9) * scale if up else round(p / scale) * scale
    if value >= 1e-4:
        return f"{value:.10f}".rstrip("0").rstrip(".")
    return f"{value:.1e}"


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
