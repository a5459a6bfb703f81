"""Evaluation in Spark: predictions, top-N lists with rated items excluded and per-user
ranking metrics equal the in-memory evaluation of the same model; Parquet out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.evaluate import held_out_predictions, held_out_ranking
from engine.metrics import RANKING_METRICS
from engine.model import ModelConfig
from engine.model.interactions import Interactions
from tests.conftest import synth_ratings
from tests.test_spark_support import spark_fixture, toy_ratings  # noqa: F401  (fixture)

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]
SMALL = ModelConfig(engine="spark", n_factors=3, n_epochs=3, seed=2)


def test_ranking_in_executors_equals_the_in_memory_evaluation(spark):
    from engine.spark.evaluate import assign_folds, predict, rank_users
    from engine.spark.train import fit_spark, model_from_fit, ratings_frame

    ratings = synth_ratings(50, 30, 1000, seed=4)
    everything = Interactions.from_frame(ratings)
    frame = assign_folds(ratings_frame(spark, everything), 2, 0).cache()
    folds = frame.toPandas().sort_values(["u", "i"])  # Interactions order = ratings order
    fold = folds["fold"].to_numpy()
    assert set(fold) == {0, 1} and len(fold) == len(ratings)
    train_df, test_df = frame.where("fold = 1").drop("fold"), frame.where("fold = 0").drop("fold")
    train, test = ratings[fold == 1], ratings[fold == 0]
    fit = fit_spark(train_df, SMALL)
    inter = Interactions.from_frame(train, everything.item_ids)
    assert np.array_equal(inter.user_ids, everything.user_ids)  # same user indices
    model = model_from_fit(fit, inter, SMALL, (1, 5))

    expected, _, _ = held_out_predictions(model, test, 0)
    got = predict(fit, test_df, (1, 5)).toPandas().sort_values(["u", "i"])
    np.testing.assert_allclose(got["raw_prediction"], expected["raw_prediction"], atol=1e-12)
    assert got["was_impossible"].tolist() == expected["was_impossible"].tolist()

    per_user, lists, _ = held_out_ranking(model, test, 5, 4.0, 2**26)
    ranked = rank_users(fit, train_df, test_df, 5, 4.0).toPandas()
    ranked["user_id"] = everything.user_ids[ranked["u"]]
    ranked = ranked.set_index("user_id").loc[per_user["user_id"]]
    assert ranked["n_relevant"].tolist() == per_user["n_relevant"].tolist()
    for metric in RANKING_METRICS:
        np.testing.assert_allclose(ranked[metric], per_user[metric], rtol=0, atol=1e-12)
    mine = [(u, r + 1, everything.item_ids[i]) for u, row in ranked["items"].items()
            for r, i in enumerate(row)]  # fmt: skip
    assert mine == list(lists[["user_id", "rank", "item_id"]].itertuples(index=False, name=None))
    for user, row in ranked["items"].items():  # no list holds an item the user trained on
        trained = set(train.loc[train["user_id"] == user, "item_id"])
        assert not trained & set(everything.item_ids[row])


def test_kfold_in_spark_holds_out_every_rating_once_and_writes_parquet(spark, tmp_path):
    from engine.spark.evaluate import evaluate_spark
    from engine.spark.train import ratings_frame

    ratings = toy_ratings()
    inter = Interactions.from_frame(ratings)
    result = evaluate_spark(ratings_frame(spark, inter), (1, 5), tmp_path, SMALL, folds=2, k=3)
    predictions = pd.read_parquet(tmp_path / "predictions")
    assert len(predictions) == len(ratings)
    assert set(zip(predictions["u"], predictions["i"], strict=True)) == set(
        zip(inter.rows(), inter.items, strict=True)
    )
    for fold, rows in predictions.groupby("fold", observed=True):
        rmse = np.sqrt(np.mean((rows["prediction"] - rows["rating"]) ** 2))
        table = result.fold_metrics
        value = table[(table["fold"] == int(fold)) & (table["metric"] == "rmse")]["value"]
        assert float(value.iloc[0]) == pytest.approx(rmse, abs=1e-12)
    lists = pd.read_parquet(tmp_path / "lists")
    assert lists.groupby(["fold", "u"], observed=True)["rank"].max().le(3).all()


def test_temporal_split_in_spark_tests_what_engine_protocols_tests(spark, tmp_path):
    from engine.protocols import make_splits
    from engine.spark.evaluate import evaluate_spark

    ratings = toy_ratings()  # timestamps 0..15: cut = ceil(15 - 0.25 * 15) = 12
    inter = Interactions.from_frame(ratings)
    frame = spark.createDataFrame(
        pd.DataFrame({"u": inter.rows().astype("int32"), "i": inter.items.astype("int32"),
                      "rating": inter.ratings, "timestamp": ratings["timestamp"].astype("int64")})
    )  # fmt: skip
    evaluate_spark(frame, (1, 5), tmp_path, SMALL, split="temporal", test_share=0.25, k=3)
    (split,) = make_splits(ratings, "temporal", test_share=0.25)
    assert split.test_start == 12.0
    predictions = pd.read_parquet(tmp_path / "predictions")
    tested = set(zip(inter.user_ids[predictions["u"]], inter.item_ids[predictions["i"]],
                     strict=True))  # fmt: skip
    expected = ratings[split.test]
    assert tested == set(zip(expected["user_id"], expected["item_id"], strict=True))
