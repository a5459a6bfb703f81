"""Fidelity of every explanation view: completeness, equality with shap, axioms, deletion."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from engine import ConfigError, charts, load_dataset
from engine.explain import (
    UnknownItemError,
    explain_prediction,
    factor_explanation,
    factor_labels,
    knn_split,
    linear_history,
    rotate,
    shapley_history,
    varimax,
)
from engine.explain.counterfactual import rank_of
from engine.explain.factors import shap_linear_explanation
from engine.explain.history import RESIDUAL_FEATURE, RefoldValue
from engine.explain.neighbours import NO_KNN_NEIGHBOUR
from engine.model import ModelConfig, train, train_svd
from engine.model.comparators import train_knn_baseline
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel
from engine.recommend import SOURCE_FALLBACK, UnknownUserError, recommend_all
from tests.conftest import SAMPLE_DIR


@pytest.fixture(scope="module")
def sample():
    return load_dataset(SAMPLE_DIR)


@pytest.fixture(scope="module")
def model(sample):
    return train(sample, ModelConfig(n_factors=20, n_epochs=20))


def prediction(model, vector, item):
    return model.mu + vector.bu + model.bi[item] + model.Q[item] @ vector.pu


def refolded_prediction(model, vector, item, keep):
    ids = model.interactions.item_ids
    return prediction(model, model.fold_in(ids[vector.items[keep]], vector.ratings[keep]), item)


@pytest.mark.parametrize(("user", "item"), [(0, 3), (17, 400), (999, 1200)])
def test_factor_view_is_complete_and_equals_shap_linear_explainer(model, user, item):
    vector = model.user_vector(user)
    mine = factor_explanation(model, vector, item)
    assert mine.base_values + mine.values.sum() == pytest.approx(
        prediction(model, vector, item), abs=1e-9
    )
    reference = shap_linear_explanation(model, vector, item)
    np.testing.assert_allclose(mine.values, reference.values, atol=1e-10)
    assert mine.base_values == pytest.approx(reference.base_values, abs=1e-10)


@pytest.mark.parametrize(("user", "item"), [(0, 3), (17, 400), (999, 1200)])
def test_history_split_is_complete(model, user, item):
    vector = model.user_vector(user)
    view = linear_history(model, vector, item)
    assert view.base_values == pytest.approx(model.mu + model.bi[item])
    assert view.base_values + view.values.sum() == pytest.approx(
        prediction(model, vector, item), abs=1e-9
    )
    assert len(view.values) == len(vector.items)


def test_history_without_refit_shows_the_residual(sample):
    sgd = train(sample, ModelConfig(n_factors=20, n_epochs=20, refit_users=False))
    vector = sgd.user_vector(5)
    view = linear_history(sgd, vector, 10)
    assert view.feature_names[-1] == RESIDUAL_FEATURE
    assert abs(view.values[-1]) > 1e-6
    assert view.base_values + view.values.sum() == pytest.approx(
        prediction(sgd, vector, 10), abs=1e-9
    )


def test_refold_game_equals_fold_in_for_any_mask(model):
    rng = np.random.default_rng(0)
    for user in (3, int(np.argmax(model.interactions.counts_per_user()))):  # both spaces
        vector = model.user_vector(user)
        game = RefoldValue(model, vector, 50)
        masks = rng.random((25, len(vector.items))) < 0.5
        masks[0] = False
        expected = [
            model.mu + model.bi[50] if not m.any() else refolded_prediction(model, vector, 50, m)
            for m in masks
        ]
        np.testing.assert_allclose(game(masks), expected, atol=1e-9)


def small_user(model, max_ratings=10):
    counts = model.interactions.counts_per_user()
    return int(np.flatnonzero(counts <= max_ratings)[0])


def brute_force_shapley(game, n):
    values = np.zeros(n)
    for j in range(n):
        others = [k for k in range(n) if k != j]
        for size in range(n):
            for subset in itertools.combinations(others, size):
                weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
                mask = np.zeros((2, n))
                mask[:, list(subset)] = 1
                mask[1, j] = 1
                low, high = game(mask)
                values[j] += weight * (high - low)
    return values


def tiny_model(n_ratings: int) -> TrainedModel:
    """A user with ``n_ratings`` ratings on a small random model (exact Shapley is cheap)."""
    rng = np.random.default_rng(n_ratings)
    n_items, k = 30, 4
    frame = pd.DataFrame(
        {"user_id": ["u"] * n_ratings + ["v"] * 5,
         "item_id": [f"i{j:02d}" for j in range(n_ratings)] + [f"i{j:02d}" for j in range(5)],
         "rating": rng.integers(1, 6, n_ratings + 5).astype(float)}
    )  # fmt: skip
    inter = Interactions.from_frame(frame, np.array([f"i{j:02d}" for j in range(n_items)]))
    return TrainedModel(
        ModelConfig(n_factors=k), 3.5, np.zeros(2), rng.normal(0, 0.3, n_items),
        np.zeros((2, k)), rng.normal(0, 0.5, (n_items, k)), inter, (1.0, 5.0),
    )  # fmt: skip


@pytest.mark.parametrize("n", [3, 6, 9])
def test_exact_shapley_equals_brute_force_and_permutation_is_close(n):
    model = tiny_model(n)
    vector = model.fold_in([f"i{j:02d}" for j in range(n)], model.interactions.history(0)[1])
    item = 20
    exact = shapley_history(model, vector, item)
    brute = brute_force_shapley(RefoldValue(model, vector, item), n)
    np.testing.assert_allclose(exact.values, brute, atol=1e-10)
    assert exact.base_values + exact.values.sum() == pytest.approx(
        prediction(model, vector, item), abs=1e-8
    )


def exact_shapley_by_table(game, n):
    """Exact Shapley values from the game's value on all 2^n subsets (one batch)."""
    masks = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(float)
    value = game(masks)
    sizes = masks.sum(axis=1).astype(int)
    weights = np.array([math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n)
                        for s in range(n)])  # fmt: skip
    out = np.zeros(n)
    for j in range(n):
        without = masks[:, j] == 0
        with_j = np.flatnonzero(without) + 2**j
        out[j] = (weights[sizes[without]] * (value[with_j] - value[without])).sum()
    return out


