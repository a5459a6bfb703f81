r"""The comparators evaluated where the ratings lie: BaselineOnly and Popularity in Spark.

They are ``engine.model.comparators``' models, fitted on a split's training ratings in
Spark and evaluated by ``engine.spark.evaluate.evaluate_spark`` on the same splits as the
SVD, so the report can say whether the SVD beats "most popular" (``engine.report.summary``)
without the ratings leaving Spark:

* **BaselineOnly**, :math:`\hat r_{ui} = \mu + b_u + b_i`, is the Spark engine's own first
  stage (``SparkFit.baselines``: Surprise's ``baseline_als``), read as the model with no
  factors (``baseline_fit``), so its held-out predictions come from the SVD's ``predict``;
* **Popularity** scores an item by its number of training ratings (ties to the lower item
  index, ``popularity_scores``) and predicts no rating.

Both rank the items in one order for every user (``mu + b_u`` is the same for all of a
user's items), so a user's list is the first ``k`` unrated items of that order
(``engine.recommend.unrated_prefix``, in the executors, with the order broadcast): the
lists of ``engine.evaluate.held_out_ranking``, in ``O(k + ratings)`` per user. Items with no
training rating are in no list, as there.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.model.comparators import popularity_scores

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.spark.train import SparkFit

#: The comparators ``evaluate_spark`` runs (``engine.evaluate``'s names), in report order.
KEPT_COMPARATORS = ("BaselineOnly", "Popularity")
#: The comparator that predicts ratings (the other only ranks).
RATING_COMPARATOR = "BaselineOnly"


def baseline_fit(fit: SparkFit) -> SparkFit:
    """BaselineOnly as the model with no factors: ``fit``'s first stage, ``p_u`` and ``q_i`` empty.

    ``mu``, ``b_u`` and ``b_i`` are ``fit.baselines``' (not the refit's ``b_u``), so
    ``engine.spark.evaluate.predict`` gives ``mu + b_u + b_i``, with the SVD's fallbacks for
    a user or item without a training rating.
    """
    from pyspark.sql import functions as F

    baselines = fit.baselines
    users = baselines.bu.select("u", "bu", F.array().cast("array<double>").alias("p"))
    items = baselines.bi.select("i", "bi", F.array().cast("array<float>").alias("q"))
    return replace(fit, mu=baselines.mu, users=users, items=items)


def baseline_order(fit: SparkFit, n_items: int) -> np.ndarray:
    """Item indices by ``b_i`` descending, ties to the lower index; untrained items left out.

    ``engine.model.comparators.BaselineModel.item_order`` of the same biases.
    """
    from engine.spark.recommend import item_side

    bi, _ = item_side(baseline_fit(fit), n_items)  # -inf where untrained
    order = np.argsort(-bi, kind="stable")
    return order[np.isfinite(bi[order])]


def popularity_order(train: DataFrame, n_items: int) -> np.ndarray:
    """Item indices by training ratings descending, ties to the lower index; unrated left out.

    ``engine.model.comparators.PopularityModel.item_order`` of ``train`` (counted in Spark;
    only the ``n_items`` counts come back).
    """
    from pyspark.sql import functions as F

    table = train.groupBy("i").agg(F.count(F.lit(1)).alias("n")).toArrow()
    counts = np.zeros(n_items)
    counts[table.column("i").to_numpy().astype(np.int64)] = table.column("n").to_numpy()
    order = np.argsort(-popularity_scores(counts), kind="stable")
    return order[counts[order] > 0]


def rank_by_order(order: np.ndarray, candidates: DataFrame, k: int, n_items: int) -> DataFrame:
    """Top-``k`` lists and ranking metrics of ``candidates`` for a model with one item order.

    ``candidates``: ``engine.spark.evaluate.ranking_candidates``' users; each user's list
    is the first ``k`` items of ``order`` they did not rate in training. Returns
    ``engine.spark.evaluate.RANKING_SCHEMA``, as ``rank_users`` does for the SVD.
    """
    from engine.recommend import unrated_prefix
    from engine.spark.evaluate import RANKING_SCHEMA, ranking_rows
    from engine.spark.recommend import by_bucket

    shared = candidates.sparkSession.sparkContext.broadcast(np.asarray(order, dtype=np.int64))

    def rank_bucket(group: pd.DataFrame) -> pd.DataFrame:
        counts = group["rated"].map(len).to_numpy(np.int64)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        rated = np.concatenate([np.asarray(r, dtype=np.int64) for r in group["rated"]])
        top, valid = unrated_prefix(shared.value, k, n_items, rated, starts, counts)
        return ranking_rows(group, top, valid, k, n_items)

    return (
        by_bucket(candidates, int(candidates.count()), n_items)
        .groupBy("bucket")
        .applyInPandas(rank_bucket, RANKING_SCHEMA)
    )
