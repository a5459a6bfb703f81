"""The SVD engine equals Surprise, the refit equals ridge regression, persistence is exact."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from surprise import SVD

from engine import ConfigError
from engine.model import ModelConfig, train_svd
from engine.model.base import surprise_trainset
from engine.model.persist import ModelFileError, load_model, save_model
from tests.conftest import synth_ratings

SCALE = (1.0, 5.0)


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return synth_ratings(120, 200, 4000, 3)


SMALL = {"n_factors": 8, "n_epochs": 15}


def test_vectorised_scores_equal_surprise_predict(ratings):
    model = train_svd(ratings, SCALE, ModelConfig(refit_users=False, **SMALL))
    algo = SVD(n_factors=8, n_epochs=15, random_state=0).fit(surprise_trainset(ratings, SCALE))
    scores = model.score_block(np.arange(model.interactions.n_users))
    users, items = model.interactions.user_ids, model.interactions.item_ids
    expected = np.array([[algo.predict(u, i, clip=False).est for i in items] for u in users[:40]])
    np.testing.assert_allclose(scores[:40], expected, rtol=0, atol=1e-9)


def test_unknown_user_or_item_falls_back_like_surprise(ratings):
    model = train_svd(ratings, SCALE, ModelConfig(refit_users=False, **SMALL))
    algo = SVD(n_factors=8, n_epochs=15, random_state=0).fit(surprise_trainset(ratings, SCALE))
    user, item = model.interactions.user_ids[3], model.interactions.item_ids[5]
    got = model.predict_pairs(np.array([3, -1, -1]), np.array([-1, 5, -1]))
    expected = [algo.predict(user, "nope", clip=False).est,
                algo.predict("nobody", item, clip=False).est,
                algo.predict("nobody", "nope", clip=False).est]  # fmt: skip
    np.testing.assert_allclose(got, expected, atol=1e-12)


def ridge_by_least_squares(model, user: int, lam: float) -> np.ndarray:
    """argmin ||y - X theta||^2 + lam n ||theta||^2, solved as an augmented least squares."""
    items, r = model.interactions.history(user)
    X = np.column_stack([np.ones(len(items)), model.Q[items]])
    y = r - model.mu - model.bi[items]
    n = len(items)
    A = np.vstack([X, np.sqrt(lam * n) * np.eye(X.shape[1])])
    b = np.concatenate([y, np.zeros(X.shape[1])])
    return np.linalg.lstsq(A, b, rcond=None)[0]


def test_refit_is_the_ridge_solution(ratings):
    model = train_svd(ratings, SCALE, ModelConfig(refit_lambda=0.3, **SMALL))
    for user in (0, 7, 50):
        theta = ridge_by_least_squares(model, user, 0.3)
        assert model.bu[user] == pytest.approx(theta[0], abs=1e-10)
        np.testing.assert_allclose(model.P[user], theta[1:], atol=1e-10)


def test_refit_keeps_surprise_item_side(ratings):
    refit = train_svd(ratings, SCALE, ModelConfig(**SMALL))
    sgd = train_svd(ratings, SCALE, ModelConfig(refit_users=False, **SMALL))
    np.testing.assert_array_equal(refit.bi, sgd.bi)
    np.testing.assert_array_equal(refit.Q, sgd.Q)
    assert not np.allclose(refit.P, sgd.P)


def test_fold_in_matches_refit_for_training_users(ratings):
    model = train_svd(ratings, SCALE, ModelConfig(**SMALL))
    for user in (2, 30):
        items, r = model.interactions.history(user)
        vector = model.fold_in(model.interactions.item_ids[items], r)
        assert vector.bu == pytest.approx(model.bu[user], abs=1e-12)
        np.testing.assert_allclose(vector.pu, model.P[user], atol=1e-12)
        np.testing.assert_allclose(
            model.score_vector(vector), model.score_block(np.array([user]))[0], atol=1e-12
        )


def test_fold_in_reports_unknown_items_and_handles_empty_history(ratings):
    model = train_svd(ratings, SCALE, ModelConfig(**SMALL))
    vector = model.fold_in(["i0001", "no-such-item"], np.array([5.0, 1.0]))
    assert vector.unknown_items == ["no-such-item"]
    assert len(vector.items) == 1
    empty = model.fold_in([], np.array([]))
    assert not empty.has_history
    np.testing.assert_allclose(model.score_vector(empty), model.mu + model.bi)


def test_same_seed_same_model_other_seed_differs(ratings):
    a = train_svd(ratings, SCALE, ModelConfig(seed=1, **SMALL))
    b = train_svd(ratings, SCALE, ModelConfig(seed=1, **SMALL))
    c = train_svd(ratings, SCALE, ModelConfig(seed=2, **SMALL))
    np.testing.assert_array_equal(a.Q, b.Q)
    np.testing.assert_array_equal(a.P, b.P)
    assert not np.allclose(a.Q, c.Q)


def test_diverging_learning_rate_is_reported(ratings):
    with pytest.raises(ConfigError, match=r"SVD training diverged .*lower lr_all \(now 1.0\)"):
        train_svd(ratings, SCALE, ModelConfig(lr_all=1.0, n_epochs=30, n_factors=8))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("n_factors", 0, "ModelConfig.n_factors=0 is not allowed"),
        ("n_factors", -3, "n_factors=-3"),
        ("reg_all", -0.1, "ModelConfig.reg_all=-0.1 is not allowed: use a value >= 0"),
        ("lr_all", 0.0, "ModelConfig.lr_all=0.0"),
        ("refit_lambda", 0.0, "ModelConfig.refit_lambda=0.0"),
        ("n_epochs", 0, "ModelConfig.n_epochs=0"),
        ("seed", -1, "ModelConfig.seed=-1 is not allowed: use an integer in [0, 4294967295]"),
        ("seed", 2**32, "ModelConfig.seed=4294967296 is not allowed: use an integer in [0, "),
        ("seed", 1.5, "ModelConfig.seed=1.5 is not allowed: use an integer"),
        ("seed", True, "ModelConfig.seed=True is not allowed: use an integer"),
        ("n_factors", "8", "ModelConfig.n_factors='8' is not allowed: use an integer"),
        ("lr_all", float("nan"), "ModelConfig.lr_all=nan is not allowed: use a finite number"),
        ("reg_all", float("inf"), "ModelConfig.reg_all=inf is not allowed: use a finite number"),
        ("refit_lambda", 10**400, "ModelConfig.refit_lambda=1000"),
        ("refit_users", "yes", "ModelConfig.refit_users='yes' is not allowed: use true or false"),
    ],
)
def test_invalid_config_names_the_field(field, value, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        ModelConfig(**{field: value})


def test_seed_range_is_numpys_and_its_ends_train(ratings):
    """Seeds 0 and 2**32 - 1 train; -1 and 2**32 are refused before numpy sees them."""
    for seed in (0, 2**32 - 1):
        model = train_svd(ratings, SCALE, ModelConfig(seed=seed, n_factors=2, n_epochs=1))
        assert model.config.seed == seed
    for seed in (-1, 2**32):
        with pytest.raises(ConfigError, match=r"ModelConfig\.seed=-?\d+ is not allowed"):
            ModelConfig.from_preset("default", seed=seed)


def test_presets():
    assert ModelConfig.from_preset("default") == ModelConfig()
    custom = ModelConfig.from_preset("tuned", seed=9)
    assert custom.preset == "custom"
    assert custom.seed == 9
    with pytest.raises(ConfigError, match="Unknown preset 'best'"):
        ModelConfig.from_preset("best")
    with pytest.raises(ConfigError, match="Unknown ModelConfig field"):
        ModelConfig.from_preset("default", factors=3)


def test_user_with_identical_ratings_and_item_rated_once():
    rows = [("a", "x", 3), ("a", "y", 3), ("a", "z", 3), ("b", "x", 5), ("b", "y", 1),
            ("c", "z", 4), ("c", "once", 2)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"]).astype({"rating": float})
    model = train_svd(frame, SCALE, ModelConfig(**SMALL))
    scores = model.score_block(np.arange(3))
    assert np.isfinite(scores).all()
    assert model.interactions.counts_per_item()[model.interactions.item_index(["once"])[0]] == 1


def test_save_load_round_trip_is_exact(ratings, tmp_path):
    model = train_svd(ratings, SCALE, ModelConfig(**SMALL), fingerprint="abc")
    _, meta = save_model(model, tmp_path / "model")
    loaded = load_model(tmp_path / "model")
    for name in ("bu", "bi", "P", "Q"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.interactions.user_ids, model.interactions.user_ids)
    np.testing.assert_array_equal(loaded.interactions.ratings, model.interactions.ratings)
    assert loaded.config == model.config
    assert loaded.fingerprint == "abc"
    assert json.loads(meta.read_text())["versions"]["scikit-surprise"] == "1.1.5"


def test_tampered_truncated_or_foreign_model_files_are_refused(ratings, tmp_path):
    model = train_svd(ratings, SCALE, ModelConfig(**SMALL))
    npz, meta = save_model(model, tmp_path / "m")
    content = npz.read_bytes()
    npz.write_bytes(content[: len(content) // 2])
    with pytest.raises(ModelFileError, match="was truncated or modified"):
        load_model(tmp_path / "m")
    npz.write_bytes(content)
    meta.write_text('{"format": "something-else"}')
    with pytest.raises(ModelFileError, match="is not a model saved by this tool"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing")


@pytest.mark.parametrize("dtype", ["str", "object"])
def test_interactions_by_hand_from_either_id_storage(dtype):
    from engine.model.interactions import Interactions

    frame = pd.DataFrame({
        "user_id": pd.array(["u2", "u1", "u2", "u1", "u2"], dtype=dtype),
        "item_id": pd.array(["b", "c", "a", "zz", "c"], dtype=dtype),
        "rating": [2.0, 3.0, 1.0, 9.0, 4.0],
    })  # fmt: skip
    own = Interactions.from_frame(frame)
    assert list(own.user_ids) == ["u1", "u2"] and list(own.item_ids) == ["a", "b", "c", "zz"]
    assert own.indptr.tolist() == [0, 2, 5]
    assert own.items.tolist() == [2, 3, 0, 1, 2] and own.ratings.tolist() == [3, 9, 1, 2, 4]
    # a given item axis: "d" unrated, "zz" not on it, so its rating is dropped
    axis = Interactions.from_frame(frame, np.array(["a", "b", "c", "d"], dtype=object))
    assert list(axis.item_ids) == ["a", "b", "c", "d"] and axis.indptr.tolist() == [0, 1, 4]
    assert axis.items.tolist() == [2, 0, 1, 2] and axis.ratings.tolist() == [3, 1, 2, 4]
    # popularity sums: u1 rated c (2 raters), zz (1); u2 rated a (1), b (1), c (2)
    assert own.popularity_sums().tolist() == [3.0, 4.0]
    assert own.rows().tolist() == [0, 0, 1, 1, 1]
