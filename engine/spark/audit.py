r"""The audit of ratings that stay in Spark, from sufficient statistics aggregated there.

For ratings held by Spark (``engine.spark.load.SparkRatings``), their evaluation in Spark
(``engine.spark.evaluate.evaluate_spark``: Parquet ``predictions/``, ``lists/``,
``user_ranking/``) and a fit on all of them (``engine.spark.train.fit_spark``), the
executors compute what the audit's statistics rest on, and only these come to the driver,
so its memory grows with users and items, never with ratings:

* per user (``user_statistics``): the profile (``n_ratings``, ``mean_rating``,
  ``mean_popularity``, as ``engine.audit.inputs.profile``), the SVD's held-out error sums
  over every fold (``se, ae, n`` of the clipped predictions, as
  ``engine.audit.inputs.error_sums_by_user``) and the mean over the folds of each ranking
  metric (as ``engine.audit.inputs.ranking``);
* every user's top-``k`` list of the fit on all ratings, rated items excluded
  (``audit_lists``: users x k rows, ``engine.recommend.recommend_all``'s columns);
* per item: its number of ratings (``item_popularity``) and its ratings by users with a
  list (RSP's candidates); per item group: its raters and ratings (``rater_counts_in_spark``);
* per (item, user group) of each user grouping (``yao_sums_in_spark``): the count and the
  sums of held-out predictions and ratings (Yao & Huang, ``engine.audit.tables.YaoSums``);
* per (fold, item) (``reo_counts_in_spark``): the relevant held-out ratings (rating
  :math:`\ge` the audit's threshold) and those of them in the user's top-``k`` list of that
  fold (REO, ``engine.audit.measures.reo_of_counts``);
* per (user, item group) of each item grouping (``interaction_weights_in_spark``): the
  user's ratings of the group's items (the interaction share and its bootstrap over users,
  ``engine.audit.rows.exposure_rows_of_weights``).

The driver then runs the audit's own code on them, unchanged: the user and item groupings,
the metric specs of ``engine.audit.specs.REGISTRY`` whose inputs these are
(``audited_registry``: RMSE, MAE, NDCG, Recall, ARP, APLT, ACLT, novelty, exposure share,
interaction share), ``engine.audit.rows.group_rows`` and ``exposure_rows_of_weights``
(percentile bootstrap, permutation
or normal-approximation tests, Holm within a metric and grouping, tiers), Yao & Huang,
delta-GAP, the catalogue (coverage, Gini, RSP, REO, UGF gap) and the profile-trait hints.
With an item table with genres, also calibration (each user's genre mix,
``history_genres_in_spark``) and bias disparity (per user group and genre,
``category_counts_in_spark``). With ``AuditConfig.explanations`` (the default), the
explanation measures too: each listed user's support and deletion fidelity, computed in the
executors from the user's ratings next to the fit (``engine.spark.explanations``).
``engine.spark.report.report_spark`` makes the report of the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.audit import tables
from engine.audit.config import AuditConfig
from engine.audit.groups import LONG_TAIL, PROPENSITY, item_popularity_groups
from engine.audit.registry import Registry, audited
from engine.audit.rows import adjust, classify, event_weights, exposure_rows_of_weights, frame
from engine.audit.run import (
    BY_DEFINITION,
    AuditResult,
    attribute_groupings,
    audit_threshold,
    empty_group_notes,
    item_groupings_of,
    profile_hints,
    size_notes,
    unlisted_notes,
    user_group_rows,
    user_groupings_of,
)
from engine.audit.specs import REGISTRY, SHARED_INPUTS
from engine.errors import DataError
from engine.metrics import RANKING_METRICS
from engine.model.config import ModelConfig
from engine.spark.remote import location

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from engine.spark.evaluate import SparkEvaluation
    from engine.spark.load import SparkRatings
    from engine.spark.train import SparkFit

#: The shared inputs built here from what Spark computed; the metrics computed from them are
#: the specs reading only these (``audited_registry``), and the interaction share is summed
#: in Spark (``interaction_weights_in_spark``).
AVAILABLE_INPUTS = ("errors", "ranking", "lists", "popularity", "popularity_groups",
                    "long_tail", "profile", "n_users", "genres", "history_genres",
                    "explanations")  # fmt: skip
#: Columns of ``user_statistics``: the profile, the error sums, the ranking metrics.
PROFILE_COLUMNS = ("n_ratings", "mean_rating", "mean_popularity")
ERROR_COLUMNS = ("se", "ae", "n")
KEPT_NOTE = (
    "Audited from aggregates computed in Spark (the driver never held the ratings), with the same "
    "definitions and tests as in memory."
)


def audited_registry(
    registry: Registry = REGISTRY, available: tuple[str, ...] = AVAILABLE_INPUTS
) -> Registry:
    """Return the registry of the specs of ``registry`` that read only ``available`` inputs."""
    return Registry(SHARED_INPUTS, [s for s in registry if set(s.inputs) <= set(available)])


def interaction_weights_in_spark(
    ratings: SparkRatings, membership: pd.DataFrame, statistics: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame]:
    """Sum the interaction share's per-user weights by item group in Spark.

    ``engine.audit.measures.weight_by_user`` of every rating with weight 1: each user's
    number of ratings, and of ratings of items in each group (column) of ``membership``
    (per (user, group) counts come back). Users in ``statistics``' order (sorted ids, the
    order of the in-memory ratings), so the bootstrap draws the same users.
    """
    from pyspark.sql import functions as F

    counts = (
        _members(ratings, membership)
        .join(ratings.ratings.select("u", "i"), "i")
        .groupBy("u", "c")
        .agg(F.count(F.lit(1)).alias("n"))
        .toArrow()
        .to_pandas()
    )
    by_group = np.zeros((len(statistics), membership.shape[1]))
    row = pd.Index(statistics["u"]).get_indexer(counts["u"])
    by_group[row, counts["c"].to_numpy()] = counts["n"].to_numpy(float)
    frame = pd.DataFrame(by_group, index=statistics.index, columns=membership.columns)
    return statistics["n_ratings"].to_numpy(float), frame


def user_statistics(ratings: SparkRatings, evaluation: SparkEvaluation) -> pd.DataFrame:
    """Aggregate each user's profile, error sums and ranking means in Spark.

    Returns one row per user with a rating (index ``user_id``, ``str`` as in ``RatingData``):
    ``u`` (Spark's index), ``n_ratings, mean_rating, mean_popularity`` (popularity =
    ratings per item), ``se, ae, n`` (summed squared and absolute error of the clipped
    held-out predictions over every fold, their count; 0 for a user never held out) and the
    ranking metrics (``engine.metrics.RANKING_METRICS``) averaged over the folds in which
    the user was ranked (NaN when never).
    """
    from pyspark.sql import functions as F

    frame = ratings.ratings
    popularity = frame.groupBy("i").agg(F.count(F.lit(1)).alias("popularity"))
    profile = (
        frame.join(popularity, "i")
        .groupBy("u")
        .agg(
            F.count(F.lit(1)).alias("n_ratings"),
            F.avg("rating").alias("mean_rating"),
            F.avg("popularity").cast("double").alias("mean_popularity"),
        )
    )
    errors = error_sums(evaluation_table(evaluation, "predictions"))
    ranking = (
        evaluation_table(evaluation, "user_ranking")
        .groupBy("u")
        .agg(*(F.avg(m).alias(m) for m in RANKING_METRICS))
    )
    table = (
        profile.join(errors, "u", "left")
        .join(ranking, "u", "left")
        .join(ratings.users, "u")
        .toArrow()
        .to_pandas()
    )
    table[list(ERROR_COLUMNS)] = table[list(ERROR_COLUMNS)].fillna(0.0)
    table["n_ratings"] = table["n_ratings"].astype(np.int64)
    table.index = pd.Index(table.pop("user_id"), dtype="str", name="user_id")
    return table.sort_index()


def error_sums(predictions: DataFrame) -> DataFrame:
    """``u, se, ae, n``: each user's summed squared and absolute error of ``prediction``, count."""
    from pyspark.sql import functions as F

    error = F.col("prediction") - F.col("rating")
    return predictions.groupBy("u").agg(
        F.sum(error * error).alias("se"),
        F.sum(F.abs(error)).alias("ae"),
        F.count(F.lit(1)).cast("double").alias("n"),
    )


