"""Comparators equal Surprise's own predictions; popularity ranks deterministically."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from surprise import BaselineOnly, KNNBaseline, similarities

from engine import ConfigError, load_dataset
from engine.model import comparators
from engine.model.base import surprise_order, surprise_trainset
from engine.model.comparators import (
    FastKNNBaseline,
    train_baseline,
    train_knn_baseline,
    train_popularity,
)
from engine.model.similarity import pearson_baseline
from tests.conftest import ROOT, synth_ratings

SCALE = (1.0, 5.0)
ITEM_BASED = {"name": "pearson_baseline", "user_based": False}


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


# --- pearson_baseline similarity (engine/model/similarity.py) ---------------------------


@pytest.fixture(scope="module")
def sample():
    """The sample data, its trainset and a stock Surprise KNNBaseline fitted on it."""
    ratings = load_dataset(ROOT / "sample_data").ratings
    trainset = surprise_trainset(ratings, SCALE)
    stock = KNNBaseline(sim_options=dict(ITEM_BASED), verbose=False).fit(trainset)
    return ratings, trainset, stock


def test_fast_knn_baseline_similarity_equals_surprise_on_sample_data(sample):
    _, trainset, stock = sample
    fast = FastKNNBaseline(sim_options=dict(ITEM_BASED), verbose=False).fit(trainset)
    assert fast.sim.shape == stock.sim.shape and fast.sim.dtype == stock.sim.dtype
    assert fast.sim.flags.c_contiguous and (fast.sim == fast.sim.T).all()
    np.testing.assert_allclose(fast.sim, stock.sim, rtol=0, atol=1e-9)


def test_fast_knn_baseline_predictions_equal_surprise_on_sample_data(sample):
    _, trainset, stock = sample
    fast = FastKNNBaseline(sim_options=dict(ITEM_BASED), verbose=False).fit(trainset)
    rng = np.random.default_rng(0)
    users = [trainset.to_raw_uid(u) for u in rng.integers(0, trainset.n_users, 3000)]
    items = [trainset.to_raw_iid(i) for i in rng.integers(0, trainset.n_items, 3000)]
    pairs = [*zip(users, items, strict=True), ("unknown user", items[0]), (users[0], "none")]
    ours = [fast.predict(u, i, clip=False).est for u, i in pairs]
    theirs = [stock.predict(u, i, clip=False).est for u, i in pairs]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)


def test_train_knn_baseline_similarity_equals_surprise_in_our_item_order(sample):
    ratings, trainset, stock = sample
    model = train_knn_baseline(ratings, SCALE)
    _, inner = surprise_order(trainset, [], model.interactions.item_ids)
    np.testing.assert_allclose(model.sim, stock.sim[np.ix_(inner, inner)], rtol=0, atol=1e-9)


def test_fast_knn_baseline_user_based_equals_surprise(ratings):
    trainset = surprise_trainset(ratings, SCALE)
    options = {"name": "pearson_baseline", "user_based": True, "shrinkage": 10, "min_support": 3}
    stock = KNNBaseline(sim_options=dict(options), verbose=False).fit(trainset)
    fast = FastKNNBaseline(sim_options=dict(options), verbose=False).fit(trainset)
    np.testing.assert_allclose(fast.sim, stock.sim, rtol=0, atol=1e-9)


MU = 3.0
Y_BIASES = np.array([0.1, -0.2, 0.3, 0.0, -0.1])
X_BIASES = np.array([0.2, -0.1, 0.0, 0.4, 0.5, 0.0])
#: (x, y, rating) of the toy case; the comments give the case each x covers.
TOY = [
    (0, 0, 4.0), (0, 1, 2.0), (0, 2, 5.0),  # x0, x1: three common raters
    (1, 0, 3.0), (1, 1, 3.5), (1, 2, 4.0),
    (2, 0, 1.0), (2, 3, 4.0),  # x2: exactly one common rater (y0) with x0 and x1
    (3, 4, 2.0),  # x3: no common rater with x0, x1, x2, x4
    # x4: constant residual 0.5 (zero variance, as Pearson-baseline does not centre)
    (4, 0, MU + 0.1 + 0.5 + 0.5), (4, 1, MU - 0.2 + 0.5 + 0.5), (4, 2, MU + 0.3 + 0.5 + 0.5),
    # x5: the residual of y1 is exactly 0, and y1 still counts as a common rater
    (5, 0, 2.5), (5, 1, (MU - 0.2) + 0.0), (5, 2, 4.5), (5, 4, 3.0),
]  # fmt: skip


def surprise_similarity(triples, x_biases, shrinkage=100.0, min_support=1):
    """Surprise's own ``similarities.pearson_baseline`` on (x, y, rating) triples."""
    yr: dict[int, list[tuple[int, float]]] = {}
    for x, y, r in triples:
        yr.setdefault(y, []).append((x, r))
    yr = dict(sorted(yr.items()))
    return similarities.pearson_baseline(
        len(x_biases), yr, min_support, MU, x_biases, Y_BIASES, shrinkage
    )