def test_permutation_estimate_is_complete_close_and_seeded():
    n = 12  # above EXACT_MAX, so PermutationExplainer; 2^12 subsets give the exact answer
    model = tiny_model(n)
    vector = model.fold_in([f"i{j:02d}" for j in range(n)], model.interactions.history(0)[1])
    a = shapley_history(model, vector, 20, permutations=10, seed=1)
    b = shapley_history(model, vector, 20, permutations=10, seed=1)
    c = shapley_history(model, vector, 20, permutations=10, seed=2)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, c.values)
    assert a.base_values + a.values.sum() == pytest.approx(prediction(model, vector, 20), abs=1e-8)
    exact = exact_shapley_by_table(RefoldValue(model, vector, 20), n)
    error = np.abs(a.values - exact)
    scale = np.abs(exact).mean()
    print(
        f"10-permutation error: mean {error.mean():.4f}, max {error.max():.4f}, "
        f"mean |exact| {scale:.4f}"
    )
    # Stated tolerance for 10 antithetic permutations: mean error under 25% of the mean
    # absolute value, and no value off by more than the mean absolute value.
    assert error.mean() < 0.25 * scale
    assert error.max() < scale


def test_permutation_explainer_restores_numpy_global_rng(model):
    np.random.seed(123)
    expected = np.random.random()
    np.random.seed(123)
    shapley_history(model, model.user_vector(0), 1)
    assert np.random.random() == expected


def test_dummy_rating_gets_zero_and_identical_ratings_get_equal_values():
    model = tiny_model(6)
    # Item 0: zero factors and a bias making its residual zero for a rating of 4.
    bi, Q = model.bi.copy(), model.Q.copy()
    Q[0] = 0.0
    bi[0] = 4.0 - model.mu
    # Items 1 and 2: identical factors and bias, both rated 5: symmetric players.
    Q[2], bi[2] = Q[1], bi[1]
    model = replace(model, bi=bi, Q=Q)
    vector = model.fold_in(["i00", "i01", "i02", "i03", "i04", "i05"], [4.0, 5.0, 5.0, 2.0, 3, 1])
    linear = linear_history(model, vector, 20)
    assert linear.values[0] == 0.0
    assert linear.values[1] == pytest.approx(linear.values[2], abs=1e-12)
    exact = shapley_history(model, vector, 20)
    assert exact.values[1] == pytest.approx(exact.values[2], abs=1e-12)
    # In the refold game a zero-residual rating is *not* a dummy player: its presence adds
    # data for the bias and raises the ridge strength lambda * n (see engine.explain.history).
    brute = brute_force_shapley(RefoldValue(model, vector, 20), 6)
    assert exact.values[0] == pytest.approx(brute[0], abs=1e-10)


