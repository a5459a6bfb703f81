"""The Spark engine is the same model: Surprise's BaselineOnly biases, numpy's ridge refit,
explanations that add up, and ml-100k accuracy beside the Surprise engine's."""

from __future__ import annotations

import numpy as np
import pytest

from engine.model import ModelConfig
from engine.model.comparators import train_baseline
from engine.model.interactions import Interactions
from engine.model.refit import refit_all_users
from engine.model.svd import clip_to_scale
from engine.protocols import assign_folds
from tests.conftest import ML100K
from tests.test_spark_support import spark_fixture, toy_ratings  # noqa: F401  (fixture)

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
TOY = ModelConfig(engine="spark", n_factors=2, n_epochs=5, seed=1)


def _fit(spark, ratings, config):
    """``(fit, baselines as arrays, interactions)`` of the Spark engine on ``ratings``."""
    from engine.spark.factors import scalar_array
    from engine.spark.train import fit_spark, ratings_frame

    inter = Interactions.from_frame(ratings)
    fit = fit_spark(ratings_frame(spark, inter), config)
    baselines = (
        fit.mu,
        scalar_array(fit.baselines.bu, "u", "bu", inter.n_users),
        scalar_array(fit.baselines.bi, "i", "bi", inter.n_items),
    )
    return fit, baselines, inter


@pytest.fixture(scope="module")
def toy(spark):
    from engine.spark.train import model_from_fit

    ratings = toy_ratings()
    fit, baselines, inter = _fit(spark, ratings, TOY)
    return ratings, baselines, model_from_fit(fit, inter, TOY, (1, 5))


def test_baselines_equal_surprise_baseline_only_on_a_toy(toy):
    ratings, (mu, bu, bi), _ = toy
    reference = train_baseline(ratings, (1, 5))
    assert mu == pytest.approx(reference.mu, abs=1e-12)
    np.testing.assert_allclose(bu, reference.bu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(bi, reference.bi, rtol=0, atol=1e-12)


def test_user_refit_equals_numpy_ridge_on_the_same_item_factors(toy):
    _, (mu, _, bi), model = toy
    bu, P = refit_all_users(model.mu, model.bi, model.Q, model.interactions, TOY.refit_lambda)
    np.testing.assert_allclose(model.bu, bu, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.P, P, rtol=0, atol=1e-10)
    assert model.mu == mu and np.array_equal(model.bi, bi)  # the item side: BaselineOnly's
    assert model.config.engine == "spark" and np.abs(model.Q).sum() > 0


def test_explanations_of_the_spark_model_add_up_exactly(toy):
    from engine.explain import explain_prediction

    _, _, model = toy
    bundle = explain_prediction(model, "u1", "i5", counterfactual=False)
    u, i = model.interactions.user_index(["u1"])[0], model.interactions.item_index(["i5"])[0]
    assert bundle.prediction == pytest.approx(float(model.predict_pairs([u], [i])[0]), abs=1e-12)
    for view in (bundle.factors, bundle.history):
        assert view.base_values + view.values.sum() == pytest.approx(bundle.prediction, abs=1e-9)


@pytest.fixture(scope="module")
def ml100k_fold0(spark):
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens 100K not found at {ML100K} (licence forbids bundling it)")
    from engine import load_dataset
    from engine.spark.train import model_from_fit

    data = load_dataset(ML100K)
    folds = assign_folds(data.n_ratings, 5, 0)
    train, test = data.ratings[folds != 0], data.ratings[folds == 0]
    config = ModelConfig(engine="spark", n_factors=20, n_epochs=10)
    fit, baselines, inter = _fit(spark, train, config)
    return train, test, fit, baselines, model_from_fit(fit, inter, config, (1, 5))


def test_baselines_equal_surprise_baseline_only_on_ml100k(ml100k_fold0):
    train, _, _, (mu, bu, bi), _ = ml100k_fold0
    reference = train_baseline(train, (1, 5))
    assert mu == pytest.approx(reference.mu, abs=1e-12)
    assert np.abs(bu - reference.bu).max() < 1e-6
    assert np.abs(bi - reference.bi).max() < 1e-6


def test_spark_rmse_on_ml100k_fold0_is_that_of_the_surprise_engine(ml100k_fold0):
    _, test, fit, _, model = ml100k_fold0
    inter = model.interactions
    users, items = inter.user_index(test["user_id"]), inter.item_index(test["item_id"])
    predicted = clip_to_scale(model.predict_pairs(users, items), model.scale)
    rmse = np.sqrt(np.mean((predicted - test["rating"].to_numpy()) ** 2))
    # The Surprise engine (SVD defaults + refit) gets 0.93 on this fold; the issue measured
    # 0.922 for three bias rounds + ALS rank 20.
    assert 0.90 < rmse < 0.935
    bu, pu = fit.user_vector(int(users[0]))  # one user fetched on demand from Spark
    assert bu == model.bu[users[0]] and np.array_equal(pu, model.P[users[0]])