def ours(triples, x_biases, **options):
    x, y, r = (np.array(c) for c in zip(*triples, strict=True))
    return pearson_baseline(x, y, r, MU, x_biases, Y_BIASES, **options)


@pytest.mark.parametrize(("shrinkage", "min_support"), [(100.0, 1), (0.0, 1), (2.5, 3), (100.0, 4)])
def test_pearson_baseline_toy_case_equals_surprise(shrinkage, min_support):
    expected = surprise_similarity(TOY, X_BIASES, shrinkage, min_support)
    got = ours(TOY, X_BIASES, shrinkage=shrinkage, min_support=min_support)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_pearson_baseline_toy_case_conventions():
    sim = ours(TOY, X_BIASES)
    np.testing.assert_array_equal(np.diag(sim), 1.0)
    assert sim[0, 2] == sim[1, 2] == 0.0  # one common rater: 0
    assert sim[0, 3] == sim[3, 4] == 0.0  # no common rater: 0, not -1
    assert sim[3, 5] == 0.0  # one common rater (y4)
    # The formula by hand for x0, x1 (raters y0, y1, y2).
    e0 = np.array([4.0, 2.0, 5.0]) - (MU + Y_BIASES[:3] + X_BIASES[0])
    e1 = np.array([3.0, 3.5, 4.0]) - (MU + Y_BIASES[:3] + X_BIASES[1])
    rho = e0 @ e1 / np.sqrt((e0 @ e0) * (e1 @ e1))
    assert sim[0, 1] == pytest.approx(rho * 2 / (2 + 100), abs=1e-15)
    # x4's residuals are all 0.5: rho(x0, x4) = sum e0 / sqrt(3 sum e0^2).
    assert sim[0, 4] == pytest.approx(e0.sum() / np.sqrt(3 * e0 @ e0) * 2 / 102, abs=1e-12)
    # x5 shares y0, y1, y2 with x0; y1's residual is exactly 0 but counts: n = 3.
    e5 = np.array([2.5, MU - 0.2, 4.5]) - (MU + Y_BIASES[:3] + X_BIASES[5])
    assert e5[1] == 0.0
    rho = e0 @ e5 / np.sqrt((e0 @ e0) * (e5 @ e5))
    assert sim[0, 5] == pytest.approx(rho * 2 / 102, abs=1e-12)


def test_pearson_baseline_zero_denominator_is_zero_where_surprise_raises():
    # x1's residuals are exactly 0 on both common raters with x0: 0 / 0.
    triples = [(0, 0, 4.0), (0, 1, 2.0), (1, 0, (MU + 0.1) - 0.1), (1, 1, (MU - 0.2) - 0.1),
               (2, 0, 5.0), (2, 1, 1.0), (2, 2, 3.0)]  # fmt: skip
    x_biases = np.array([0.2, -0.1, 0.3])
    with pytest.raises(ZeroDivisionError):
        surprise_similarity(triples, x_biases)
    sim = ours(triples, x_biases)
    assert sim[0, 1] == sim[1, 0] == sim[1, 2] == 0.0 and sim[1, 1] == 1.0
    # Every other pair is Surprise's, computed without x1.
    without = [(0 if x == 0 else 1, y, r) for x, y, r in triples if x != 1]
    expected = surprise_similarity(without, x_biases[[0, 2]])
    np.testing.assert_allclose(sim[np.ix_([0, 2], [0, 2])], expected, rtol=0, atol=1e-9)


def test_pearson_baseline_refuses_a_rating_given_twice():
    with pytest.raises(ValueError, match="rated twice"):
        ours([*TOY, TOY[0]], X_BIASES)
