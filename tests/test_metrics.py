"""Each metric equals its docstring formula on hand-computed toy cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.metrics import mae, ranking_scores, rmse


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
