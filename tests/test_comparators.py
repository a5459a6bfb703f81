"""Comparators equal Surprise's own predictions; popularity ranks deterministically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from surprise import BaselineOnly, KNNBaseline

from engine import ConfigError
from engine.model import comparators
from engine.model.base import surprise_trainset
from engine.model.comparators import train_baseline, train_knn_baseline, train_popularity
from tests.conftest import synth_ratings

SCALE = (1.0, 5.0)


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return synth_ratings(150, 120, 6000, 5)


def surprise_grid(algo, model, n_users=30):
    users, items = model.interactions.user_ids[:n_users], model.interactions.item_ids
    return np.array([[algo.predict(u, i, clip=False).est for i in items] for u in users])


def test_knn_baseline_scores_equal_surprise_estimate(ratings):
    model = train_knn_baseline(ratings, SCALE)
    algo = KNNBaseline(
        sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False
    ).fit(surprise_trainset(ratings, SCALE))
    expected = surprise_grid(algo, model)
    np.testing.assert_allclose(model.score_block(np.arange(30)), expected, atol=1e-9)
    users = np.repeat(np.arange(30), model.interactions.n_items)
    items = np.tile(np.arange(model.interactions.n_items), 30)
    np.testing.assert_allclose(model.predict_pairs(users, items), expected.ravel(), atol=1e-9)


def test_knn_top_k_ties_follow_history_order():
    values = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]])
    # k = 3: 0.9 then the first two 0.5s in column order (0, 2, not 3), as heapq.nlargest would.
    assert sorted(comparators._top_k_stable(values, 3)[0].tolist()) == [0, 1, 2]


def test_baseline_only_equals_surprise(ratings):
    model = train_baseline(ratings, SCALE)
    algo = BaselineOnly(verbose=False).fit(surprise_trainset(ratings, SCALE))
    np.testing.assert_allclose(
        model.score_block(np.arange(30)), surprise_grid(algo, model), atol=1e-12
    )


def test_popularity_ranks_by_count_then_item_id():
    frame = pd.DataFrame(
        {"user_id": ["a", "a", "b", "b", "c"], "item_id": ["z", "y", "z", "y", "x"],
         "rating": [1.0, 2.0, 3.0, 4.0, 5.0]}
    )  # fmt: skip
    model = train_popularity(frame, SCALE)
    order = np.argsort(-model.score_block(np.array([0]))[0], kind="stable")
    assert model.interactions.item_ids[order].tolist() == ["y", "z", "x"]  # y, z tie at 2
    assert not model.predicts_ratings


def test_knn_refuses_a_catalogue_too_large(monkeypatch, ratings):
    monkeypatch.setattr(comparators, "KNN_MAX_ITEMS", 50)
    with pytest.raises(ConfigError, match=r"KNNBaseline needs a 1\d\d x 1\d\d item similarity"):
        train_knn_baseline(ratings, SCALE)
