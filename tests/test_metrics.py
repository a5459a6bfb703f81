"""Each metric equals its docstring formula on hand-computed toy cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.audit import stats
from engine.audit.stats import bootstrap_values, permutation_p, ratio_of_sums
from engine.data.types import RatingScale
from engine.metrics import mae, ranking_scores, resolve_threshold, rmse


def test_rmse_and_mae():
    pred, true = np.array([3.0, 4.0, 5.0]), np.array([4.0, 4.0, 3.0])
    assert rmse(pred, true) == pytest.approx(math.sqrt((1 + 0 + 4) / 3))
    assert mae(pred, true) == pytest.approx((1 + 0 + 2) / 3)
    assert math.isnan(rmse(np.array([]), np.array([])))


def test_ranking_scores_hand_computed():
    # k = 3. User 1: hits at ranks 1 and 3, 4 relevant. User 2: hit at rank 2, 1 relevant.
    hits = np.array([[True, False, True], [False, True, False]])
    scores = ranking_scores(hits, np.array([4, 1]), 3)
    d = [1 / math.log2(r + 1) for r in (1, 2, 3)]
    u1, u2 = scores.iloc[0], scores.iloc[1]
    assert u1["precision"] == pytest.approx(2 / 3)
    assert u1["recall"] == pytest.approx(2 / 4)
    assert u1["ndcg"] == pytest.approx((d[0] + d[2]) / (d[0] + d[1] + d[2]))
    assert u1["map"] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert u1["hit_rate"] == 1
    assert u2["precision"] == pytest.approx(1 / 3)
    assert u2["recall"] == pytest.approx(1.0)
    assert u2["ndcg"] == pytest.approx(d[1] / d[0])
    assert u2["map"] == pytest.approx((1 / 2) / 1)


def test_ranking_scores_no_hit_and_perfect_list():
    scores = ranking_scores(np.array([[False] * 3, [True] * 3]), np.array([2, 3]), 3)
    assert scores.iloc[0].tolist() == [0, 0, 0, 0, 0]
    assert scores.iloc[1].tolist() == pytest.approx([1, 1, 1, 1, 1])


@pytest.mark.parametrize(
    ("low", "high", "step", "expected", "span"),
    [
        (1, 5, 1, 4, "1-5 scale"),
        (1, 10, 1, 8, "1-10 scale (rounded up to a rating step)"),  # 7.75
        (0, 100, 1, 75, "0-100 scale"),
        (-1, 1, 2, 1, "-1 to 1 scale (rounded up to a rating step)"),  # 0.5
    ],
)
def test_resolve_threshold_defaults_to_the_top_quarter_of_the_scale(
    low, high, step, expected, span
):
    scale = RatingScale(low, high, step, "detected")
    threshold, source, rule, notes = resolve_threshold(None, scale)
    assert (threshold, source, notes) == (expected, "scale", [])
    assert rule == f"relevant = rating >= {expected}, three quarters of the way up the {span}"
    given = resolve_threshold(expected, scale)
    assert given[:2] == (expected, "given") and given[3] == []


def test_resolve_threshold_notes_a_threshold_outside_the_scale():
    scale = RatingScale(1, 5, 1, "detected")
    above = resolve_threshold(6, scale)[3]
    assert above == [
        "The relevance threshold 6 is above the top of the 1-5 rating scale, so no rating can "
        "be relevant and the ranking metrics are n/a: use a threshold of at most 5 (by default "
        "4, three quarters of the way up the scale)."
    ]
    assert "every held-out rating is relevant" in resolve_threshold(1, scale)[3][0]


def test_ranking_scores_of_no_user_is_an_empty_table_with_its_columns():
    scores = ranking_scores(np.zeros((0, 3), bool), np.zeros(0), 3)
    assert scores.empty
    assert list(scores.columns) == ["precision", "recall", "ndcg", "map", "hit_rate"]


def _permutation_p_by_tiles(a_group, b_group, a_ref, b_ref, transform, permutations, rng):
    """Reference: ``permutation_p`` as first written, a new tiled label matrix per chunk."""
    observed = ratio_of_sums(a_group, b_group, transform) - ratio_of_sums(a_ref, b_ref, transform)
    a, b = np.concatenate([a_group, a_ref]), np.concatenate([b_group, b_ref])
    extreme, done = 0, 0
    while done < permutations:
        reps = min(500, permutations - done)
        order = rng.permuted(np.tile(np.arange(len(a)), (reps, 1)), axis=1)
        in_group = order[:, : len(a_group)]
        a_g, b_g = a[in_group].sum(axis=1), b[in_group].sum(axis=1)
        diff = transform(a_g / b_g) - transform((a.sum() - a_g) / (b.sum() - b_g))
        extreme += int((np.abs(diff) >= abs(observed) - 1e-12).sum())
        done += reps
    return (1 + extreme) / (1 + permutations)


def test_bootstrap_values_summed_by_blocks_are_exactly_the_one_gather(monkeypatch):
    # blocks of 7 replicates (and a last one of 3): the same draws and row sums, to the bit
    monkeypatch.setattr(stats, "_GATHER_VALUES", 7 * 130)
    data = np.random.default_rng(4)
    a, b = data.gamma(2.0, size=130), data.integers(1, 9, 130).astype(float)
    ours = bootstrap_values(a, b, np.sqrt, 52, np.random.default_rng(8))
    idx = np.random.default_rng(8).integers(0, 130, size=(52, 130))
    theirs = np.sqrt(a[idx].sum(axis=1) / b[idx].sum(axis=1))
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("weights", ["ones", "counts"])
@pytest.mark.parametrize("shift", [0.0, 0.3, 5.0])
def test_permutation_p_is_exactly_the_tiled_shuffle(weights, shift):
    # the same draws and the same sums, so the same p-value to the last bit, and the
    # generator ends in the same state (the audit's later draws do not move)
    data = np.random.default_rng(3)
    a = data.gamma(2.0, size=170)
    b = np.ones(170) if weights == "ones" else data.integers(1, 9, 170).astype(float)
    a[:60] += shift * b[:60]
    args = (a[:60], b[:60], a[60:], b[60:], np.sqrt, 1_234)
    ours, theirs = np.random.default_rng(11), np.random.default_rng(11)
    assert permutation_p(*args, ours) == _permutation_p_by_tiles(*args, theirs)
    assert ours.integers(0, 2**62) == theirs.integers(0, 2**62)
