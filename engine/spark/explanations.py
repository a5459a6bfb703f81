r"""The explanation measures of ratings kept in Spark, computed per user in the executors.

A user's explanation support and deletion fidelity (``engine.audit.inputs.explanations``)
read the user's own ratings next to the model: the exact linear split of each listed item's
prediction over those ratings, then one refold without the (up to) three most positive
ones. The ratings stay in Spark: each bucket of users (:math:`u \bmod B`) meets its
ratings and its users' ``b_u, p_u`` and top-``k`` lists in one executor task (a cogroup),
which runs ``engine.audit.inputs.explanation_measures``, the in-memory audit's own function,
with the item side ``(mu, b_i, Q)`` broadcast. Only ``support`` and ``fidelity`` come back,
one row per user with a list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.audit.inputs import explanation_measures
from engine.spark.session import from_pandas

if TYPE_CHECKING:
    from engine.spark.load import SparkRatings
    from engine.spark.train import SparkFit

#: What each bucket returns: one row per user with a list.
MEASURES_SCHEMA = "u int, support double, fidelity double"
#: Users go to the executors in groups of about this many ratings (as the refit's).
RATINGS_PER_BUCKET = 250_000


def explanations_in_spark(
    ratings: SparkRatings,
    fit: SparkFit,
    lists: pd.DataFrame,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
) -> pd.DataFrame:
    """``engine.audit.inputs.explanations`` of ``fit`` for the users of ``lists``, in Spark.

    ``lists``: ``audit_lists``' table (``user_id, rank, item_id``, sorted by user then
    rank); ``user_ids``/``item_ids``: the raw ids by index (``ids_by_index``); the ridge
    strength is ``fit.config.refit_lambda``. Returns ``support`` and ``fidelity`` indexed
    by ``user_id``, the users in ascending id order (as in memory). Each user's ratings are
    taken in ascending item index, the in-memory order (both index the ids in ascending
    order), so ties between equal contributions are broken the same way.
    """
    from pyspark.sql import functions as F

    from engine.spark.recommend import broadcast_items, item_side

    if lists.empty:
        return pd.DataFrame({"support": [], "fidelity": []},
                            index=pd.Index([], name="user_id", dtype=object))  # fmt: skip
    spark, lam = ratings.ratings.sparkSession, fit.config.refit_lambda
    users = pd.Index(user_ids).get_indexer(lists["user_id"]).astype(np.int32)
    items = pd.Index(item_ids).get_indexer(lists["item_id"]).astype(np.int32)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    listed = pd.DataFrame({"u": users[starts], "listed": np.split(items, starts[1:])})
    listed_frame = from_pandas(spark, listed, "u int, listed array<int>")
    buckets = max(spark.sparkContext.defaultParallelism,
                  ratings.report.rows_kept // RATINGS_PER_BUCKET)  # fmt: skip
    bucket = F.col("u") % F.lit(int(buckets))
    history = (
        ratings.ratings.select("u", "i", "rating")
        .join(listed_frame.select("u"), "u", "left_semi")
        .withColumn("bucket", bucket)
    )
    sides = fit.users.select("u", "bu", "p").join(listed_frame, "u").withColumn("bucket", bucket)
    shared = broadcast_items(spark, fit.mu, *item_side(fit, len(item_ids)))

    def measure_bucket(rated: pd.DataFrame, own: pd.DataFrame) -> pd.DataFrame:
        side = shared.value
        rated = rated.sort_values(["u", "i"], kind="stable")
        by_user = rated["u"].to_numpy()
        rated_items = rated["i"].to_numpy(np.int64)
        values = rated["rating"].to_numpy(np.float64)
        support, fidelity = [], []
        for user, bu, p, top in own[["u", "bu", "p", "listed"]].itertuples(index=False):
            lo, hi = np.searchsorted(by_user, [user, user + 1])
            measured = explanation_measures(
                side, lam, np.r_[bu, np.asarray(p, np.float64)], rated_items[lo:hi],
                values[lo:hi], np.asarray(top, np.int64),
            )  # fmt: skip
            support.append(measured[0])
            fidelity.append(measured[1])
        return pd.DataFrame({"u": own["u"].to_numpy(np.int32), "support": support,
                             "fidelity": fidelity})  # fmt: skip

    try:
        table = (
            history.groupBy("bucket")
            .cogroup(sides.groupBy("bucket"))
            .applyInPandas(measure_bucket, MEASURES_SCHEMA)
            .toArrow()
        )
    finally:
        shared.unpersist()
    order = np.argsort(table.column("u").to_numpy(), kind="stable")
    return pd.DataFrame(
        {"support": table.column("support").to_numpy()[order],
         "fidelity": table.column("fidelity").to_numpy()[order]},
        index=pd.Index(user_ids[table.column("u").to_numpy()[order]], name="user_id"),
    )  # fmt: skip
