r"""Top-N lists of every user computed in the Spark executors, equal to ``recommend_all``.

A user's score for item :math:`i` is the model's
:math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`, computed as ``TrainedModel.score_block``
does (same operations, same order); the items the user rated in training get
:math:`-\infty` (never recommended) and ``engine.recommend.top_k_indices`` picks the best
``k`` (ties to the lower item index). Users travel to the executors in buckets
(:math:`u \bmod B`, ``by_bucket``) with their ``b_u``, ``p_u`` and rated items; the item
side (:math:`\mu`, ``b_i``, ``Q``) is broadcast, so it must fit in an executor while the
user side need not fit in any single one. Only the lists (users x k) come back to the
driver, through Arrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.model.svd import TrainedModel
from engine.spark.session import from_pandas

if TYPE_CHECKING:
    from pyspark.broadcast import Broadcast
    from pyspark.sql import DataFrame, SparkSession

    from engine.spark.train import SparkFit

#: Users per executor bucket, roughly (one dense ``users x items`` score block each).
USERS_PER_BUCKET = 2_000
#: What a bucket returns: the user, the chosen item indices (best first) and their scores
#: (``-inf`` for a slot beyond the user's unrated items).
TOP_SCHEMA = "u int, items array<int>, raw array<double>"


def broadcast_items(
    spark: SparkSession, mu: float, bi: np.ndarray, Q: np.ndarray
) -> Broadcast[tuple[float, np.ndarray, np.ndarray]]:
    """Ship the item side ``(mu, b_i, Q)`` to every executor once."""
    return spark.sparkContext.broadcast(
        (float(mu), np.asarray(bi, np.float64), np.asarray(Q, np.float64))
    )


def bucket_scores(items: tuple[float, np.ndarray, np.ndarray], group: pd.DataFrame) -> np.ndarray:
    """Scores ``mu + b_u + b_i + P Q^T`` of a bucket's users, ``-inf`` on their rated items.

    ``group`` holds ``bu``, ``p`` (arrays) and ``rated`` (item indices) per user;
    ``items`` is the broadcast ``(mu, b_i, Q)``.
    """
    mu, bi, Q = items
    P = np.asarray(np.stack(group["p"].to_numpy()), dtype=np.float64).reshape(len(group), -1)
    scores = mu + group["bu"].to_numpy(np.float64)[:, None] + bi[None, :] + P @ Q.T
    for row, mine in enumerate(group["rated"]):
        scores[row, np.asarray(mine, dtype=np.int64)] = -np.inf
    return scores


def item_side(fit: SparkFit, n_items: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Collect ``(b_i, Q)`` over item indices ``0..n_items-1``; ``b_i = -inf`` if untrained.

    ``-inf`` keeps an item without a training rating out of every list (as
    ``held_out_ranking`` does); its ``q_i`` is 0.
    """
    table = fit.items.select("i", "bi", "q").toArrow()
    index = table.column("i").to_numpy().astype(np.int64)
    if n_items is None:
        n_items = int(index.max()) + 1 if len(index) else 0
    bi = np.full(n_items, -np.inf)
    bi[index] = table.column("bi").to_numpy()
    k_factors = len(table.column("q")[0]) if len(index) else 0
    Q = np.zeros((n_items, k_factors))
    values = table.column("q").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    Q[index] = np.asarray(values, dtype=np.float64).reshape(len(index), k_factors)
    return bi, Q


def fit_top_lists(fit: SparkFit, ratings: DataFrame, k: int) -> pd.DataFrame:
    """Every rated user's top-``k`` of ``fit``, their ``ratings`` (``u, i``) excluded.

    Scored in the executors by ``bucket_scores`` (the item side broadcast, ``item_side``:
    items without a training rating are never listed), ties to the lower item index. For
    ratings that never leave Spark; a model already in memory goes through
    ``recommend_all_in_spark``. Returns ``u, rank, i, raw_prediction`` (rank 1 = best),
    sorted by ``u`` then rank; a user with fewer than ``k`` unrated items gets fewer rows.
    Only these (users x k rows) come back to the driver.
    """
    from pyspark.sql import functions as F

    bi, Q = item_side(fit, None)
    shared = broadcast_items(ratings.sparkSession, fit.mu, bi, Q)
    try:
        rated = ratings.groupBy("u").agg(F.collect_list("i").alias("rated"))
        users = fit.users.select("u", "bu", "p").join(rated, "u")
        table = top_lists(users, int(users.count()), len(bi), shared, k).toArrow()
    finally:
        shared.unpersist()
    width = min(k, len(bi))
    order = np.argsort(table.column("u").to_numpy(), kind="stable")
    users = table.column("u").to_numpy().astype(np.int64)[order]
    top = list_matrix(table.column("items"), width).astype(np.int64)[order]
    raw = list_matrix(table.column("raw"), width).astype(np.float64)[order]
    listed = np.isfinite(raw)
    ranks = np.broadcast_to(np.arange(1, width + 1), top.shape)
    return pd.DataFrame({
        "u": np.repeat(users, listed.sum(axis=1)), "rank": ranks[listed], "i": top[listed],
        "raw_prediction": raw[listed],
    })  # fmt: skip


