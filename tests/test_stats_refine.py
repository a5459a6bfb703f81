"""Refinement of permutation p-values whose Holm decision depends on the resolution.

``engine.audit.stats.refine_permutation_p``: a known answer (two perfectly separated groups
of 5, whose exact two-sided permutation p is 2 / C(10, 5) = 2 / 252), and no redraw when
no p could change the decision.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from engine.audit.stats import (
    holm,
    identity,
    is_floor,
    permutation_p,
    refine_permutation_p,
    refined_permutations,
)

# Two groups of 5 users with perfectly separated values (b = 1: a mean of per-user values).
GROUP = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
REFERENCE = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
# Of the C(10, 5) = 252 equally likely label assignments, |d*| >= |d| = 10 only for the
# observed one and its swap (d* = -10): the exact two-sided p is 2 / 252.
EXACT = 2 / math.comb(10, 5)


def _test(draws: int, rng: np.random.Generator) -> float:
    ones = np.ones(5)
    return permutation_p(GROUP, ones, REFERENCE, ones, identity, draws, rng)


def test_the_exact_p_of_the_toy_is_two_in_252():
    values = np.concatenate([GROUP, REFERENCE])
    observed = GROUP.mean() - REFERENCE.mean()
    extreme = sum(
        abs(values[list(g)].mean() - np.delete(values, list(g)).mean()) >= abs(observed)
        for g in itertools.combinations(range(10), 5)
    )
    assert extreme == 2 and math.isclose(EXACT, 1 / 126)


def test_refinement_replaces_a_floor_p_by_the_exact_p_and_changes_the_decision():
    rng = np.random.default_rng(7)
    first = _test(10, rng)
    assert is_floor(first, 10) and first == pytest.approx(1 / 11)  # above alpha: a bound
    family = np.array([first, 0.3, 0.6, 0.9, np.nan])  # m = 4 finite p-values
    calls = []

    def redraw(i: int, draws: int) -> float:
        calls.append((i, draws))
        return _test(draws, rng)

    p, draws = refine_permutation_p(family, 10, 0.05, redraw)
    refined = refined_permutations(10, 4, 0.05)
    assert refined == 1600  # ceil(20 * 4 / 0.05)
    assert calls == [(0, 1600)]  # only the floor p is redrawn
    assert draws.tolist() == [1600, 10, 10, 10, 0]
    assert p[1:4].tolist() == [0.3, 0.6, 0.9] and math.isnan(p[4])
    se = math.sqrt(EXACT * (1 - EXACT) / refined)
    assert abs(p[0] - EXACT) < 4 * se  # 0.0079 +- 0.0089 (4 sd of the Monte Carlo p)
    assert p[0] >= 1 / (refined + 1) and not is_floor(p[0], refined)
    # The floor decided the first pass (4 / 11 > alpha); the refined p is rejected.
    assert holm(family)[0] > 0.05
    assert holm(p)[0] == pytest.approx(4 * p[0]) and 4 * p[0] < 0.05


def test_the_refined_floor_times_m_is_at_most_alpha_over_20():
    for permutations, m, alpha in ((1000, 46, 0.05), (1000, 92, 0.05), (500, 7, 0.01)):
        refined = refined_permutations(permutations, m, alpha)
        assert refined >= permutations and m / (refined + 1) <= alpha / 20
    assert refined_permutations(1000, 46, 0.05) == 18400
    assert refined_permutations(1000, 2, 0.05) == 1000  # 800 draws suffice: no refinement


def _never(i: int, draws: int) -> float:
    raise AssertionError(f"redrew test {i} with {draws} permutations")


def test_no_redraw_when_no_p_could_change_the_decision():
    # Every p above alpha and above the floor: Holm rejects none, whatever the resolution.
    family = np.array([0.06, 0.2, 0.5, np.nan, 1.0])
    p, draws = refine_permutation_p(family, 1000, 0.05, _never)
    assert np.array_equal(p, family, equal_nan=True) and draws.tolist() == [1000] * 3 + [0, 1000]
    # B already fine enough (m / (B + 1) <= alpha / 20): a floor p is kept as a bound.
    floor = np.array([1 / 1001, 0.01])
    p, draws = refine_permutation_p(floor, 1000, 0.05, _never)
    assert p.tolist() == floor.tolist() and draws.tolist() == [1000, 1000]
    # No permutations: no test, nothing to refine.
    p, draws = refine_permutation_p(np.array([np.nan, np.nan]), 0, 0.05, _never)
    assert np.isnan(p).all() and draws.tolist() == [0, 0]


def test_only_refinable_tests_are_redrawn_but_all_count_in_m():
    # A normal-approximation p (not refinable) below alpha is kept and counts in m = 3.
    calls = []

    def redraw(i: int, draws: int) -> float:
        calls.append((i, draws))
        return 0.004

    family = np.array([0.001, 0.002, 0.7])
    p, draws = refine_permutation_p(family, 100, 0.05, redraw, np.array([False, True, True]))
    assert calls == [(1, 1200)]  # ceil(20 * 3 / 0.05)
    assert p.tolist() == [0.001, 0.004, 0.7] and draws.tolist() == [0, 1200, 100]