def item_popularity(ratings: SparkRatings) -> pd.Series:
    """Ratings per item counted in Spark: index ``item_id``, most rated first (ties by id)."""
    from pyspark.sql import functions as F

    counts = (
        ratings.ratings.groupBy("i")
        .agg(F.count(F.lit(1)).alias("count"))
        .join(ratings.items, "i")
        .toArrow()
        .to_pandas()
    )
    counts = pd.Series(
        counts["count"].to_numpy(np.int64),
        index=pd.Index(counts["item_id"], dtype="str", name="item_id"),
        name="count",
    )
    return counts.sort_index().sort_values(ascending=False, kind="stable")


def yao_sums_in_spark(
    evaluation: SparkEvaluation, labels: pd.Series, statistics: pd.DataFrame
) -> tables.YaoSums:
    """``tables.YaoSums`` of the held-out predictions by ``labels``, summed in Spark.

    ``labels``: index ``user_id``; ``statistics``: ``user_statistics``' table (its ``u``
    maps the ids). A user without a label is in the last column, as in ``yao_sums``.
    """
    from pyspark.sql import functions as F

    codes, names = pd.factorize(labels)
    width = len(names) + 1
    sums = (
        evaluation_table(evaluation, "predictions")
        .join(_user_groups(labels, codes, statistics), "u", "left")
        .withColumn("g", F.coalesce(F.col("g"), F.lit(width - 1)))
        .groupBy("i", "g")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum("prediction").alias("y"),
            F.sum("rating").alias("r"),
        )
        .toArrow()
        .to_pandas()
    )
    items, row = np.unique(sums["i"].to_numpy(), return_inverse=True)
    n, y, r = (np.zeros((len(items), width)) for _ in range(3))
    column = sums["g"].to_numpy(np.int64)
    n[row, column] = sums["n"].to_numpy(float)
    y[row, column] = sums["y"].to_numpy(float)
    r[row, column] = sums["r"].to_numpy(float)
    return tables.YaoSums(names, n, y, r, n.sum(axis=0).astype(np.int64), y.sum(axis=0))