def by_bucket(users: DataFrame, n_users: int, n_items: int) -> DataFrame:
    """Return ``users`` with ``bucket = u mod B``, ``B = ceil(n_users / per_bucket)``.

    ``per_bucket`` is ``USERS_PER_BUCKET``, or fewer where a bucket's dense score block
    (users x ``n_items`` doubles) would exceed ``engine.recommend.DEFAULT_BLOCK_BYTES``.
    """
    from pyspark.sql import functions as F

    from engine.recommend import DEFAULT_BLOCK_BYTES

    per_bucket = min(USERS_PER_BUCKET, max(1, DEFAULT_BLOCK_BYTES // max(1, 8 * n_items)))
    buckets = max(1, -(-n_users // per_bucket))
    return users.withColumn("bucket", F.col("u") % F.lit(buckets))


def user_frame(spark: SparkSession, model: TrainedModel) -> DataFrame:
    """Return the model's user side as a Spark DataFrame ``u, bu, p, rated`` (rated items)."""
    inter = model.interactions
    frame = pd.DataFrame(
        {
            "u": np.arange(inter.n_users, dtype=np.int32),
            "bu": np.asarray(model.bu, np.float64),
            "p": list(np.asarray(model.P, np.float64)),
            "rated": np.split(inter.items.astype(np.int32), inter.indptr[1:-1]),
        }
    )
    return from_pandas(spark, frame, "u int, bu double, p array<double>, rated array<int>")


def top_lists(
    users: DataFrame, n_users: int, n_items: int, shared: Broadcast[Any], k: int
) -> DataFrame:
    """Each user's top-``k`` (``TOP_SCHEMA``), scored in the executors by ``bucket_scores``."""

    def top_bucket(group: pd.DataFrame) -> pd.DataFrame:
        from engine.recommend import top_k_indices

        scores = bucket_scores(shared.value, group)
        top = top_k_indices(scores, k)
        return pd.DataFrame(
            {
                "u": group["u"].to_numpy(np.int32),
                "items": list(top.astype(np.int32)),
                "raw": list(np.take_along_axis(scores, top, 1)),
            }
        )

    buckets = by_bucket(users, n_users, n_items)
    return buckets.groupBy("bucket").applyInPandas(top_bucket, TOP_SCHEMA)


def recommend_all_in_spark(model: TrainedModel, k: int = 10) -> pd.DataFrame:
    """Top-``k`` unrated items for every user of ``model``, computed in Spark executors.

    The same rows as ``engine.recommend.recommend_all(model, k)``: columns ``user_id,
    rank`` (1 = best), ``item_id, prediction`` (clipped to the scale), ``raw_prediction``,
    ``source`` (``"model"``); sorted by user then rank; a user with fewer than ``k``
    unrated items gets fewer rows. The session is ``engine.spark.session.spark_session()``.
    """
    from engine.recommend import COLUMNS, SOURCE_MODEL, list_frame
    from engine.spark.session import quiet_pandas_warning, spark_session

    inter = model.interactions
    if inter.n_users == 0:
        return pd.DataFrame(columns=COLUMNS)
    quiet_pandas_warning()
    spark = spark_session()
    shared = broadcast_items(spark, model.mu, model.bi, model.Q)
    try:
        table = top_lists(
            user_frame(spark, model), inter.n_users, inter.n_items, shared, k
        ).toArrow()
    finally:
        shared.unpersist()
    users = table.column("u").to_numpy().astype(np.int64)
    order = np.argsort(users, kind="stable")
    width = min(k, inter.n_items)
    top = list_matrix(table.column("items"), width).astype(np.int64)[order]
    raw = list_matrix(table.column("raw"), width).astype(np.float64)[order]
    return list_frame(model, users[order], top, raw, SOURCE_MODEL)


def list_matrix(column: Any, width: int) -> np.ndarray:
    """Return an Arrow list column whose lists all hold ``width`` values as ``(n, width)``."""
    values = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), width)