def deletion_drops(model, sample_pairs, view_of, k=5, seed=0):
    """Mean prediction drop after removing the top-k positive ratings vs k random ones."""
    rng = np.random.default_rng(seed)
    top_drops, random_drops = [], []
    for user, item in sample_pairs:
        vector = model.user_vector(user)
        values = view_of(vector, item)[: len(vector.items)]
        before = prediction(model, vector, item)
        top = np.argsort(-values, kind="stable")[:k]
        keep = np.ones(len(vector.items), bool)
        keep[top] = False
        top_drops.append(before - refolded_prediction(model, vector, item, keep))
        keep = np.ones(len(vector.items), bool)
        keep[rng.choice(len(vector.items), k, replace=False)] = False
        random_drops.append(before - refolded_prediction(model, vector, item, keep))
    return float(np.mean(top_drops)), float(np.mean(random_drops))


@pytest.fixture(scope="module")
def recommended_pairs(model):
    recs = recommend_all(model, 10)
    rng = np.random.default_rng(42)
    rows = recs.iloc[rng.choice(len(recs), 200, replace=False)]
    users = model.interactions.user_index(rows["user_id"].to_numpy())
    items = model.interactions.item_index(rows["item_id"].to_numpy())
    return list(zip(users.tolist(), items.tolist(), strict=True))


def test_deleting_top_attributed_ratings_lowers_the_prediction_more_than_random(
    model, recommended_pairs
):
    linear_top, linear_random = deletion_drops(
        model, recommended_pairs, lambda v, i: linear_history(model, v, i).values
    )
    shapley_top, shapley_random = deletion_drops(
        model, recommended_pairs, lambda v, i: shapley_history(model, v, i).values
    )
    print(f"AOPC@5 linear {linear_top:.4f}, shapley {shapley_top:.4f}, random {linear_random:.4f}")
    assert linear_top > linear_random + 0.05
    assert shapley_top > shapley_random + 0.05


def test_counterfactual_is_valid_and_minimal_among_candidates(model, recommended_pairs):
    checked = 0
    for user, item in recommended_pairs[:40]:
        bundle = explain_prediction(
            model, model.interactions.user_ids[user], model.interactions.item_ids[item]
        )
        cf = bundle.counterfactual
        if not cf.found:
            continue
        vector = model.user_vector(user)
        ids = model.interactions.item_ids[vector.items]
        keep = ~np.isin(ids, cf.removed)
        refolded = model.fold_in(ids[keep], vector.ratings[keep])
        assert rank_of(model, refolded, item, seen=vector.items)[0] == cf.new_rank > 10
        if len(cf.removed) > 1 and cf.method.startswith("exhaustive"):
            contributions = bundle.history.values[: len(vector.items)]
            candidates = [j for j in np.argsort(-contributions, kind="stable")[:12]
                          if contributions[j] > 0]  # fmt: skip
            for j in candidates:  # no single candidate removal suffices
                keep = np.ones(len(vector.items), bool)
                keep[j] = False
                single = model.fold_in(ids[keep], vector.ratings[keep])
                assert rank_of(model, single, item, seen=vector.items)[0] <= 10
        checked += 1
    assert checked >= 5


