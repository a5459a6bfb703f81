r"""The fairness report of ratings that stay in Spark, from aggregates computed there.

``report_spark`` gives the ``engine.report.build.Report`` of ``audit_spark``'s result: the
same report model, so the same HTML, PDF, JSON and CSV (``engine.report.write``). What the
report shows next to the audit (``report_parts_in_spark``: an
``engine.report.build.ReportParts``, which ``engine.saved.kept`` stores) is computed by the
executors and only its aggregates come to the driver:

* the dataset profile (``profile_in_spark``): ratings per rating value, per user and per
  item, their mean and standard deviation, the first and last time;
* the split table (``split_table_in_spark``): per fold its sizes and cold-start counts, as
  ``engine.protocols.split_table``, from the held-out predictions' ``reason``;
* the accuracy (``evaluate_spark``'s fold metrics) and the accuracy gap of each user
  attribute's groups (the per-user error sums of ``user_statistics``);
* a fingerprint of the ratings (``fingerprint_in_spark``).

The comparators BaselineOnly and Popularity are evaluated on the same splits in Spark
(``engine.spark.comparators``), so the accuracy table and the summary's "a baseline ranks
better" fact are the in-memory report's; BaselineOnly's accuracy gaps by group come from its
per-user error sums (``comparator_errors``), and each comparator's NDCG@k by user group
from its per-user means over the folds (``comparator_ranking``). KNNBaseline does not run
on this route.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.audit.run import AuditResult
from engine.data.profile import DatasetProfile, profile_of_counts
from engine.evaluate import REASON_BOTH, REASON_ITEM, REASON_USER
from engine.explain.titles import titles_in
from engine.model.config import ModelConfig
from engine.protocols import SPLIT_COLUMNS, describe_protocol
from engine.report.build import (
    GROUP_RANKING_METRIC,
    HASHED_FOLDS,
    Report,
    ReportParts,
    accuracy_table,
    assemble_report,
    audited_lists,
    evaluation_settings,
    most_recommended,
    provenance_of,
    ranking_by_group_table,
    tradeoff_table,
)
from engine.spark.audit import (
    ERROR_COLUMNS,
    error_sums,
    evaluation_table,
    item_popularity,
    user_statistics,
)
from engine.spark.comparators import RATING_COMPARATOR

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.spark.evaluate import SparkEvaluation
    from engine.spark.load import SparkRatings

#: The model audited on this route (``engine.evaluate``'s name for it).
MODEL = "SVD"
#: ``evaluate_spark``'s fold metrics that are counts, not model quality: not in the table.
_COUNTS = ("n_test",)


def profile_in_spark(
    ratings: SparkRatings,
    activity: pd.Series,
    popularity: pd.Series,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    synthetic: bool = False,
    name: str | None = None,
) -> DatasetProfile:
    """``engine.data.profile.dataset_profile`` of ratings held by Spark.

    ``activity``/``popularity``: ratings per user / item (``user_statistics``'
    ``n_ratings``, ``item_popularity``); the rating values, their mean, population standard
    deviation and the time span are aggregated in Spark. ``users``/``items``: the attribute
    tables (their columns are listed); ``name``: the dataset's (default the file's).
    """
    from pyspark.sql import functions as F

    frame = ratings.ratings
    values = frame.groupBy("rating").agg(F.count(F.lit(1)).alias("count")).toArrow().to_pandas()
    moments = frame.agg(
        F.avg("rating"), F.stddev_pop("rating"), F.min("timestamp"), F.max("timestamp")
    ).first()
    mean, std, first, last = moments
    return profile_of_counts(
        name or ratings.name,
        synthetic,
        pd.Series(values["count"].to_numpy(np.int64), index=values["rating"].astype(float)),
        activity,
        popularity,
        float(mean),
        float(std),
        ratings.report.scale.describe(),
        (None if first is None else int(first), None if last is None else int(last)),
        [] if users is None else list(users.columns),
        [] if items is None else list(items.columns),
    )


def split_table_in_spark(ratings: SparkRatings, evaluation: SparkEvaluation) -> pd.DataFrame:
    """``engine.protocols.split_table`` of ``evaluate_spark``'s splits, counted in Spark.

    From the held-out predictions (``fold``, ``u``, ``i``, ``reason``: a test user or item
    with no training rating is named in ``reason``) and the ratings: ``n_train`` is the
    split's ratings less its tested ones (``kfold``: all; ``temporal``: the timed ones),
    ``n_unused`` the untimed ratings of a temporal split, ``n_train_only_users`` the users
    of the split less its tested users, ``train_latest`` the latest time among the fold's
    training ratings (ratings are assigned to folds again by ``assign_folds``, the hash
    ``evaluate_spark`` used).
    """
    from pyspark.sql import functions as F

    from engine.spark.evaluate import assign_folds

    predictions = evaluation_table(evaluation, "predictions")
    cold_user = F.col("reason").isin(REASON_USER, REASON_BOTH)
    cold_item = F.col("reason").isin(REASON_ITEM, REASON_BOTH)
    tested = (
        predictions.groupBy("fold")
        .agg(
            F.count(F.lit(1)).alias("n_test"),
            F.countDistinct("u").alias("n_test_users"),
            F.countDistinct(F.when(cold_user, F.col("u"))).alias("n_cold_users"),
            F.countDistinct(F.when(cold_item, F.col("i"))).alias("n_cold_items"),
            F.sum(F.col("was_impossible").cast("long")).alias("n_cold_ratings"),
        )
        .toArrow()
        .to_pandas()
        .sort_values("fold", ignore_index=True)
    )
    frame = ratings.ratings
    timed = frame.where(F.col("timestamp").isNotNull())
    if evaluation.split == "temporal":
        counts = timed.agg(F.count(F.lit(1)), F.countDistinct("u")).first()
        n_ratings, n_users = int(counts[0]), int(counts[1])
        n_unused = frame.count() - n_ratings
        start = float(evaluation.test_start)
        end = float(timed.agg(F.max("timestamp")).first()[0])
        latest = timed.where(F.col("timestamp") < start).agg(F.max("timestamp")).first()[0]
        latest_by_fold = {0: latest}
    else:
        counts = frame.agg(F.count(F.lit(1)), F.countDistinct("u")).first()
        n_ratings, n_users, n_unused, start, end = int(counts[0]), int(counts[1]), 0, None, None
        most_recent = (
            assign_folds(timed, evaluation.folds, evaluation.seed)
            .groupBy("fold").agg(F.max("timestamp").alias("t")).collect()
        )  # fmt: skip
        recent = {row["fold"]: row["t"] for row in most_recent}
        latest_by_fold = {
            fold: max((t for f, t in recent.items() if f != fold), default=None)
            for fold in tested["fold"]
        }
    table = tested.assign(
        n_train=n_ratings - tested["n_test"],
        n_unused=n_unused,
        test_start=math.nan if start is None else start,
        test_end=math.nan if end is None else end,
        train_latest=[
            math.nan if latest_by_fold[f] is None else float(latest_by_fold[f])
            for f in tested["fold"]
        ],
        n_train_only_users=n_users - tested["n_test_users"],
    )
    return table[SPLIT_COLUMNS].astype({c: np.int64 for c in SPLIT_COLUMNS if c.startswith("n_")})


def comparator_errors(
    ratings: SparkRatings, evaluation: SparkEvaluation, model: str
) -> pd.DataFrame:
    """Sum a comparator's held-out errors per user in Spark (``error_sums``).

    Index ``user_id`` (users with a held-out prediction of ``model``), columns ``se, ae,
    n``: the input of ``engine.report.build.tradeoff_table`` for that model.
    """
    predictions = comparator_table(evaluation, "predictions", model)
    return _by_user_id(error_sums(predictions).join(ratings.users, "u"))[list(ERROR_COLUMNS)]


def comparator_ranking(
    ratings: SparkRatings, evaluation: SparkEvaluation, model: str, metric: str
) -> pd.Series:
    """Average a comparator's per-user ranking ``metric`` over the folds, in Spark.

    Index ``user_id``: the users ``model`` ranked (those with a relevant held-out rating),
    each user's mean over the folds in which they were ranked (as ``user_statistics``' for
    the SVD): the input of ``engine.report.build.ranking_by_group_table`` for that model.
    """
    from pyspark.sql import functions as F

    rows = comparator_table(evaluation, "user_ranking", model)
    means = rows.groupBy("u").agg(F.avg(metric).alias(metric)).join(ratings.users, "u")
    return _by_user_id(means)[metric]


def comparator_table(evaluation: SparkEvaluation, table: str, model: str) -> DataFrame:
    """``evaluate_spark``'s ``table`` of comparator ``model`` (``comparators/<table>/``)."""
    from pyspark.sql import functions as F

    from engine.spark.evaluate import COMPARATORS_FOLDER

    rows = evaluation_table(evaluation, f"{COMPARATORS_FOLDER}/{table}")
    return rows.where(F.col("model") == model)


