"""The ridge algebra of the exact refit: known answers, batched subsets, refit and split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine import load_dataset
from engine.explain import find_counterfactual, linear_history
from engine.explain.history import RefoldValue
from engine.model import ModelConfig, train
from engine.model.interactions import Interactions
from engine.model.ridge import (
    SubsetRidge,
    design,
    fit_user,
    item_row,
    residuals,
    ridge_matrix,
    solve,
    split_weights,
)
from engine.model.svd import TrainedModel
from engine.recommend import recommend_all
from tests.conftest import SAMPLE_DIR

# A hand-solvable user: k = 2 factors, 3 rated items, lam * n = 1 (lam = 1/3).
#   x_0 = [1, 1, 0], x_1 = [1, 0, 1], x_2 = [1, 1, 1];  y = [1, -1, 2]
#   A = X^T X + I = [[4, 2, 2], [2, 3, 1], [2, 1, 3]],  X^T y = [2, 3, 1]
#   => theta = [0, 1, 0]  (b_u = 0, p_u = [1, 0])
# Target item q_i = [2, -1], b_i = 0.5:  x_i = [1, 2, -1], prediction 3 + 0.5 + 2 = 5.5.
#   A^-1 x_i = [0.25, 0.75, -0.75]  =>  w = X A^-1 x_i = [1, -0.5, 0.25],
#   contributions w * y = [1, 0.5, 0.5] (sum 2 = x_i . theta).
# Subset {0, 1}: lam |S| = 2/3, A_S = [[8/3, 1, 1], [1, 5/3, 0], [1, 0, 5/3]], rhs [0, 1, -1]
#   => theta_S = [0, 0.6, -0.6], prediction 3.5 + 1.8 = 5.3.
MU, LAM = 3.0, 1.0 / 3.0
Q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, -1.0]])
BI = np.array([0.5, -0.5, 0.0, 0.5])
ITEMS = np.array([0, 1, 2])
RATINGS = MU + BI[ITEMS] + np.array([1.0, -1.0, 2.0])  # [4.5, 1.5, 5.0]
TARGET = 3


def hand_model() -> TrainedModel:
    frame = pd.DataFrame(
        {"user_id": ["u", "u", "u"], "item_id": ["a", "b", "c"], "rating": RATINGS}
    )
    inter = Interactions.from_frame(frame, np.array(["a", "b", "c", "d"]))
    theta = np.array([0.0, 1.0, 0.0])
    return TrainedModel(
        ModelConfig(n_factors=2, refit_lambda=LAM), MU, theta[:1], BI, theta[None, 1:], Q,
        inter, (1.0, 5.0),
    )  # fmt: skip


def direct_theta(X: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Independent reference: argmin ||y - X theta||^2 + lam n ||theta||^2 by lstsq."""
    n, d = X.shape
    if n == 0:
        return np.zeros(d)
    augmented = np.vstack([X, np.sqrt(lam * n) * np.eye(d)])
    return np.linalg.lstsq(augmented, np.concatenate([y, np.zeros(d)]), rcond=None)[0]


def test_known_answer_design_residuals_and_theta():
    X, y = design(Q, ITEMS), residuals(MU, BI, ITEMS, RATINGS)
    np.testing.assert_array_equal(X, [[1, 1, 0], [1, 0, 1], [1, 1, 1]])
    np.testing.assert_allclose(y, [1.0, -1.0, 2.0], atol=1e-15)
    np.testing.assert_allclose(ridge_matrix(X, LAM), [[4, 2, 2], [2, 3, 1], [2, 1, 3]])
    np.testing.assert_allclose(solve(X, y, LAM), [0.0, 1.0, 0.0], atol=1e-14)
    np.testing.assert_allclose(fit_user(MU, BI, Q, ITEMS, RATINGS, LAM), [0, 1, 0], atol=1e-14)
    np.testing.assert_array_equal(item_row(Q, TARGET), [1.0, 2.0, -1.0])