def test_bundle_views_sum_to_the_prediction_and_serialise(model, sample):
    knn = train_knn_baseline(sample.ratings, (1.0, 5.0))
    bundle = explain_prediction(model, "u0010", "i0042", data=sample, knn=knn, shapley=True)
    assert all(gap < 1e-8 for gap in bundle.fidelity.values())
    assert set(bundle.fidelity) == {"factors_gap", "history_gap", "shapley_gap", "knn_gap"}
    out = bundle.to_dict()
    for view in ("factors", "history", "shapley", "knn"):
        block = out[view]
        assert block["base_value"] + sum(v["value"] for v in block["values"]) == pytest.approx(
            block["prediction"], abs=1e-9
        )
    assert out["history"]["values"][0]["feature"].endswith(")")  # a title, not an id
    assert out["similar_users"][0]["similarity"] >= out["similar_users"][-1]["similarity"]


def test_knn_split_equals_the_comparator(sample):
    knn = train_knn_baseline(sample.ratings, (1.0, 5.0))
    for user, item in [(0, 5), (40, 900), (700, 12)]:
        view = knn_split(knn, user, item)
        assert view.base_values + view.values.sum() == pytest.approx(
            knn.predict_pairs(np.array([user]), np.array([item]))[0], abs=1e-9
        )


def test_bad_inputs(model):
    with pytest.raises(UnknownUserError, match="User 'ghost' is not in the training data"):
        explain_prediction(model, "ghost", "i0001")
    with pytest.raises(UnknownItemError, match="Item 'nope' is not in the training data"):
        explain_prediction(model, "u0001", "nope")
    rated = model.interactions.item_ids[model.user_vector(0).items[0]]
    bundle = explain_prediction(model, "u0001", rated)
    assert "already rated" in bundle.notes[0]
    empty = model.fold_in(["not-an-item"], [5.0])
    fallback = explain_prediction(model, "newcomer", "i0001", vector=empty)
    assert fallback.source == SOURCE_FALLBACK
    assert fallback.factors is None and fallback.history is None
    one = model.fold_in(["i0001"], [5.0])
    single = explain_prediction(model, "newcomer", "i0002", vector=one, shapley=True)
    assert len(single.history.values) == 1
    assert single.history.values[0] == pytest.approx(single.prediction - single.history.base_values)


def test_factor_labels_find_a_planted_genre_factor():
    rng = np.random.default_rng(0)
    n_items = 200
    items = pd.DataFrame(
        {"genres": [("Drama",) if j % 4 == 0 else ("Comedy",) for j in range(n_items)],
         "year": rng.integers(1950, 2020, n_items)},
        index=pd.Index([f"i{j:03d}" for j in range(n_items)], name="item_id"),
    )  # fmt: skip
    frame = pd.DataFrame({"user_id": "u", "item_id": items.index, "rating": 3.0})
    inter = Interactions.from_frame(frame)
    Q = rng.normal(0, 0.05, (n_items, 2))
    Q[:, 0] += (items["genres"].map(lambda g: g == ("Drama",))).to_numpy() * 1.0
    model = TrainedModel(ModelConfig(n_factors=2), 3.0, np.zeros(1), np.zeros(n_items),
                         np.zeros((1, 2)), Q, inter, (1.0, 5.0))  # fmt: skip
    labels = factor_labels(model, items)
    first = labels.iloc[0]
    assert first["positive"] == "genre: Drama"
    assert first["negative"] == "genre: Comedy"
    assert first["r2"] > 0.95
    assert labels.iloc[1]["r2"] < 0.1
    assert len(first["top_items"]) == 5


def test_varimax_rotation_keeps_predictions_and_sparsifies(model):
    R = varimax(model.Q)
    np.testing.assert_allclose(R @ R.T, np.eye(R.shape[0]), atol=1e-10)
    rotated = rotate(model, R)
    users = np.arange(20)
    np.testing.assert_allclose(rotated.score_block(users), model.score_block(users), atol=1e-10)

    def criterion(L):
        return float(((L**2) ** 2).sum() - ((L**2).sum(axis=0) ** 2).sum() / len(L))

    assert criterion(rotated.Q) >= criterion(model.Q)


def test_rotation_round_trips_through_persistence(model, tmp_path):
    from engine.model.persist import load_model, save_model

    rotated = rotate(model, varimax(model.Q))
    save_model(rotated, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.rotation, rotated.rotation)


