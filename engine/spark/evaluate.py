r"""K-fold evaluation, top-N lists and per-user ranking metrics of the Spark engine, in Spark.

K-fold (``split="kfold"``): rating :math:`(u, i)` is in fold
:math:`\mathrm{pmod}(\mathrm{xxhash64}(u, i, \mathit{seed}), K)`: seeded, computed where
the rating lies, each rating held out once (not the permutation of
``engine.protocols.assign_folds``, which needs every rating on one machine; fold sizes
differ by chance, about :math:`\pm\sqrt{n/K}`). Temporal (``split="temporal"``):
``engine.protocols``' global cut at the last ``test_share`` of the time span; ratings
without a time take no part.

Each fold trains the Spark engine on the other folds (``engine.spark.train.fit_spark``),
then, in the executors:

* **out-of-fold predictions** :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`, a
  user or item absent from the training folds contributing nothing (``was_impossible``),
  clipped to the scale for RMSE and MAE (definitions in ``engine.metrics``);
* **top-N lists** for every user with a relevant held-out rating (rating ``>= threshold``)
  who has training ratings: all items known to the training folds scored, the user's
  training items excluded (``ALSModel.recommendForAllUsers`` does not exclude them),
  ``engine.recommend.top_k_indices`` (ties to the lower item index);
* **ranking metrics per user** by ``engine.metrics.ranking_scores`` on those lists, so they
  are the in-memory evaluation's (``engine.evaluate.held_out_ranking``) for the same model.

Users go to the executors in buckets (``u mod B``) with the item side broadcast (the
catalogue's ``b_i, q_i`` must fit in an executor; the user side need not fit anywhere).
Written as Parquet under ``out``: ``predictions/``, ``lists/``, ``user_ranking/`` (each
partitioned by ``fold``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from engine.metrics import RANKING_METRICS
from engine.model.config import ModelConfig

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.spark.train import SparkFit

#: Users per executor bucket, roughly, when ranking.
USERS_PER_BUCKET = 2_000
RANKING_SCHEMA = "u int, n_relevant long, items array<int>, " + ", ".join(
    f"{m} double" for m in RANKING_METRICS
)


@dataclass(frozen=True)
class SparkEvaluation:
    """What ``evaluate_spark`` computed.

    Attributes
    ----------
    fold_metrics
        Tidy ``fold, metric, value``: ``rmse, mae`` and the mean of each ranking metric
        over the fold's ranked users, ``n_users_ranked``, ``n_test``.
    out
        The folder holding ``predictions/``, ``lists/`` and ``user_ranking/`` (Parquet).
    """

    fold_metrics: pd.DataFrame
    out: Path

    def summary(self) -> pd.DataFrame:
        """Mean and standard deviation over folds, one row per metric."""
        return self.fold_metrics.groupby("metric")["value"].agg(["mean", "std"])


def assign_folds(ratings: DataFrame, folds: int, seed: int) -> DataFrame:
    """``ratings`` with ``fold = pmod(xxhash64(u, i, seed), folds)``."""
    from pyspark.sql import functions as F

    key = F.xxhash64(F.col("u"), F.col("i"), F.lit(int(seed)))
    return ratings.withColumn("fold", F.pmod(key, F.lit(int(folds))).cast("int"))


def predict(fit: SparkFit, pairs: DataFrame, scale: tuple[float, float]) -> DataFrame:
    """Return ``pairs`` (``u, i, ...``) with ``raw_prediction``, ``prediction``, ``was_impossible``.

    ``prediction`` is ``raw_prediction`` clipped to ``scale``.
    """
    from pyspark.sql import functions as F

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
    low, high = float(scale[0]), float(scale[1])
    return joined.select(
        *pairs.columns,
        raw.alias("raw_prediction"),
        F.least(F.greatest(raw, F.lit(low)), F.lit(high)).alias("prediction"),
        (~(known_u & known_i)).alias("was_impossible"),
    )


def rank_users(
    fit: SparkFit, train: DataFrame, test: DataFrame, k: int, threshold: float
) -> DataFrame:
    """Top-``k`` lists and ranking metrics of users with a relevant held-out rating.

    Returns ``RANKING_SCHEMA``: ``u, n_relevant, items`` (item indices, best first) and
    ``precision, recall, ndcg, map, hit_rate`` (``engine.metrics.ranking_scores``).
    """
    from pyspark.sql import functions as F

    item_table = fit.items.select("i", "bi", "q").toArrow()
    index = item_table.column("i").to_numpy().astype(np.int64)
    n_items = int(index.max()) + 1 if len(index) else 0
    bi = np.full(n_items, -np.inf)  # an index with no training rating is never recommended
    bi[index] = item_table.column("bi").to_numpy()
    k_factors = len(item_table.column("q")[0]) if len(index) else 0
    Q = np.zeros((n_items, k_factors))
    Q[index] = np.asarray(
        item_table.column("q").combine_chunks().flatten().to_numpy(zero_copy_only=False),
        dtype=np.float64,
    ).reshape(len(index), k_factors)
    shared = train.sparkSession.sparkContext.broadcast((fit.mu, bi, Q))
    relevant = (
        test.where(F.col("rating") >= F.lit(float(threshold)))
        .groupBy("u")
        .agg(F.collect_list("i").alias("relevant"))
    )
    rated = train.groupBy("u").agg(F.collect_list("i").alias("rated"))
    users = relevant.join(rated, "u").join(fit.users.select("u", "bu", "p"), "u")
    buckets = max(1, int(users.count()) // USERS_PER_BUCKET + 1)

    def rank_bucket(group: pd.DataFrame) -> pd.DataFrame:
        from engine.metrics import ranking_scores
        from engine.recommend import top_k_indices

        mu, bi_all, Q_all = shared.value
        P = np.asarray(np.stack(group["p"].to_numpy()), dtype=np.float64)
        scores = mu + group["bu"].to_numpy()[:, None] + bi_all[None, :] + P @ Q_all.T
        truth = np.zeros(scores.shape, dtype=bool)
        for row, (mine, good) in enumerate(zip(group["rated"], group["relevant"], strict=True)):
            scores[row, np.asarray(mine, dtype=np.int64)] = -np.inf
            good = np.asarray(good, dtype=np.int64)
            truth[row, good[good < len(bi_all)]] = True
        top = top_k_indices(scores, k)
        valid = np.isfinite(np.take_along_axis(scores, top, 1))
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

    return (
        users.withColumn("bucket", F.col("u") % F.lit(buckets))
        .groupBy("bucket")
        .applyInPandas(rank_bucket, RANKING_SCHEMA)
    )


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
    out: str | Path,
    config: ModelConfig | None = None,
    *,
    split: Literal["kfold", "temporal"] = "kfold",
    folds: int = 5,
    seed: int = 0,
    test_share: float = 0.2,
    k: int = 10,
    threshold: float = 4.0,
) -> SparkEvaluation:
    """Evaluate the Spark engine on ``u, i, rating`` (``timestamp`` for ``temporal``).

    ``kfold``: the hashed folds of the module docstring. ``temporal``: one split (``fold``
    0) training on every rating with ``timestamp < cut`` and testing the rest of the timed
    ratings, the cut of ``engine.protocols`` (``temporal_cut``). Writes ``predictions/``
    (``u, i, rating, fold, raw_prediction, prediction, was_impossible``), ``lists/``
    (``u, fold, rank, i``) and ``user_ranking/`` (``u, fold, n_relevant`` and the ranking
    metrics) under ``out`` as Parquet.
    """
    from pyspark.sql import functions as F

    config = config or ModelConfig(engine="spark")
    out = Path(out)
    rows: list[tuple[int, str, float]] = []
    if split == "temporal":
        timed = ratings.where(F.col("timestamp").isNotNull())
        cut = temporal_cut(timed, test_share)
        train = timed.where(F.col("timestamp") < cut).select("u", "i", "rating").cache()
        test = timed.where(F.col("timestamp") >= cut).select("u", "i", "rating")
        rows += _evaluate_split(0, train, test, config, scale, out, k, threshold)
        train.unpersist()
        return SparkEvaluation(pd.DataFrame(rows, columns=["fold", "metric", "value"]), out)
    data = assign_folds(ratings.select("u", "i", "rating"), folds, seed).cache()
    for fold in range(folds):
        train = data.where(F.col("fold") != fold).drop("fold").cache()
        test = data.where(F.col("fold") == fold).drop("fold")  # the folder names the fold
        rows += _evaluate_split(fold, train, test, config, scale, out, k, threshold)
        train.unpersist()
    data.unpersist()
    return SparkEvaluation(pd.DataFrame(rows, columns=["fold", "metric", "value"]), out)


def _evaluate_split(
    fold: int,
    train: DataFrame,
    test: DataFrame,
    config: ModelConfig,
    scale: tuple[float, float],
    out: Path,
    k: int,
    threshold: float,
) -> list[tuple[int, str, float]]:
    """Fit on ``train``, write this split's Parquet parts, return its metric rows."""
    from pyspark.sql import functions as F

    from engine.spark.train import fit_spark

    fit = fit_spark(train, config)
    predicted = predict(fit, test, scale)
    predicted.write.mode("overwrite").parquet(str(out / "predictions" / f"fold={fold}"))
    accuracy = (
        predicted.agg(
            F.sqrt(F.avg((F.col("prediction") - F.col("rating")) ** 2)).alias("rmse"),
            F.avg(F.abs(F.col("prediction") - F.col("rating"))).alias("mae"),
            F.count(F.lit(1)).alias("n_test"),
        )
        .first()
        .asDict()
    )
    ranked = rank_users(fit, train, test, k, threshold).cache()
    ranked.drop("items").write.mode("overwrite").parquet(str(out / "user_ranking" / f"fold={fold}"))
    ranked.select("u", F.posexplode("items").alias("rank", "i")).select(
        "u", (F.col("rank") + 1).alias("rank"), "i"
    ).write.mode("overwrite").parquet(str(out / "lists" / f"fold={fold}"))
    means = ranked.agg(
        *(F.avg(m).alias(m) for m in RANKING_METRICS), F.count(F.lit(1)).alias("n")
    ).first()
    ranked.unpersist()
    rows = [(fold, name, float(value)) for name, value in accuracy.items()]
    rows += [(fold, m, float("nan") if means[m] is None else float(means[m]))
             for m in RANKING_METRICS]  # fmt: skip
    rows.append((fold, "n_users_ranked", float(means["n"])))
    return rows