def reo_counts_in_spark(
    ratings: SparkRatings, evaluation: SparkEvaluation, threshold: float
) -> list[tuple[pd.Series, pd.Series]]:
    """Per fold with lists, per-item counts of hits and of relevant held-out ratings.

    Relevant: a held-out rating ``>= threshold``; a hit: a relevant pair in the user's
    top-``k`` list of the same fold. Each Series has index ``item_id``; folds in order.
    Counted in Spark; ``engine.audit.measures.reo_of_counts`` reads them.
    """
    from pyspark.sql import functions as F

    pair = ["fold", "u", "i"]
    relevant = (
        evaluation_table(evaluation, "predictions")
        .where(F.col("rating") >= F.lit(float(threshold)))
        .select(*pair)
    )
    lists = evaluation_table(evaluation, "lists").select(*pair)
    folds = sorted(r["fold"] for r in lists.select("fold").distinct().collect())
    hits = lists.join(relevant, pair)
    counts = {}
    for name, pairs in (("hits", hits), ("relevant", relevant)):
        counts[name] = (
            pairs.groupBy("fold", "i")
            .agg(F.count(F.lit(1)).alias("count"))
            .join(ratings.items, "i")
            .toArrow()
            .to_pandas()
        )

    def per_item(table: pd.DataFrame, fold: int) -> pd.Series:
        rows = table[table["fold"] == fold]
        return pd.Series(
            rows["count"].to_numpy(np.int64), index=pd.Index(rows["item_id"], dtype="str")
        )

    return [(per_item(counts["hits"], f), per_item(counts["relevant"], f)) for f in folds]


def category_counts_in_spark(
    ratings: SparkRatings, labels: pd.Series, statistics: pd.DataFrame, membership: pd.DataFrame
) -> pd.DataFrame:
    """``engine.audit.measures.category_counts`` counted in Spark (bias disparity's input side).

    Per user group of ``labels`` (index, sorted): its users' ratings ``n`` and those of items
    in each category (column) of ``membership``; ``statistics``' ``u`` maps the user ids.
    """
    from pyspark.sql import functions as F

    groups = sorted(labels.unique())
    codes = pd.Index(groups).get_indexer(labels)
    rated = ratings.ratings.select("u", "i").join(_user_groups(labels, codes, statistics), "u")
    totals = rated.groupBy("g").agg(F.count(F.lit(1)).alias("n")).toArrow().to_pandas()
    inside = (
        rated.join(_members(ratings, membership), "i").groupBy("g", "c")
        .agg(F.count(F.lit(1)).alias("n")).toArrow().to_pandas()
    )  # fmt: skip
    table = np.zeros((len(groups), 1 + membership.shape[1]), dtype=np.int64)
    table[totals["g"].to_numpy(), 0] = totals["n"].to_numpy()
    table[inside["g"].to_numpy(), 1 + inside["c"].to_numpy()] = inside["n"].to_numpy()
    return pd.DataFrame(table, index=groups, columns=["n", *membership.columns])