def test_charts_end_at_the_prediction(model):
    bundle = explain_prediction(model, "u0003", "i0100", counterfactual=False)
    waterfall = charts.factor_waterfall(bundle.factors, top=5)
    assert waterfall.data[0].x[-1] == pytest.approx(bundle.prediction)
    relative = [x for x, m in zip(waterfall.data[0].x, waterfall.data[0].measure, strict=True)
                if m == "relative"]  # fmt: skip
    assert waterfall.data[0].x[0] + sum(relative) == pytest.approx(bundle.prediction)
    bars = charts.history_bars(bundle.history, top=4)
    assert len(bars.data[0].x) == 4
    with pytest.raises(TypeError, match=r"requires a shap\.Explanation"):
        charts.factor_waterfall({"values": []})


def test_explain_on_model_trained_with_one_rating_user():
    frame = pd.DataFrame(
        {"user_id": ["a", "b", "b", "c", "c"], "item_id": ["x", "x", "y", "y", "z"],
         "rating": [5.0, 3.0, 4.0, 2.0, 1.0]}
    )  # fmt: skip
    model = train_svd(frame, (1.0, 5.0), ModelConfig(n_factors=3, n_epochs=5))
    bundle = explain_prediction(model, "a", "z")
    assert bundle.fidelity["history_gap"] < 1e-12
    assert len(bundle.history.values) == 1


def test_knn_split_without_a_positively_similar_rated_item_is_the_baseline():
    # "a" rated only x; nobody rated both x and z, so their similarity is 0, not positive.
    frame = pd.DataFrame(
        {"user_id": ["a", "b", "b", "c", "c", "d", "d"],
         "item_id": ["x", "x", "y", "y", "z", "z", "w"],
         "rating": [5.0, 3.0, 4.0, 2.0, 1.0, 4.0, 2.0]}
    )  # fmt: skip
    model = train_svd(frame, (1.0, 5.0), ModelConfig(n_factors=3, n_epochs=5))
    knn = train_knn_baseline(frame, (1.0, 5.0))
    user, item = model.interactions.user_index(["a"])[0], model.interactions.item_index(["z"])[0]
    view = knn_split(knn, user, item)
    assert len(view.values) == 0
    baseline = knn.mu + knn.bu[user] + knn.bi[item]
    assert view.base_values == pytest.approx(baseline)
    assert knn.predict_pairs(np.array([user]), np.array([item]))[0] == pytest.approx(baseline)
    bundle = explain_prediction(model, "a", "z", knn=knn)
    assert bundle.knn_reason == NO_KNN_NEIGHBOUR
    assert NO_KNN_NEIGHBOUR.startswith("none of the user's rated items is positively similar")
    assert any(NO_KNN_NEIGHBOUR in note for note in bundle.notes)  # the page shows notes
    assert bundle.fidelity["knn_gap"] < 1e-12
    out = json.loads(json.dumps(bundle.to_dict(), allow_nan=False))
    assert out["knn"] == {
        "base_value": pytest.approx(baseline),
        "values": [],
        "prediction": pytest.approx(baseline),
        "reason": NO_KNN_NEIGHBOUR,
    }
    charts.history_bars(view)  # an empty view still draws


def test_views_of_an_empty_history_are_valid_explanations(model):
    empty = model.fold_in([], [])
    history = linear_history(model, empty, 7)
    assert len(history.values) == 0 and history.base_values == pytest.approx(model.mu + model.bi[7])
    shapley = shapley_history(model, empty, 7)
    assert len(shapley.values) == 0 and shapley.base_values == history.base_values


@pytest.mark.parametrize("permutations", [0, -3, 2.5, True])
def test_shapley_permutations_must_be_a_positive_integer(model, permutations):
    message = r"permutations=.* is not allowed: permutations must be an integer >= 1"
    with pytest.raises(ConfigError, match=message):
        explain_prediction(model, "u0001", "i0002", shapley=True, permutations=permutations)
    with pytest.raises(ConfigError, match=message):
        shapley_history(model, model.user_vector(0), 2, permutations=permutations)


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_counterfactual_list_length_must_be_a_positive_integer(model, n):
    with pytest.raises(ConfigError, match=r"n=.* is not allowed: the top-N list length n must "
                                          r"be an integer >= 1"):  # fmt: skip
        explain_prediction(model, "u0001", "i0002", n=n)