def _by_user_id(frame: DataFrame) -> pd.DataFrame:
    table = frame.toArrow().to_pandas()
    return table.set_index(pd.Index(table["user_id"], dtype="str", name="user_id")).sort_index()


def protocol_in_words(evaluation: SparkEvaluation, splits: pd.DataFrame) -> str:
    """Describe ``evaluate_spark``'s protocol in a sentence or two, with its sizes.

    ``kfold``: the hashed folds (their sizes differ by chance, so the smallest and largest
    are named); ``temporal``: ``engine.protocols.describe_protocol``'s words.
    """
    if evaluation.split == "temporal":
        return describe_protocol("temporal", splits, folds=1, seed=evaluation.seed,
                                 test_share=evaluation.test_share, last_n=1)  # fmt: skip
    sizes = splits["n_test"]
    return (
        f"{evaluation.folds}-fold cross-validation by hash (seed {evaluation.seed}): rating "
        f"(u, i) is held out in fold pmod(xxhash64(u, i, {evaluation.seed}), "
        f"{evaluation.folds}), so every rating is held out once; fold sizes differ by chance "
        f"({sizes.min():,} to {sizes.max():,} held-out ratings)."
    )


def fingerprint_in_spark(ratings: SparkRatings) -> str:
    """Fingerprint ratings held by Spark (SHA-256), the same for any order or partitioning.

    Over the number of ratings and the sum modulo :math:`2^{61}-1` of each rating's
    ``xxhash64(user_id, item_id, rating, timestamp)`` (ids as read, the index joined back).
    Not comparable with ``engine.data.load.fingerprint_of`` (a hash of the sorted frame),
    hence its ``spark:`` prefix.
    """
    from pyspark.sql import functions as F

    prime = (1 << 61) - 1
    key = F.xxhash64("user_id", "item_id", "rating", F.coalesce("timestamp", F.lit(-1)))
    row = (
        ratings.ratings.join(ratings.users, "u")
        .join(ratings.items, "i")
        .agg(F.count(F.lit(1)), F.sum(F.pmod(key, F.lit(prime)).cast("decimal(38,0)")))
        .first()
    )
    digest = hashlib.sha256(f"spark-ratings-v1\n{row[0]}\n{row[1]}".encode())
    return "spark:" + digest.hexdigest()