def history_genres_in_spark(ratings: SparkRatings, genres: pd.Series) -> pd.DataFrame:
    """``engine.audit.inputs.history_genres`` summed in Spark: each user's genre mix.

    ``genres``: each item's genres (tuples, index ``item_id``, ``RatingData.items``). Each
    rated item spreads weight 1 equally over its genres; per (user, genre) the weights are
    summed by the executors (users x genres rows come back), then each user's row is divided
    by its sum. Users who rated no item with a genre are absent.
    """
    from pyspark.sql import functions as F

    from engine.spark.session import from_pandas, spark_session

    with_genres = genres[genres.map(lambda g: isinstance(g, tuple) and len(g) > 0)]
    spread = pd.DataFrame(
        {"item_id": with_genres.index.astype(str), "genre": with_genres.to_numpy()}
    )
    spread["weight"] = 1.0 / spread["genre"].map(len)
    spread = spread.explode("genre").astype({"genre": str})
    sums = (
        from_pandas(spark_session(), spread, "item_id string, genre string, weight double")
        .join(ratings.items, "item_id")
        .join(ratings.ratings.select("u", "i"), "i")
        .groupBy("u", "genre")
        .agg(F.sum("weight").alias("weight"))
        .join(ratings.users, "u")
        .toArrow()
        .to_pandas()
    )
    table = sums.pivot_table(
        index="user_id", columns="genre", values="weight", aggfunc="sum", fill_value=0.0
    )
    table.index = pd.Index(table.index, dtype="str", name="user_id")
    table.columns.name = None
    return table.div(table.sum(axis=1), axis=0)


def ids_by_index(index: DataFrame, column: str, name: str) -> np.ndarray:
    """Return the raw ids of ``SparkRatings.users``/``items`` by index: ``ids[u]`` is ``u``'s."""
    table = index.toArrow()
    ids = np.empty(table.num_rows, dtype=object)
    ids[table.column(name).to_numpy()] = np.asarray(table.column(column).to_pylist(), object)
    return ids


def audit_lists(
    ratings: SparkRatings, fit: SparkFit, k: int, user_ids: np.ndarray, item_ids: np.ndarray
) -> pd.DataFrame:
    """Every user's top-``k`` unrated items of ``fit`` (on all ratings), from the executors.

    ``recommend_all``'s columns (``user_id, rank, item_id, prediction, raw_prediction,
    source``), sorted by user then rank; ``user_ids``/``item_ids``: ``ids_by_index``.
    """
    from engine.recommend import COLUMNS, SOURCE_MODEL
    from engine.spark.recommend import fit_top_lists

    top = fit_top_lists(fit, ratings.ratings, k)
    scale = ratings.report.scale
    raw = top["raw_prediction"].to_numpy()
    return pd.DataFrame({
        "user_id": user_ids[top["u"].to_numpy()], "rank": top["rank"].to_numpy(),
        "item_id": item_ids[top["i"].to_numpy()],
        "prediction": np.clip(raw, scale.low, scale.high), "raw_prediction": raw,
        "source": SOURCE_MODEL,
    })[COLUMNS]  # fmt: skip


def rater_counts_in_spark(
    ratings: SparkRatings, membership: pd.DataFrame
) -> dict[object, tuple[int, int]]:
    """``engine.audit.rows.rater_counts`` counted in Spark: per group, raters and ratings."""
    from pyspark.sql import functions as F

    counted = (
        _members(ratings, membership)
        .join(ratings.ratings, "i")
        .groupBy("c")
        .agg(F.countDistinct("u").alias("raters"), F.count(F.lit(1)).alias("ratings"))
        .collect()
    )
    found = {row["c"]: (int(row["raters"]), int(row["ratings"])) for row in counted}
    return {group: found.get(c, (0, 0)) for c, group in enumerate(membership.columns)}