def test_known_answer_exact_split():
    X = design(Q, ITEMS)
    w = split_weights(X, item_row(Q, TARGET), LAM)
    np.testing.assert_allclose(w, [1.0, -0.5, 0.25], atol=1e-14)
    np.testing.assert_allclose(w * residuals(MU, BI, ITEMS, RATINGS), [1.0, 0.5, 0.5], atol=1e-14)


def test_known_answer_subset_in_both_spaces():
    X, y = design(Q, ITEMS), residuals(MU, BI, ITEMS, RATINGS)
    masks = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0]])
    expected = np.array([[0.0, 0.6, -0.6], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    feature = SubsetRidge(X, y, LAM)
    assert not feature.sample_space
    np.testing.assert_allclose(feature.thetas(masks), expected, atol=1e-14)
    # Two rows of a wider design put the same subsets in the sample space.
    wide = SubsetRidge(X[:2], y[:2], LAM)
    assert wide.sample_space
    np.testing.assert_allclose(wide.thetas(masks[:, :2]), expected[[0, 0, 2]], atol=1e-14)
    x_i = item_row(Q, TARGET)
    np.testing.assert_allclose(wide.predictions(masks[:, :2], x_i), [1.8, 1.8, 0.0], atol=1e-14)


def test_known_answer_through_the_model():
    model = hand_model()
    vector = model.fold_in(["a", "b", "c"], RATINGS)
    assert vector.bu == pytest.approx(0.0, abs=1e-14)
    np.testing.assert_allclose(vector.pu, [1.0, 0.0], atol=1e-14)
    view = linear_history(model, vector, TARGET)
    assert view.base_values == pytest.approx(3.5)
    np.testing.assert_allclose(view.values, [1.0, 0.5, 0.5], atol=1e-14)
    game = RefoldValue(model, vector, TARGET)
    np.testing.assert_allclose(
        game(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0]])), [5.3, 5.5, 3.5], atol=1e-14
    )


def random_problem(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(0, 0.5, (n, d - 1))])
    return X, rng.normal(0, 1, n)