def report_spark(
    ratings: SparkRatings,
    evaluation: SparkEvaluation,
    result: AuditResult,
    model: ModelConfig | None = None,
    *,
    sections: tuple[str, ...] | list[str] | None = None,
    **counted: Any,
) -> Report:
    """Make the ``Report`` of ``audit_spark``'s ``result`` (module docstring).

    ``assemble_report`` of ``report_parts_in_spark`` (``model`` and the keyword arguments
    ``counted`` are its); ``sections`` as in ``engine.report.build.build_report``.
    """
    parts = report_parts_in_spark(ratings, evaluation, result, model, **counted)
    return assemble_report(result, **parts.arguments(), sections=sections)


def report_parts_in_spark(
    ratings: SparkRatings,
    evaluation: SparkEvaluation,
    result: AuditResult,
    model: ModelConfig | None = None,
    *,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    statistics: pd.DataFrame | None = None,
    popularity: pd.Series | None = None,
    name: str | None = None,
    synthetic: bool = False,
    created: datetime | None = None,
) -> ReportParts:
    """Compute what the report of ``result`` shows next to the audit, in Spark (module docstring).

    ``model``: the settings the SVD was trained with (default ``ModelConfig(engine="spark")``,
    as ``audit_spark``'s); ``users``/``items``: the attribute tables given to the audit;
    ``statistics``: ``user_statistics``' table if already computed (it is again otherwise);
    ``popularity``: ``item_popularity``'s counts if already computed, likewise;
    ``name`` and ``synthetic``: the dataset's (``KeptInputs``'; default the file's name, and
    not synthetic); ``created`` as in ``engine.report.build.build_report``.
    """
    model = model or ModelConfig(engine="spark")
    statistics = user_statistics(ratings, evaluation) if statistics is None else statistics
    popularity = item_popularity(ratings) if popularity is None else popularity
    profile = profile_in_spark(
        ratings, statistics["n_ratings"], popularity, users, items, synthetic, name
    )
    splits = split_table_in_spark(ratings, evaluation)
    metrics = evaluation.fold_metrics[~evaluation.fold_metrics["metric"].isin(_COUNTS)]
    models = list(evaluation.models)
    held_out = {MODEL: statistics.loc[statistics["n"] > 0, list(ERROR_COLUMNS)]}
    if RATING_COMPARATOR in models:
        held_out[RATING_COMPARATOR] = comparator_errors(ratings, evaluation, RATING_COMPARATOR)
    metric = GROUP_RANKING_METRIC
    ranked = {name: comparator_ranking(ratings, evaluation, name, metric)
              for name in models if name != MODEL}  # fmt: skip
    ranked = {MODEL: statistics[metric].dropna(), **ranked}
    protocol_fields = {"fold_assignment": HASHED_FOLDS} if evaluation.split == "kfold" else {
        "split": evaluation.split, "test_share": evaluation.test_share}  # fmt: skip
    settings = evaluation_settings(
        split=evaluation.split, protocol=protocol_in_words(evaluation, splits),
        protocol_fields=protocol_fields,
        cold_start={name: int(splits[f"n_cold_{name}"].sum())
                    for name in ("users", "items", "ratings")},
        folds=evaluation.folds, seed=evaluation.seed, k=evaluation.k,
        threshold=evaluation.threshold, threshold_source=result.threshold_source,
        relevance_rule=result.relevance_rule, models=models, skipped={}, notes=[],
    )  # fmt: skip
    provenance = provenance_of(
        profile.name, synthetic, fingerprint_in_spark(ratings), ratings.report,
        profile.n_users, profile.n_items, model, evaluation.seed, created,
    )  # fmt: skip
    return ReportParts(
        profile=profile,
        load=ratings.report,
        model=model,
        accuracy=accuracy_table(metrics, models),
        evaluation=settings,
        tradeoff=tradeoff_table(users, statistics.index, held_out, result),
        ranking_by_group=ranking_by_group_table(users, statistics, ranked, result),
        top_items=most_recommended(audited_lists(result), popularity, titles_in(items)),
        provenance=provenance,
    )