def ratings_by_listed_users(
    ratings: SparkRatings, lists: pd.DataFrame, ids: np.ndarray
) -> pd.Series:
    """Per item (index ``item_id``), its ratings by users with a list (RSP's candidates).

    ``ids``: the user ids by index (``ids_by_index``).
    """
    from pyspark.sql import functions as F

    from engine.spark.session import from_pandas, spark_session

    listed = pd.Index(ids).get_indexer(pd.unique(lists["user_id"]))
    users = from_pandas(spark_session(), pd.DataFrame({"u": listed.astype(np.int32)}), "u int")
    counts = (
        ratings.ratings.join(users, "u", "left_semi")
        .groupBy("i")
        .agg(F.count(F.lit(1)).alias("count"))
        .join(ratings.items, "i")
        .toArrow()
    )
    return pd.Series(
        counts.column("count").to_numpy().astype(np.int64),
        index=pd.Index(counts.column("item_id").to_pylist(), dtype="str", name="item_id"),
    )


def audit_spark(
    ratings: SparkRatings,
    evaluation: SparkEvaluation,
    config: AuditConfig | None = None,
    *,
    fit: SparkFit | None = None,
    model: ModelConfig | None = None,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    registry: Registry = REGISTRY,
    statistics: pd.DataFrame | None = None,
    popularity: pd.Series | None = None,
) -> AuditResult:
    """Audit ``ratings`` and their ``evaluation`` from what Spark computes (module docstring).

    ``fit``: the Spark engine fitted on all of ``ratings`` (the lists audited); fitted here
    with ``model`` (default ``ModelConfig(engine="spark")``) when not given.
    ``users``/``items``: attribute tables as ``RatingData.users``/``items`` (index the raw
    ids; one row per user or item, so they fit in memory). Returns an ``AuditResult`` as
    ``run_audit``'s, over the specs of ``registry`` that read only ``AVAILABLE_INPUTS``
    (its ``registry``); the notes say what was not audited. ``statistics``:
    ``user_statistics``' table if already computed (``engine.spark.report`` reads it too);
    ``popularity``: ``item_popularity``'s counts if already computed, likewise.

    Raises
    ------
    DataError
        ``evaluation.out`` does not hold ``evaluate_spark``'s Parquet tables.
    """
    from engine.spark.explanations import explanations_in_spark
    from engine.spark.train import fit_spark

    config = config or AuditConfig()
    config, source, rule, notes = audit_threshold(
        config, ratings.report.scale, evaluation.threshold
    )
    rng = np.random.default_rng(config.seed)
    statistics = user_statistics(ratings, evaluation) if statistics is None else statistics
    profile = statistics[list(PROFILE_COLUMNS)]
    user_ids = ids_by_index(ratings.users, "user_id", "u")
    item_ids = ids_by_index(ratings.items, "item_id", "i")
    fit = fit or fit_spark(ratings.ratings, model or ModelConfig(engine="spark"))
    k = min(config.k, len(item_ids))
    if k < config.k:
        notes.append(
            f"k = {config.k} exceeds the catalogue of {len(item_ids)} items; k = {k} used."
        )
    lists = audit_lists(ratings, fit, k, user_ids, item_ids)
    notes += unlisted_notes(profile, lists)
    popularity = item_popularity(ratings) if popularity is None else popularity
    popularity_groups = item_popularity_groups(popularity)
    genres = items["genres"] if items is not None and "genres" in items else None
    given = {
        "errors": statistics.loc[statistics["n"] > 0, list(ERROR_COLUMNS)],
        "ranking": statistics.loc[statistics["ndcg"].notna(), list(RANKING_METRICS)],
        "lists": lists, "popularity": popularity, "popularity_groups": popularity_groups,
        "long_tail": popularity_groups[LONG_TAIL], "profile": profile,
        "n_users": len(user_ids), "genres": genres,
        "history_genres": None if genres is None else history_genres_in_spark(ratings, genres),
        "explanations": explanations_in_spark(ratings, fit, lists, user_ids, item_ids)
        if config.explanations else None,
    }  # fmt: skip
    computed = audited_registry(registry)
    parts, events = audited(computed, computed.store(None, notes, given))  # type: ignore[arg-type]
    # reported: those, and the interaction share (it reads the ratings: summed in Spark below)
    metrics = audited_registry(registry, (*AVAILABLE_INPUTS, "ratings"))
    item_specs = [s for s in metrics if s.level == "item group"]
    user_groupings = user_groupings_of(users, profile, config, notes)
    item_groupings = item_groupings_of(
        items, popularity, popularity_groups, list(user_groupings), config, notes
    )
    rows = user_group_rows(metrics, parts, user_groupings, profile, config, rng)
    for grouping, membership in item_groupings.items() if item_specs else ():
        weights = dict((w[0].key, w) for w in event_weights(events, membership))
        if "interaction_share" in metrics:
            weights["interaction_share"] = (
                metrics["interaction_share"],
                *interaction_weights_in_spark(ratings, membership, statistics),
            )
        rows += exposure_rows_of_weights(
            grouping, membership, [weights[s.key] for s in item_specs if s.key in weights],
            rater_counts_in_spark(ratings, membership), config, rng,
            BY_DEFINITION.get(grouping, ()),
        )  # fmt: skip
        notes += empty_group_notes(grouping, membership)
    table = frame(rows)
    adjust(table)
    classify(table, config, [spec.key for spec in item_specs])
    notes += size_notes(table, list(user_groupings), list(item_groupings), config.min_group_size)
    yao = pd.DataFrame(
        [row for grouping, labels in user_groupings.items()
         for row in tables.yao_rows_of_sums(
             grouping, labels, yao_sums_in_spark(evaluation, labels, statistics),
             config.yao_min_ratings, notes)],
        columns=tables.YAO_COLUMNS,
    )  # fmt: skip
    catalogue = tables.catalogue_rows(
        lists, item_ids, item_groupings, ratings_by_listed_users(ratings, lists, user_ids),
        reo_counts_in_spark(ratings, evaluation, config.threshold), table,
    )  # fmt: skip
    findings = table[table["tier"].isin(["flagged", "notable"])]
    categories = item_groupings.get("genres")
    disparity = pd.DataFrame()
    if categories is not None:
        counts = {grouping: category_counts_in_spark(ratings, labels, statistics, categories)
                  for grouping, labels in user_groupings.items()}  # fmt: skip
        disparity = tables.bias_disparity_rows(user_groupings, categories, counts, lists)
    return AuditResult(
        config=config, metrics=table, catalogue=catalogue, yao=yao,
        delta_gap=tables.delta_gap(user_groupings[PROPENSITY], lists,
                                   profile["mean_popularity"], popularity),
        bias_disparity=disparity,
        hints=profile_hints(findings, user_groupings, profile, config, rng),
        notes=[*notes, KEPT_NOTE], threshold_source=source, relevance_rule=rule,
        attribute_groupings=attribute_groupings(users, items, user_groupings, item_groupings),
        lists=lists, registry=metrics,
    )  # fmt: skip


