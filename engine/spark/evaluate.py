r"""Evaluation of the Spark engine in Spark: held-out predictions, top-N lists, ranking metrics.

Two entry points share ``fit_spark``, ``predict`` and ``rank_users``:

* ``evaluate_split_in_spark``: one split of ``engine.protocols.make_splits`` (the same
  K-fold permutation, temporal cut, last-N or rolling windows as the Surprise engine), for
  ``engine.evaluate.evaluate``'s SVD slot when ``ModelConfig.engine == "spark"``; returns
  the tables of ``engine.evaluate.held_out_predictions`` and ``held_out_ranking``;
* ``evaluate_spark``: ratings already in Spark (data beyond one driver), hashed K-fold
  (``split="kfold"``): rating :math:`(u, i)` is in fold
  :math:`\mathrm{pmod}(\mathrm{xxhash64}(u, i, \mathit{seed}), K)`: seeded, computed where
  the rating lies, each rating held out once (not the permutation of
  ``engine.protocols.assign_folds``, which needs every rating on one machine; fold sizes
  differ by chance, about :math:`\pm\sqrt{n/K}`), or the temporal cut
  (``split="temporal"``: ``engine.protocols``' global cut at the last ``test_share`` of the
  time span; ratings without a time take no part). Written as Parquet.

Each split trains the Spark engine on its training part (``engine.spark.train.fit_spark``),
then, in the executors:

* **held-out predictions** :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`, a
  user or item with no training rating contributing nothing (``was_impossible``, with
  ``engine.evaluate``'s ``reason``), clipped to the scale for RMSE and MAE (definitions in
  ``engine.metrics``);
* **top-N lists** for every user with a relevant held-out rating (rating ``>= threshold``)
  who has training ratings: all items with a training rating scored, the user's training
  items excluded (``ALSModel.recommendForAllUsers`` does not exclude them),
  ``engine.recommend.top_k_indices`` (ties to the lower item index);
* **ranking metrics per user** by ``engine.metrics.ranking_scores`` on those lists, so they
  are the in-memory evaluation's (``engine.evaluate.held_out_ranking``) for the same model.

``evaluate_spark`` evaluates the comparators BaselineOnly and Popularity on the same splits
(``engine.spark.comparators``), writing their tables under ``comparators/``.

Users go to the executors in buckets (``engine.spark.recommend.by_bucket``) with the item
side broadcast (the catalogue's ``b_i, q_i`` must fit in an executor; the user side need
not fit anywhere). Only the held-out predictions and the users x k lists come back.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from engine.errors import EngineError
from engine.evaluate import (
    SplitResult,
    empty_ranking,
    list_rows,
    prediction_frame,
    ranked_users,
    user_ranking_rows,
)
from engine.metrics import RANKING_METRICS
from engine.model.config import ModelConfig
from engine.model.interactions import Interactions
from engine.spark.comparators import KEPT_COMPARATORS
from engine.spark.remote import HadoopPath, location

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.spark.train import SparkFit

#: The models ``evaluate_spark`` evaluates where the ratings lie, in report order.
KEPT_MODELS = ("SVD", *KEPT_COMPARATORS)
#: The folder under ``SparkEvaluation.out`` holding the comparators' tables.
COMPARATORS_FOLDER = "comparators"
RANKING_SCHEMA = "u int, n_relevant long, items array<int>, " + ", ".join(
    f"{m} double" for m in RANKING_METRICS
)


@dataclass(frozen=True)
class SparkEvaluation:
    """What ``evaluate_spark`` computed.

    Attributes
    ----------
    fold_metrics
        Tidy ``model, fold, metric, value``: ``rmse, mae, n_test`` (models that predict
        ratings), the mean of each ranking metric over the fold's ranked users,
        ``coverage`` (share of the catalogue in any of the fold's lists, as
        ``engine.evaluate``'s), ``n_users_ranked``.
    out
        The folder holding the SVD's ``predictions/``, ``lists/`` and ``user_ranking/``
        and the comparators' under ``comparators/`` (Parquet, ``table_path``): a local
        path, or a URI (``engine.spark.remote``) every executor reaches.
    threshold
        The relevance threshold of the lists and ranking metrics (``None``: not recorded).
    split, folds, seed, test_share, k, models
        ``evaluate_spark``'s settings (``folds`` 1 for ``temporal``).
    test_start
        ``temporal``: the cut (epoch seconds; tested from then on); ``None`` for ``kfold``.
    """

    fold_metrics: pd.DataFrame
    out: Path | HadoopPath
    threshold: float | None = None
    split: Literal["kfold", "temporal"] = "kfold"
    folds: int = 5
    seed: int = 0
    test_share: float = 0.2
    k: int = 10
    test_start: int | None = None
    models: tuple[str, ...] = ("SVD",)

    def summary(self) -> pd.DataFrame:
        """Mean and standard deviation over folds, one row per model and metric."""
        return self.fold_metrics.groupby(["model", "metric"], sort=False)["value"].agg(
            ["mean", "std"]
        )


def assign_folds(ratings: DataFrame, folds: int, seed: int) -> DataFrame:
    """``ratings`` with ``fold = pmod(xxhash64(u, i, seed), folds)``."""
    from pyspark.sql import functions as F

    key = F.xxhash64(F.col("u"), F.col("i"), F.lit(int(seed)))
    return ratings.withColumn("fold", F.pmod(key, F.lit(int(folds))).cast("int"))


def predict(fit: SparkFit, pairs: DataFrame, scale: tuple[float, float]) -> DataFrame:
    r"""Return ``pairs`` with ``raw_prediction, prediction, was_impossible, reason``.

    :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`; a user or item with no training
    rating (absent from ``fit``) contributes nothing, so the fallback is ``mu + b_i``,
    ``mu + b_u`` or ``mu`` and ``reason`` is ``engine.evaluate``'s ``REASON_USER``,
    ``REASON_ITEM`` or ``REASON_BOTH`` (``""`` when both are known), as in
    ``held_out_predictions``. ``prediction`` is ``raw_prediction`` clipped to ``scale``.
    """
    from pyspark.sql import functions as F

    from engine.evaluate import REASON_BOTH, REASON_ITEM, REASON_USER

    items = fit.items.select("i", "bi", F.col("q").cast("array<double>").alias("q"))
    joined = pairs.join(fit.users.select("u", "bu", "p"), "u", "left").join(items, "i", "left")
    dot = F.aggregate(F.zip_with("p", "q", lambda a, b: a * b), F.lit(0.0), lambda s, x: s + x)
    known_u, known_i = F.col("bu").isNotNull(), F.col("bi").isNotNull()
    raw = (
        F.lit(fit.mu)
        + F.coalesce(F.col("bu"), F.lit(0.0))
        + F.coalesce(F.col("bi"), F.lit(0.0))
        + F.when(known_u & known_i, dot).otherwise(F.lit(0.0))
    )
    reason = (
        F.when(~known_u & ~known_i, F.lit(REASON_BOTH))
        .when(~known_u, F.lit(REASON_USER))
        .when(~known_i, F.lit(REASON_ITEM))
        .otherwise(F.lit(""))
    )
    low, high = float(scale[0]), float(scale[1])
    return joined.select(
        *pairs.columns,
        raw.alias("raw_prediction"),
        F.least(F.greatest(raw, F.lit(low)), F.lit(high)).alias("prediction"),
        (~(known_u & known_i)).alias("was_impossible"),
        reason.alias("reason"),
    )


def ranking_candidates(train: DataFrame, test: DataFrame, threshold: float) -> DataFrame:
    """``u, relevant, rated``: the users every model of a split ranks, with their items.

    Every user with a held-out rating ``>= threshold`` in ``test`` and a rating in
    ``train`` (``engine.evaluate.ranked_users``): the relevant held-out item indices and
    the training ones (excluded from the user's list).
    """
    from pyspark.sql import functions as F

    relevant = (
        test.where(F.col("rating") >= F.lit(float(threshold)))
        .groupBy("u")
        .agg(F.collect_list("i").alias("relevant"))
    )
    rated = train.groupBy("u").agg(F.collect_list("i").alias("rated"))
    return relevant.join(rated, "u")


def rank_users(
    fit: SparkFit, candidates: DataFrame, k: int, n_items: int | None = None
) -> DataFrame:
    """Top-``k`` lists and ranking metrics of ``ranking_candidates``' users by ``fit``.

    Candidates: the ``n_items`` item indices (default: up to the highest trained index)
    less the user's training items and the items with no training rating, scored by
    ``engine.spark.recommend.bucket_scores`` in the executors (item side broadcast).
    Returns ``RANKING_SCHEMA``: ``u, n_relevant, items`` (item indices, best first) and
    ``precision, recall, ndcg, map, hit_rate`` (``engine.metrics.ranking_scores``), as
    ``engine.evaluate.held_out_ranking`` computes them for the same model.
    """
    from engine.spark.recommend import broadcast_items, bucket_scores, by_bucket, item_side

    bi, Q = item_side(fit, n_items)
    shared = broadcast_items(candidates.sparkSession, fit.mu, bi, Q)
    users = candidates.join(fit.users.select("u", "bu", "p"), "u")

    def rank_bucket(group: pd.DataFrame) -> pd.DataFrame:
        from engine.recommend import top_k_indices

        scores = bucket_scores(shared.value, group)
        top = top_k_indices(scores, k)
        return ranking_rows(group, top, np.isfinite(np.take_along_axis(scores, top, 1)), k,
                            scores.shape[1])  # fmt: skip

    return (
        by_bucket(users, int(users.count()), len(bi))
        .groupBy("bucket")
        .applyInPandas(rank_bucket, RANKING_SCHEMA)
    )


def ranking_rows(
    group: pd.DataFrame, top: np.ndarray, valid: np.ndarray, k: int, n_items: int
) -> pd.DataFrame:
    """``RANKING_SCHEMA`` rows of a bucket's users from their lists ``top`` (``valid`` slots).

    ``group`` holds ``u`` and ``relevant`` (held-out relevant item indices) per user.
    """
    from engine.metrics import ranking_scores

    truth = np.zeros((len(group), n_items), dtype=bool)
    for row, good in enumerate(group["relevant"]):
        good = np.asarray(good, dtype=np.int64)
        truth[row, good[(good >= 0) & (good < n_items)]] = True
    n_relevant = group["relevant"].map(len).to_numpy()
    metrics = ranking_scores(np.take_along_axis(truth, top, 1) & valid, n_relevant, k)
    return pd.DataFrame(
        {
            "u": group["u"].to_numpy(np.int32),
            "n_relevant": n_relevant.astype(np.int64),
            "items": [t[v].astype(np.int32) for t, v in zip(top, valid, strict=True)],
            **{m: metrics[m].to_numpy() for m in RANKING_METRICS},
        }
    )


@dataclass(frozen=True)
class SparkSplitResult(SplitResult):
    """``engine.evaluate.SplitResult`` of the Spark engine's SVD, with its ``fit`` (in Spark).

    ``fit`` can be collected with ``engine.spark.train.model_from_fit`` (the tests do,
    to check every number against the in-memory evaluation of that model).
    """

    fit: SparkFit | None = None


def evaluate_split_in_spark(
    train: pd.DataFrame | None,
    test: pd.DataFrame,
    fold: int,
    scale: tuple[float, float],
    catalogue: np.ndarray,
    config: ModelConfig,
    k: int,
    threshold: float,
    interactions: Interactions | None = None,
) -> SparkSplitResult:
    """Train the Spark engine on ``train`` and evaluate it on ``test``, all in Spark.

    ``train``/``test`` are canonical ratings (``user_id, item_id, rating``) of one split
    of ``engine.protocols.make_splits``; ``catalogue`` is the item axis (every item of the
    data). The training ratings go to Spark with ``Interactions`` indices
    (``Interactions.from_frame(train, catalogue)``, as ``train_spark`` indexes them), the
    model is fitted by ``fit_spark`` (``fit_seconds``), the held-out pairs are predicted by
    ``predict`` and the users ranked by ``rank_users`` in the executors. Only the held-out
    predictions and the users x ``k`` lists and metrics come back (Arrow). The result has
    exactly the tables (columns, dtypes, row order) of ``engine.evaluate``'s
    ``held_out_predictions`` and ``held_out_ranking`` on the collected model.
    ``interactions``: that indexing of ``train`` if already built; ``train`` is then not
    read (it may be ``None``).
    """
    from engine.spark.session import quiet_pandas_warning, spark_session
    from engine.spark.train import fit_spark, ratings_frame

    quiet_pandas_warning()
    spark = spark_session()
    inter = interactions
    if inter is None:
        inter = Interactions.from_frame(train, item_ids=catalogue)
    start = time.perf_counter()
    train_frame = ratings_frame(spark, inter)
    fit = fit_spark(train_frame, config)
    fit_seconds = time.perf_counter() - start
    pairs = _pairs_frame(spark, inter, test)
    frame, fold_rmse, fold_mae = _collect_predictions(predict(fit, pairs, scale), test, fold)
    relevant = test[test["rating"] >= threshold]
    users = ranked_users(inter, relevant)
    if len(users) == 0:
        per_user, lists, coverage = empty_ranking()
    else:
        candidates = ranking_candidates(train_frame, pairs, threshold)
        ranked = rank_users(fit, candidates, k, inter.n_items)
        per_user, lists, coverage = _collect_ranking(ranked, inter, users)
    return SparkSplitResult(
        frame, fold_rmse, fold_mae, per_user, lists, coverage, fit_seconds, fit=fit
    )


def _pairs_frame(spark: SparkSession, inter: Interactions, test: pd.DataFrame) -> DataFrame:
    """Held-out ratings as ``row, u, i, rating`` (``inter``'s indices, -1 if unknown)."""
    frame = pd.DataFrame(
        {
            "row": np.arange(len(test), dtype=np.int64),
            "u": inter.user_index(test["user_id"].to_numpy()).astype(np.int32),
            "i": inter.item_index(test["item_id"].to_numpy()).astype(np.int32),
            "rating": test["rating"].to_numpy(np.float64),
        }
    )
    from engine.spark.session import from_pandas

    return from_pandas(spark, frame, "row long, u int, i int, rating double")


def _collect_predictions(
    predicted: DataFrame, test: pd.DataFrame, fold: int
) -> tuple[pd.DataFrame, float, float]:
    """Bring ``predict``'s output back in ``test``'s row order as ``held_out_predictions``'."""
    table = predicted.select("row", "raw_prediction", "prediction", "reason").toArrow()
    order = np.argsort(table.column("row").to_numpy(), kind="stable")
    raw = table.column("raw_prediction").to_numpy()[order]
    clipped = table.column("prediction").to_numpy()[order]
    # a few distinct reasons: one str each, not one per row (nor a fixed-width unicode
    # array of the longest, 160 bytes a row)
    reasons = table.column("reason").combine_chunks().dictionary_encode()
    codes = reasons.indices.to_numpy(zero_copy_only=False)
    reason = np.asarray(reasons.dictionary.to_pylist(), dtype=object)[codes][order]
    return prediction_frame("SVD", fold, test, raw, clipped, reason)


def _collect_ranking(
    ranked: DataFrame, inter: Interactions, users: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """``held_out_ranking``'s three results from ``rank_users``' rows, users in ``users`` order."""
    table = ranked.toArrow()
    position = pd.Index(table.column("u").to_numpy().astype(np.int64)).get_indexer(users)
    if (position < 0).any():
        raise EngineError("Spark ranked fewer users than have a relevant held-out rating.")
    every_list = table.column("items").to_pylist()
    chosen = [np.asarray(every_list[j], dtype=np.int64) for j in position]
    lengths = np.array([len(items) for items in chosen])
    valid = np.arange(lengths.max())[None, :] < lengths[:, None]  # best-first prefixes
    top = np.zeros(valid.shape, dtype=np.int64)
    top[valid] = np.concatenate(chosen)
    scores = pd.DataFrame({m: table.column(m).to_numpy()[position] for m in RANKING_METRICS})
    n_relevant = table.column("n_relevant").to_numpy()[position]
    ids = inter.user_ids[users]
    per_user = user_ranking_rows(ids, n_relevant, scores)
    lists = list_rows(ids, inter.item_ids[top], valid)
    coverage = len(np.unique(top[valid])) / inter.n_items
    return per_user, lists, float(coverage)


def temporal_cut(ratings: DataFrame, test_share: float) -> int:
    """``ceil(t_max - test_share * (t_max - t_min))`` over the timed ratings (``engine.protocols``).

    Raises
    ------
    DataError
        No rating has a timestamp.
    """
    from pyspark.sql import functions as F

    from engine.errors import DataError

    t_min, t_max = ratings.agg(F.min("timestamp"), F.max("timestamp")).first()
    if t_min is None:
        raise DataError(
            "The temporal split needs a time for each rating, and none has one: load a "
            "timestamp column or use the kfold split."
        )
    return math.ceil(round(float(t_max) - test_share * (float(t_max) - float(t_min)), 6))


def evaluate_spark(
    ratings: DataFrame,
    scale: tuple[float, float],
    out: str | Path | HadoopPath,
    config: ModelConfig | None = None,
    *,
    split: Literal["kfold", "temporal"] = "kfold",
    folds: int = 5,
    seed: int = 0,
    test_share: float = 0.2,
    k: int = 10,
    threshold: float = 4.0,
    models: tuple[str, ...] = KEPT_MODELS,
) -> SparkEvaluation:
    """Evaluate the Spark engine and its comparators on ``u, i, rating`` (``timestamp``: temporal).

    ``kfold``: the hashed folds of the module docstring. ``temporal``: one split (``fold``
    0) training on every rating with ``timestamp < cut`` and testing the rest of the timed
    ratings, the cut of ``engine.protocols`` (``temporal_cut``). ``models``: the SVD and
    any of ``engine.spark.comparators.KEPT_COMPARATORS``, evaluated on the same splits.
    Writes under ``out`` as Parquet (``table_path``): ``predictions/`` (``u, i, rating,
    fold, raw_prediction, prediction, was_impossible, reason``), ``lists/`` (``u, fold,
    rank, i``) and ``user_ranking/`` (``u, fold, n_relevant`` and the ranking metrics) of the
    SVD, and the same tables of each comparator under ``comparators/`` (with ``model``;
    Popularity has no predictions).

    Raises
    ------
    ConfigError
        ``models`` names a model this route does not run, or leaves out the SVD.
    """
    from pyspark.sql import functions as F

    config = config or ModelConfig(engine="spark")
    models = _check_models(models)
    out = location(out)
    rows: list[tuple[str, int, str, float]] = []
    settings = {"threshold": float(threshold), "split": split, "seed": seed,
                "test_share": test_share, "k": k, "models": models}  # fmt: skip
    n_items = int(ratings.select(F.max("i")).first()[0]) + 1  # the catalogue (indices 0..n-1)
    split_settings = (config, scale, out, k, threshold, n_items, models)
    if split == "temporal":
        timed = ratings.where(F.col("timestamp").isNotNull())
        cut = temporal_cut(timed, test_share)
        train = timed.where(F.col("timestamp") < cut).select("u", "i", "rating").cache()
        test = timed.where(F.col("timestamp") >= cut).select("u", "i", "rating")
        rows += _evaluate_split(0, train, test, *split_settings)
        train.unpersist()
        return SparkEvaluation(_fold_table(rows), out, folds=1, test_start=cut, **settings)
    data = assign_folds(ratings.select("u", "i", "rating"), folds, seed).cache()
    for fold in range(folds):
        train = data.where(F.col("fold") != fold).drop("fold").cache()
        test = data.where(F.col("fold") == fold).drop("fold")  # the folder names the fold
        rows += _evaluate_split(fold, train, test, *split_settings)
        train.unpersist()
    data.unpersist()
    return SparkEvaluation(_fold_table(rows), out, folds=folds, **settings)


def _check_models(models: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    from engine.errors import ConfigError

    models = tuple(models)
    unknown = [m for m in models if m not in KEPT_MODELS]
    if unknown or "SVD" not in models:
        raise ConfigError(
            f"Where the ratings lie the models are {', '.join(KEPT_MODELS)}, SVD always, not "
            f"{', '.join(unknown or models)}: KNNBaseline's item-item similarities need every "
            "rating in one process."
        )
    return tuple(m for m in KEPT_MODELS if m in models)


def table_path(
    out: Path | HadoopPath, table: str, fold: int, model: str = "SVD"
) -> Path | HadoopPath:
    """Where ``evaluate_spark`` writes one model's ``table`` of one fold under ``out``.

    The SVD's: ``out/<table>/fold=<fold>``; a comparator's:
    ``out/comparators/<table>/model=<model>/fold=<fold>`` (read back with ``fold`` and
    ``model`` as columns).
    """
    if model == "SVD":
        return out / table / f"fold={fold}"
    return out / COMPARATORS_FOLDER / table / f"model={model}" / f"fold={fold}"


def _fold_table(rows: list[tuple[str, int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["model", "fold", "metric", "value"])


def _evaluate_split(
    fold: int,
    train: DataFrame,
    test: DataFrame,
    config: ModelConfig,
    scale: tuple[float, float],
    out: Path | HadoopPath,
    k: int,
    threshold: float,
    n_items: int,
    models: tuple[str, ...],
) -> list[tuple[str, int, str, float]]:
    """Fit on ``train``, write this split's Parquet parts of each model, return their metric rows.

    ``n_items``: the catalogue's size (``coverage``'s denominator). The users to rank are
    found once for every model.
    """
    from engine.spark.comparators import (
        baseline_fit,
        baseline_order,
        popularity_order,
        rank_by_order,
    )
    from engine.spark.train import fit_spark

    fit = fit_spark(train, config)
    candidates = ranking_candidates(train, test, threshold).cache()
    rows = _model_rows("SVD", fold, out, n_items, predict(fit, test, scale),
                       rank_users(fit, candidates, k))  # fmt: skip
    if "BaselineOnly" in models:
        ranked = rank_by_order(baseline_order(fit, n_items), candidates, k, n_items)
        rows += _model_rows("BaselineOnly", fold, out, n_items,
                            predict(baseline_fit(fit), test, scale), ranked)  # fmt: skip
    if "Popularity" in models:
        ranked = rank_by_order(popularity_order(train, n_items), candidates, k, n_items)
        rows += _model_rows("Popularity", fold, out, n_items, None, ranked)
    candidates.unpersist()
    return rows


def _model_rows(
    model: str,
    fold: int,
    out: Path | HadoopPath,
    n_items: int,
    predicted: DataFrame | None,
    ranked: DataFrame,
) -> list[tuple[str, int, str, float]]:
    """Write one model's tables of one fold (``table_path``) and return its metric rows.

    ``predicted``: its held-out predictions (``predict``), ``None`` for a model that
    predicts no rating; ``ranked``: its ``RANKING_SCHEMA`` rows.
    """
    from pyspark.sql import functions as F

    rows: list[tuple[str, int, str, float]] = []
    if predicted is not None:
        predicted.write.mode("overwrite").parquet(str(table_path(out, "predictions", fold, model)))
        accuracy = (
            predicted.agg(
                F.sqrt(F.avg((F.col("prediction") - F.col("rating")) ** 2)).alias("rmse"),
                F.avg(F.abs(F.col("prediction") - F.col("rating"))).alias("mae"),
                F.count(F.lit(1)).alias("n_test"),
            )
            .first()
            .asDict()
        )
        rows += [(model, fold, name, float(value)) for name, value in accuracy.items()]
    ranked = ranked.cache()
    ranked.drop("items").write.mode("overwrite").parquet(
        str(table_path(out, "user_ranking", fold, model))
    )
    ranked.select("u", F.posexplode("items").alias("rank", "i")).select(
        "u", (F.col("rank") + 1).alias("rank"), "i"
    ).write.mode("overwrite").parquet(str(table_path(out, "lists", fold, model)))
    means = ranked.agg(
        *(F.avg(m).alias(m) for m in RANKING_METRICS), F.count(F.lit(1)).alias("n")
    ).first()
    listed = ranked.select(F.explode("items").alias("i")).agg(F.countDistinct("i")).first()[0]
    ranked.unpersist()
    rows += [(model, fold, m, float("nan") if means[m] is None else float(means[m]))
             for m in RANKING_METRICS]  # fmt: skip
    rows.append((model, fold, "coverage", listed / n_items if means["n"] else float("nan")))
    rows.append((model, fold, "n_users_ranked", float(means["n"])))
    return rows
