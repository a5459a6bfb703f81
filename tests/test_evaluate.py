"""Cross-validation: paired folds, complete out-of-fold predictions, Surprise-equal RMSE."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from surprise import SVD, accuracy

from engine import DataError, DataFile, load_dataset
from engine.evaluate import EvaluationConfig, assign_folds, evaluate
from engine.model import ModelConfig, train_svd
from engine.model.base import surprise_trainset
from engine.synth import SynthConfig, generate, write_dataset

SMALL = ModelConfig(n_factors=8, n_epochs=15, refit_users=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    write_dataset(generate(SynthConfig(n_users=100, n_items=120, n_ratings=4000, seed=2)), folder)
    return load_dataset(folder)


@pytest.fixture(scope="module")
def result(data):
    return evaluate(data, SMALL, EvaluationConfig(folds=3, k=5))


def test_folds_partition_the_ratings_evenly():
    fold = assign_folds(1003, 5, seed=4)
    counts = np.bincount(fold)
    assert counts.tolist() == [201, 201, 201, 200, 200]
    assert not np.array_equal(fold, assign_folds(1003, 5, seed=5))
    np.testing.assert_array_equal(fold, assign_folds(1003, 5, seed=4))


def test_every_rating_is_predicted_once_per_rating_model(data, result):
    for model in ("SVD", "BaselineOnly", "KNNBaseline"):
        rows = result.predictions[result.predictions["model"] == model]
        assert len(rows) == data.n_ratings
        pairs = rows[["user_id", "item_id"]].apply(tuple, axis=1)
        assert pairs.is_unique
    assert "Popularity" not in set(result.predictions["model"])
    folds = result.predictions.groupby("model")["fold"].apply(lambda f: f.to_numpy())
    np.testing.assert_array_equal(folds["SVD"], folds["KNNBaseline"])  # paired


def test_fold_rmse_equals_surprise_accuracy_on_the_same_split(data, result):
    fold_of = assign_folds(data.n_ratings, 3, 0)
    train, test = data.ratings[fold_of != 0], data.ratings[fold_of == 0]
    algo = SVD(n_factors=8, n_epochs=15, random_state=0).fit(surprise_trainset(train, (1, 5)))
    testset = list(test[["user_id", "item_id", "rating"]].itertuples(index=False, name=None))
    expected = accuracy.rmse(algo.test(testset), verbose=False)
    metrics = result.fold_metrics
    got = metrics.query("model == 'SVD' and fold == 0 and metric == 'rmse'")["value"].item()
    assert got == pytest.approx(expected, abs=1e-12)


def test_summary_and_json(result):
    summary = result.summary()
    assert summary.index.tolist() == ["SVD", "BaselineOnly", "KNNBaseline", "Popularity"]
    assert np.isnan(summary.loc["Popularity", ("rmse", "mean")])
    out = result.to_dict()
    assert len(out["models"]["SVD"]["rmse"]["folds"]) == 3
    assert 0 <= out["models"]["Popularity"]["ndcg"]["mean"] <= 1


def test_unknown_users_in_a_fold_are_flagged_not_dropped():
    rows = ["user,item,rating"] + [f"u{u},i{i},{(u * i) % 5 + 1}" for u in range(6)
                                   for i in range(6)] + ["loner,i1,5"]  # fmt: skip
    data = load_dataset(DataFile("r.csv", ("\n".join(rows) + "\n").encode()))
    result = evaluate(data, SMALL, EvaluationConfig(folds=2, k=3, models=("SVD",)))
    loner = result.predictions[result.predictions["user_id"] == "loner"]
    assert len(loner) == 1
    assert loner["was_impossible"].item()
    assert loner["reason"].item() == "user not in training fold"
    assert np.isfinite(loner["prediction"].item())


def test_fewer_ratings_than_folds_is_a_clear_error():
    data = load_dataset(DataFile("r.csv", b"user,item,rating\na,x,1\nb,y,5\na,y,3\n"))
    with pytest.raises(DataError, match="has 3 ratings, fewer than the 5 folds"):
        evaluate(data, SMALL)


def test_same_seed_same_evaluation(data):
    a = evaluate(data, SMALL, EvaluationConfig(folds=2, k=5, models=("SVD",)))
    b = evaluate(data, SMALL, EvaluationConfig(folds=2, k=5, models=("SVD",)))
    pd.testing.assert_frame_equal(
        a.fold_metrics.query("metric != 'fit_seconds'"),
        b.fold_metrics.query("metric != 'fit_seconds'"),
    )


def test_ranking_metrics_equal_a_brute_force_ranking(data, result):
    fold_of = assign_folds(data.n_ratings, 3, 0)
    train, test = data.ratings[fold_of != 0], data.ratings[fold_of == 0]
    model = train_svd(train, (1.0, 5.0), SMALL)
    users = result.user_ranking.query("model == 'SVD' and fold == 0").set_index("user_id")
    checked = 0
    for user_id, row in users.head(15).iterrows():
        u = model.interactions.user_index([user_id])[0]
        rated = set(model.interactions.history(u)[0])
        scores = model.score_block(np.array([u]))[0]
        candidates = [i for i in range(model.interactions.n_items) if i not in rated]
        ranked = sorted(candidates, key=lambda i: (-scores[i], model.interactions.item_ids[i]))
        top = model.interactions.item_ids[ranked[:5]]
        mine = test[(test["user_id"] == user_id) & (test["rating"] >= 4)]
        relevant = set(mine["item_id"])
        hits = [item in relevant for item in top]
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(5, len(relevant))))
        assert row["n_relevant"] == len(relevant)
        assert row["precision"] == pytest.approx(sum(hits) / 5)
        assert row["recall"] == pytest.approx(sum(hits) / len(relevant))
        assert row["ndcg"] == pytest.approx(dcg / idcg)
        checked += sum(hits)
    assert checked > 0  # the comparison exercised at least one hit
    mean = result.fold_metrics.query("model == 'SVD' and fold == 0 and metric == 'ndcg'")
    assert mean["value"].item() == pytest.approx(users["ndcg"].mean())