def _user_groups(labels: pd.Series, codes: np.ndarray, statistics: pd.DataFrame) -> DataFrame:
    """Spark's ``u, g``: each user of ``labels`` with a rating and its group's code.

    ``codes``: one per label (``-1``: no group, left out); ``statistics``' ``u`` maps the ids.
    """
    from engine.spark.session import from_pandas, spark_session

    u = statistics["u"].reindex(labels.index)
    kept = u.notna().to_numpy() & (np.asarray(codes) >= 0)
    frame = pd.DataFrame({"u": u[kept].to_numpy(np.int32), "g": codes[kept].astype(np.int32)})
    return from_pandas(spark_session(), frame, "u int, g int")


def _members(ratings: SparkRatings, membership: pd.DataFrame) -> DataFrame:
    """Spark's ``i, c``: each item of ``membership`` and the column number of each of its groups."""
    from engine.spark.session import from_pandas, spark_session

    items, columns = np.nonzero(membership.to_numpy(bool))
    frame = pd.DataFrame({"item_id": membership.index.to_numpy(object)[items],
                          "c": columns.astype(np.int32)})  # fmt: skip
    return (
        from_pandas(spark_session(), frame, "item_id string, c int")
        .join(ratings.items, "item_id")
        .select("i", "c")
    )


def evaluation_table(evaluation: SparkEvaluation, table: str) -> DataFrame:
    """Read one of ``evaluate_spark``'s Parquet tables (``fold`` from its folder names).

    Raises
    ------
    DataError
        The table's folder does not exist under ``evaluation.out``.
    """
    from engine.spark.session import spark_session

    path = location(evaluation.out) / table
    if not path.is_dir():
        raise DataError(
            f"{path} does not exist: audit_spark reads the folder that evaluate_spark wrote "
            "(its predictions/, lists/ and user_ranking/); evaluate again or pass that folder."
        )
    return spark_session().read.parquet(str(path))
