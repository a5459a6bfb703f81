"""Evaluation in Spark: the Surprise engine's splits; predictions, top-N lists with rated
items excluded and per-user ranking metrics equal to the in-memory evaluation of the same
model; every user's top-N list computed in Spark equal to ``recommend_all``; Parquet out."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from engine import load_dataset
from engine.evaluate import EvaluationConfig, evaluate, held_out_predictions, held_out_ranking
from engine.ids import object_ids
from engine.metrics import RANKING_METRICS
from engine.model import ModelConfig, train_svd
from engine.model.interactions import Interactions
from engine.protocols import make_splits
from engine.recommend import recommend_all
from engine.synth import SynthConfig, generate, write_dataset
from tests.test_spark_support import spark_fixture, toy_ratings  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
SMALL = ModelConfig(engine="spark", n_factors=3, n_epochs=3, seed=2)
#: K-fold (several splits) and temporal (cold users), on few splits (each one Spark fit). The
#: other protocols of ``engine.protocols`` hand the Spark engine splits of the same kind: a
#: training mask and held-out ratings, made in memory by ``make_splits``.
PROTOCOLS = {
    "kfold": EvaluationConfig(split="kfold", folds=2, seed=3, k=4, models=("SVD",)),
    "temporal": EvaluationConfig(split="temporal", test_share=0.3, k=4, models=("SVD",)),
}


@pytest.fixture(scope="module")
def timed_data(tmp_path_factory):
    """A small synthetic dataset with a time on every rating."""
    folder = tmp_path_factory.mktemp("timed")
    config = SynthConfig(n_users=30, n_items=20, n_ratings=240, min_ratings=5, seed=3)
    write_dataset(generate(config), folder)
    return load_dataset(folder)


@pytest.fixture(scope="module")
def spark_runs(spark, timed_data):
    """Per protocol: the Spark engine's ``Evaluation`` and each split's call and result."""
    import engine.spark.evaluate as spark_evaluate

    runs = {}
    real = spark_evaluate.evaluate_split_in_spark
    with pytest.MonkeyPatch.context() as patch:
        for name, protocol in PROTOCOLS.items():
            calls = []

            def record(*args, calls=calls):
                result = real(*args)
                calls.append((args, result))
                return result

            patch.setattr(spark_evaluate, "evaluate_split_in_spark", record)
            runs[name] = (evaluate(timed_data, SMALL, protocol), calls)
    return runs


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_spark_engine_evaluates_on_the_surprise_engines_splits(spark_runs, timed_data, protocol):
    result, calls = spark_runs[protocol]
    surprise = evaluate(timed_data, ModelConfig(n_factors=2, n_epochs=2), PROTOCOLS[protocol])
    assert len(calls) == PROTOCOLS[protocol].n_splits  # the SVD slot ran in Spark, per split
    pd.testing.assert_frame_equal(result.splits, surprise.splits)
    held_out = ["fold", "user_id", "item_id", "rating"]
    pd.testing.assert_frame_equal(result.predictions[held_out], surprise.predictions[held_out])
    fit_seconds = result.fold_metrics.query("metric == 'fit_seconds'")["value"]
    assert len(fit_seconds) == len(calls) and (fit_seconds > 0).all()


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_spark_split_equals_numpy_scoring_of_the_collected_model(spark_runs, timed_data, protocol):
    from engine.spark.train import model_from_fit

    result, calls = spark_runs[protocol]
    settings = PROTOCOLS[protocol]
    parts = make_splits(
        timed_data.ratings, settings.split, folds=settings.folds, seed=settings.seed,
        test_share=settings.test_share, last_n=settings.last_n, windows=settings.windows,
    )  # fmt: skip
    rated = object_ids(timed_data.ratings)[["user_id", "item_id", "rating"]]
    for (train, test, fold, scale, catalogue, config, k, threshold, shared), split in calls:
        assert train is None  # the Spark engine's models read the index only: not kept
        train = rated[parts[fold].train]
        indexed = Interactions.from_frame(train, catalogue)  # the split indexed for every model
        for name in ("user_ids", "item_ids", "indptr", "items", "ratings"):
            np.testing.assert_array_equal(getattr(shared, name), getattr(indexed, name))
        model = model_from_fit(split.fit, indexed, config, scale)
        predictions, rmse, mae = held_out_predictions(model, test, fold)
        pd.testing.assert_frame_equal(split.predictions, predictions, rtol=0, atol=1e-9)
        assert split.rmse == pytest.approx(rmse, abs=1e-9)
        assert split.mae == pytest.approx(mae, abs=1e-9)
        per_user, lists, coverage = held_out_ranking(model, test, k, threshold, 2**26)
        assert len(per_user) > 0
        pd.testing.assert_frame_equal(split.user_ranking, per_user, rtol=0, atol=1e-9)
        pd.testing.assert_frame_equal(split.top_lists, lists)
        assert split.coverage == coverage
        for table, expected in [
            (result.predictions, predictions),  # what evaluate keeps
            (result.user_ranking, per_user),
            (result.top_lists, lists),
        ]:
            mine = table[(table["fold"] == fold) & (table["model"] == "SVD")]
            mine = mine.drop(columns=["model", "fold"], errors="ignore").reset_index(drop=True)
            if "reason" in mine:  # kept as a label (Evaluation's LABEL_COLUMNS)
                mine["reason"] = mine["reason"].astype("str")
            expected = expected.drop(columns=["model", "fold"], errors="ignore")
            if "rank" in mine:  # kept in one byte (Evaluation's SMALL_INT_COLUMNS)
                assert mine["rank"].dtype == np.int8
                expected = expected.astype({"rank": np.int8})
            pd.testing.assert_frame_equal(mine, expected, rtol=0, atol=1e-9)


def test_cold_users_and_items_fall_back_as_in_memory(spark_runs):
    predictions = pd.concat([r.predictions for r, _ in spark_runs.values()])
    reasons = set(predictions["reason"])
    assert {"", "user not in training fold"} <= reasons  # the time protocols leave users cold
    cold = predictions[predictions["was_impossible"]]
    assert (cold["reason"] != "").all() and len(cold) > 0


def _tied_model():
    """A model trained on the toy ratings, then one with every score equal (all ties)."""
    model = train_svd(toy_ratings(), (1, 5), ModelConfig(n_factors=2, n_epochs=5))
    flat = replace(
        model, bu=np.zeros_like(model.bu), bi=np.zeros_like(model.bi),
        P=np.zeros_like(model.P), Q=np.zeros_like(model.Q),
    )  # fmt: skip
    return model, flat


@pytest.mark.parametrize("k", [2, 4])
def test_lists_in_spark_equal_recommend_all_row_for_row(spark, k):
    from engine.analysis import _recommend_all
    from engine.spark.recommend import recommend_all_in_spark

    model, flat = _tied_model()
    for each in (model, flat):
        expected = recommend_all(each, k)
        pd.testing.assert_frame_equal(recommend_all_in_spark(each, k), expected, rtol=0,
                                      atol=1e-12)  # fmt: skip
    tied = recommend_all(flat, k)  # all scores equal: the lowest unrated item indices first
    ratings = toy_ratings()
    for user, rows in tied.groupby("user_id"):
        rated = set(ratings.loc[ratings["user_id"] == user, "item_id"])
        unrated = [i for i in flat.interactions.item_ids if i not in rated]
        assert rows["item_id"].tolist() == unrated[:k]
    assert (tied.groupby("user_id").size() < k).any()  # u5 has one unrated item: one row
    as_spark = replace(model, config=replace(model.config, engine="spark"))
    pd.testing.assert_frame_equal(_recommend_all(as_spark, k), recommend_all(as_spark, k),
                                  rtol=0, atol=1e-12)  # fmt: skip


def test_hashed_kfold_holds_out_every_rating_once(spark):
    from engine.spark.evaluate import assign_folds
    from engine.spark.train import ratings_frame

    ratings = toy_ratings()
    inter = Interactions.from_frame(ratings)
    folds = assign_folds(ratings_frame(spark, inter), 3, 0).toPandas()
    assert len(folds) == len(ratings) and set(folds["fold"]) <= {0, 1, 2}
    assert set(zip(folds["u"], folds["i"], strict=True)) == set(
        zip(inter.rows(), inter.items, strict=True)
    )
    again = assign_folds(ratings_frame(spark, inter), 3, 0).toPandas()
    assert folds["fold"].tolist() == again["fold"].tolist()  # seeded: the same folds


def test_evaluate_spark_tests_what_engine_protocols_tests_and_writes_parquet(spark, tmp_path):
    from engine.protocols import make_splits
    from engine.spark.evaluate import evaluate_spark

    ratings = toy_ratings()  # timestamps 0..15: cut = ceil(15 - 0.25 * 15) = 12
    inter = Interactions.from_frame(ratings)
    frame = spark.createDataFrame(
        pd.DataFrame({"u": inter.rows().astype("int32"), "i": inter.items.astype("int32"),
                      "rating": inter.ratings, "timestamp": ratings["timestamp"].astype("int64")})
    )  # fmt: skip
    result = evaluate_spark(
        frame, (1, 5), tmp_path, SMALL, split="temporal", test_share=0.25, k=3, models=("SVD",)
    )  # only the SVD's tables: no comparators/ folder
    assert not (tmp_path / "comparators").exists()
    (split,) = make_splits(ratings, "temporal", test_share=0.25)
    assert split.test_start == 12.0
    predictions = pd.read_parquet(tmp_path / "predictions")
    tested = set(zip(inter.user_ids[predictions["u"]], inter.item_ids[predictions["i"]],
                     strict=True))  # fmt: skip
    expected = ratings[split.test]
    assert tested == set(zip(expected["user_id"], expected["item_id"], strict=True))
    rmse = np.sqrt(np.mean((predictions["prediction"] - predictions["rating"]) ** 2))
    table = result.fold_metrics
    assert table.query("metric == 'rmse'")["value"].iloc[0] == pytest.approx(rmse, abs=1e-12)
    assert (predictions["reason"] != "").tolist() == predictions["was_impossible"].tolist()
    lists = pd.read_parquet(tmp_path / "lists")
    assert lists.groupby(["fold", "u"], observed=True)["rank"].max().le(3).all()


@pytest.mark.parametrize("models", [("BaselineOnly",), ("SVD", "BaselineOnly")])
def test_baseline_comparator_is_fitted_by_spark_as_surprise_fits_it(spark, timed_data, models):
    """With the Spark engine, BaselineOnly's held-out predictions and ranking metrics equal the
    Surprise engine's (Surprise's ``BaselineOnly``) on the same splits, with no Surprise
    trainset built in this process. Evaluated with the SVD, it is the SVD fit's first stage:
    the baselines are fitted once per split, not twice."""
    import engine.model.comparators as comparators
    import engine.spark.baselines as spark_baselines

    protocol = EvaluationConfig(split="kfold", folds=2, seed=3, k=4, models=models)
    expected = evaluate(timed_data, replace(SMALL, engine="surprise"), protocol)
    fits = []
    real_fit = spark_baselines.fit_baselines
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(comparators, "surprise_trainset", pytest.fail)
        patch.setattr(spark_baselines, "fit_baselines", lambda r: fits.append(1) or real_fit(r))
        got = evaluate(timed_data, SMALL, protocol)
    assert len(fits) == protocol.folds
    times = got.fold_metrics.query("metric == 'fit_seconds'").pivot(
        index="fold", columns="model", values="value"
    )
    if "SVD" in models:  # the comparator's fit time is the shared stage's, within the SVD's
        assert (times["BaselineOnly"] > 0).all() and (times["BaselineOnly"] < times["SVD"]).all()
    got, expected = (
        replace(e, **{table: getattr(e, table).query("model == 'BaselineOnly'")
                      .reset_index(drop=True)
                      for table in ("predictions", "user_ranking", "top_lists")})
        for e in (got, expected)
    )  # fmt: skip
    mine, theirs = got.predictions, expected.predictions
    assert len(mine) == len(theirs) == len(timed_data.ratings)
    numbers = ["prediction", "raw_prediction"]
    np.testing.assert_allclose(mine[numbers], theirs[numbers], atol=1e-9)
    pd.testing.assert_frame_equal(mine.drop(columns=numbers), theirs.drop(columns=numbers))
    assert mine["was_impossible"].any()  # unknown users or items fall back as in Surprise
    np.testing.assert_allclose(got.user_ranking[list(RANKING_METRICS)],
                               expected.user_ranking[list(RANKING_METRICS)], atol=1e-9)  # fmt: skip
    pd.testing.assert_frame_equal(got.top_lists, expected.top_lists)