def mask_sequence(n: int, seed: int) -> np.ndarray:
    """Random masks, a one-step chain (add all, remove all), removals from the full set."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    chain = np.zeros((2 * n + 1, n), bool)
    for step in range(1, 2 * n + 1):
        chain[step] = chain[step - 1]
        chain[step, order[(step - 1) % n]] = step <= n
    drops = np.ones((30, n), bool)
    for row in drops:
        row[rng.choice(n, min(n, rng.integers(1, 4)), replace=False)] = False
    rand = rng.random((300, n)) < rng.random((300, 1))
    return np.vstack([rand[:40], chain, drops, np.ones((1, n), bool), rand[40:]])


@pytest.mark.parametrize(("n", "d"), [(40, 9), (9, 9), (5, 12), (1, 4)])
def test_batched_subsets_equal_direct_solves(n, d):
    X, y = random_problem(n, d, seed=n + d)
    masks = mask_sequence(n, seed=d)
    x = np.concatenate([[1.0], np.random.default_rng(1).normal(0, 0.5, d - 1)])
    expected = np.array([direct_theta(X[m], y[m], 0.1) for m in masks])
    solver = SubsetRidge(X, y, 0.1)
    assert solver.sample_space == (n < d)
    np.testing.assert_allclose(solver.thetas(masks), expected, atol=1e-12)
    # A fresh solver, fed in pieces: its running sums carry over between calls.
    pieces = SubsetRidge(X, y, 0.1)
    got = np.concatenate([pieces.predictions(part, x) for part in np.array_split(masks, 7)])
    np.testing.assert_allclose(got, expected @ x, atol=1e-12)


def test_batched_subsets_of_a_long_chain_stay_exact():
    """Hundreds of rank-one steps in a row (chunks of 256) do not drift."""
    X, y = random_problem(300, 21, seed=3)
    rng = np.random.default_rng(0)
    masks = []
    for _ in range(3):
        order, mask = rng.permutation(300), np.zeros(300, bool)
        masks.append(mask.copy())
        for j in np.concatenate([order, order]):
            mask[j] = not mask[j]
            masks.append(mask.copy())
    masks = np.array(masks)
    x = item_row(rng.normal(0, 0.5, (1, 20)), 0)
    got = SubsetRidge(X, y, 0.1).predictions(masks, x)
    expected = [direct_theta(X[m], y[m], 0.1) @ x for m in masks[::37]]
    np.testing.assert_allclose(got[::37], expected, atol=1e-10)


def test_empty_user_has_zero_theta_and_no_weights():
    X = design(Q, np.array([], dtype=np.int64))
    assert X.shape == (0, 3)
    np.testing.assert_array_equal(solve(X, np.zeros(0), LAM), np.zeros(3))
    assert split_weights(X, item_row(Q, 0), LAM).shape == (0,)


@pytest.fixture(scope="module")
def sample_models():
    data = load_dataset(SAMPLE_DIR)
    return {
        "few factors": train(data, ModelConfig(n_factors=5, n_epochs=10)),
        "many factors": train(data, ModelConfig(n_factors=60, n_epochs=10, refit_lambda=0.3)),
    }


def test_refit_equals_least_squares_on_the_augmented_system(sample_models):
    for model in sample_models.values():
        lam = model.config.refit_lambda
        counts = model.interactions.counts_per_user()
        for user in (0, 11, int(np.argmax(counts)), int(np.argmin(counts))):
            items, ratings = model.interactions.history(user)
            theta = direct_theta(design(model.Q, items), ratings - model.mu - model.bi[items], lam)
            assert model.bu[user] == pytest.approx(theta[0], abs=1e-10)
            np.testing.assert_allclose(model.P[user], theta[1:], atol=1e-10)


def test_exact_split_sums_to_the_prediction(sample_models):
    for model in sample_models.values():
        for user, item in [(0, 3), (17, 400), (999, 1200)]:
            vector = model.user_vector(user)
            view = linear_history(model, vector, item)
            prediction = model.score_vector(vector)[item]
            assert view.base_values + view.values.sum() == pytest.approx(prediction, abs=1e-10)
            X = design(model.Q, vector.items)
            w = split_weights(X, item_row(model.Q, item), model.config.refit_lambda)
            np.testing.assert_allclose(
                view.values, w * residuals(model.mu, model.bi, vector.items, vector.ratings),
                atol=1e-13,
            )  # fmt: skip


def test_refold_game_and_counterfactual_equal_fold_in_in_both_spaces(sample_models):
    for model in sample_models.values():
        ids = model.interactions.item_ids
        recs = recommend_all(model, 10)
        counts = model.interactions.counts_per_user()
        users = [int(np.argmax(counts)), int(np.argmin(counts))]  # many vs few ratings
        for user in users:
            vector = model.user_vector(user)
            n = len(vector.items)
            top = recs[recs["user_id"] == model.interactions.user_ids[user]]["item_id"]
            item = int(model.interactions.item_index(top.to_numpy()[:1])[0])
            masks = mask_sequence(n, seed=user)[:120]
            got = RefoldValue(model, vector, item)(masks)
            expected = [
                model.score_vector(model.fold_in(ids[vector.items[m]], vector.ratings[m]))[item]
                for m in masks
            ]
            np.testing.assert_allclose(got, expected, atol=1e-10)
            values = linear_history(model, vector, item).values[:n]
            cf = find_counterfactual(model, vector, item, values, 10)
            if cf.found:
                keep = ~np.isin(ids[vector.items], cf.removed)
                refolded = model.fold_in(ids[vector.items[keep]], vector.ratings[keep])
                assert cf.new_prediction == pytest.approx(
                    model.score_vector(refolded)[item], abs=1e-10
                )
