"""The audit of ratings kept in Spark (``engine.spark.audit``): its per-user, per-group and
per-item sums equal the in-memory audit's inputs built from the same Parquet outputs; the
rows, Yao & Huang and REO equal the audit's own code run on those inputs; the planted
under-served minority of the synthetic data is flagged and the control attributes are not."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from engine.audit import inputs, measures, tables
from engine.audit.groups import LONG_TAIL, PROPENSITY, item_popularity_groups
from engine.audit.registry import audited
from engine.audit.rows import adjust, classify, exposure_rows, frame, rater_counts
from engine.audit.run import BY_DEFINITION, item_groupings_of, user_group_rows, user_groupings_of
from engine.errors import DataError
from engine.metrics import RANKING_METRICS
from engine.recommend import recommend_all
from tests.test_spark_support import (  # noqa: F401  (fixtures)
    CONFIG,
    MODEL,
    audited_fixture,
    evaluation_frame,
    spark_fixture,
    synthetic_fixture,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


def _reference_inputs(data, ratings, evaluation, model, k):
    """The in-memory audit's inputs (engine.audit.inputs) from the same Parquet outputs."""
    lists = recommend_all(model, k)
    explained = inputs.explanations(
        SimpleNamespace(config=CONFIG), {"model": model, "lists": lists}
    )
    popularity = data.ratings["item_id"].value_counts()
    groups = item_popularity_groups(popularity)
    ranking = evaluation_frame(ratings, evaluation, "user_ranking")
    genres = data.items["genres"]
    return {
        "ratings": data.ratings, "popularity": popularity, "popularity_groups": groups,
        "genres": genres,
        "history_genres": inputs.history_genres(None, {"ratings": data.ratings, "genres": genres}),
        "long_tail": groups[LONG_TAIL], "n_users": data.n_users,
        "profile": inputs.profile(None, {"ratings": data.ratings, "popularity": popularity}),
        "oof": evaluation_frame(ratings, evaluation, "predictions"),
        "errors": inputs.error_sums_by_user(evaluation_frame(ratings, evaluation, "predictions")),
        "ranking": ranking.groupby("user_id")[list(RANKING_METRICS)].mean(),
        "lists": lists, "model": model, "explanations": explained,
    }  # fmt: skip


def test_per_user_sums_in_spark_equal_the_in_memory_audit_inputs(audited_in_spark):
    data, ratings, evaluation, result, statistics, model = audited_in_spark
    x = _reference_inputs(data, ratings, evaluation, model, result.config.k)
    assert len(statistics) == data.n_users  # one row per user: it grows with users only
    pd.testing.assert_frame_equal(
        statistics[["n_ratings", "mean_rating", "mean_popularity"]], x["profile"],
        check_names=False, check_dtype=False, rtol=1e-12,
    )  # fmt: skip
    held_out = statistics[statistics["n"] > 0]
    assert held_out.index.equals(x["errors"].index) and len(held_out) == data.n_users
    np.testing.assert_allclose(held_out[["se", "ae", "n"]].to_numpy(), x["errors"].to_numpy(),
                               rtol=1e-12)  # fmt: skip
    from engine.spark.audit import history_genres_in_spark

    mix = history_genres_in_spark(ratings, data.items["genres"])
    assert len(mix) == data.n_users and mix.shape[1] >= 10  # every user rated a genre
    pd.testing.assert_frame_equal(mix, x["history_genres"], check_names=False, rtol=1e-12)
    ranked = statistics[statistics["ndcg"].notna()]
    assert ranked.index.equals(x["ranking"].index) and len(ranked) > 0
    np.testing.assert_allclose(ranked[list(RANKING_METRICS)].to_numpy(),
                               x["ranking"].to_numpy(), rtol=1e-12)  # fmt: skip


def test_explanation_measures_in_spark_equal_the_in_memory_measures(audited_in_spark):
    from engine.spark.audit import ids_by_index
    from engine.spark.explanations import explanations_in_spark
    from engine.spark.train import fit_spark

    data, ratings, evaluation, result, _, model = audited_in_spark
    expected = _reference_inputs(data, ratings, evaluation, model, result.config.k)
    explained = expected["explanations"]
    # three of n_u ratings hold at least 3 / n_u of the effect, and at most all of it
    floor = 3 / data.ratings.groupby("user_id").size().reindex(explained.index)
    assert len(explained) == data.n_users
    assert (explained["support"] >= floor - 1e-12).all() and (explained["support"] <= 1).all()
    assert (explained["fidelity"] > 0).mean() > 0.9  # deleting supporting ratings lowers it
    fit = fit_spark(ratings.ratings, MODEL)
    users, items = (
        ids_by_index(ratings.users, "user_id", "u"),
        ids_by_index(ratings.items, "item_id", "i"),
    )
    measured = explanations_in_spark(ratings, fit, result.lists, users, items)
    pd.testing.assert_frame_equal(measured, explained, check_index_type=False, rtol=1e-9)
    # by hand, user by user: the three most positive terms of the top-1 item deleted, the
    # user refolded through the model's own fold_in and scored
    firsts = result.lists[result.lists["rank"] == 1].set_index("user_id")["item_id"]
    drops = []
    for user in explained.index:
        index = model.interactions.user_index([user])[0]
        top = model.interactions.item_index([firsts[user]])
        c = inputs.history_contributions(model, index, top)[:, 0]
        vector = model.user_vector(index)
        keep = np.ones(len(c), bool)
        keep[[j for j in np.argsort(-c)[:3] if c[j] > 0]] = False
        refolded = model.fold_in(model.interactions.item_ids[vector.items[keep]],
                                 vector.ratings[keep])  # fmt: skip
        drops.append(model.score_items(vector, top)[0] - model.score_items(refolded, top)[0])
    np.testing.assert_allclose(measured["fidelity"], drops, rtol=1e-9)


def test_lists_of_the_fit_on_all_ratings_equal_recommend_all_of_that_model(audited_in_spark):
    data, result, model = audited_in_spark[0], audited_in_spark[3], audited_in_spark[5]
    expected = recommend_all(model, result.config.k)
    assert len(expected) == data.n_users * result.config.k
    pd.testing.assert_frame_equal(result.lists, expected, check_dtype=False, rtol=0, atol=1e-12)


def test_metric_rows_equal_the_audit_code_on_the_in_memory_inputs(audited_in_spark):
    from engine.spark.audit import AVAILABLE_INPUTS, audited_registry

    data, ratings, evaluation, result, _, model = audited_in_spark
    config = result.config
    x = _reference_inputs(data, ratings, evaluation, model, config.k)
    # the interaction share reads the ratings: in memory here, summed in Spark there
    registry, notes = audited_registry(available=(*AVAILABLE_INPUTS, "ratings")), []
    parts, events = audited(registry, registry.store(None, notes, x))
    users = user_groupings_of(data.users, x["profile"], config, notes)
    items = item_groupings_of(data.items, x["popularity"], x["popularity_groups"], list(users),
                              config, notes)  # fmt: skip
    rng = np.random.default_rng(config.seed)
    rows = user_group_rows(registry, parts, users, x["profile"], config, rng)
    for grouping, membership in items.items():
        rows += exposure_rows(grouping, membership, events, rater_counts(data.ratings, membership),
                              config, rng, BY_DEFINITION.get(grouping, ()))  # fmt: skip
    expected = frame(rows)
    adjust(expected)
    classify(expected, config, ["exposure_share", "interaction_share"])
    assert set(result.metrics["metric"]) == {"rmse", "mae", "ndcg", "recall", "arp", "aplt",
                                             "aclt", "novelty", "miscalibration",
                                             "explanation_support", "deletion_fidelity",
                                             "exposure_share", "interaction_share"}  # fmt: skip
    shares = result.metrics[result.metrics["metric"] == "interaction_share"]
    assert shares["ci_low"].notna().sum() >= 10  # bootstrapped over users, as in memory
    assert set(result.metrics["grouping"]) == set(users) | set(items)
    pd.testing.assert_frame_equal(result.metrics, expected, rtol=1e-9)
    gap = tables.delta_gap(users[PROPENSITY], x["lists"], x["profile"]["mean_popularity"],
                           x["popularity"])  # fmt: skip
    pd.testing.assert_frame_equal(result.delta_gap, gap, rtol=1e-12)
    disparity = tables.bias_disparity(users, items, data.ratings, x["lists"])
    assert len(disparity) >= 50 and set(disparity["grouping"]) == set(users)
    pd.testing.assert_frame_equal(result.bias_disparity, disparity, rtol=1e-12)


def test_yao_and_the_catalogue_equal_the_in_memory_measures(audited_in_spark):
    data, ratings, evaluation, result, _, model = audited_in_spark
    config = result.config
    x = _reference_inputs(data, ratings, evaluation, model, config.k)
    groupings = user_groupings_of(data.users, x["profile"], config, [])
    expected = pd.DataFrame(
        [row for grouping, labels in groupings.items()
         for row in tables.yao_rows(grouping, labels, x["oof"], config.yao_min_ratings, [])],
        columns=tables.YAO_COLUMNS,
    )  # fmt: skip
    assert len(expected) >= 10
    pd.testing.assert_frame_equal(result.yao, expected, rtol=1e-9)
    # catalogue: the measures' own definitions on the in-memory tables; REO: std/mean over
    # item groups of the hit rate of relevant held-out pairs, fold by fold, mean over folds
    lists, oof, membership = x["lists"], x["oof"], x["popularity_groups"]
    folds = evaluation_frame(ratings, evaluation, "lists")
    relevant = oof[oof["rating"] >= config.threshold]
    by_fold = [
        measures.reo(folds[folds["fold"] == f], membership, relevant[relevant["fold"] == f])
        for f in sorted(folds["fold"].unique())
    ]
    assert len(by_fold) == 2 and np.isfinite(by_fold).all()
    catalogue = result.catalogue.set_index(["metric", "grouping"])["value"]
    items = data.ratings["item_id"].unique()
    assert catalogue["pop_reo", "item popularity"] == pytest.approx(np.mean(by_fold), rel=1e-12)
    assert catalogue["pop_rsp", "item popularity"] == pytest.approx(
        measures.rsp(lists, membership, data.ratings), rel=1e-12)  # fmt: skip
    assert catalogue["coverage", ""] == measures.coverage(lists, len(items))
    assert catalogue["gini_exposure", ""] == pytest.approx(measures.exposure_gini(lists, items))
    assert {"genres", "provider"} <= set(result.catalogue["grouping"])


def test_the_planted_minority_is_flagged_and_the_control_is_not(audited_in_spark):
    # engine.synth: users aged 55+ are predicted worse (hidden factors the others lack);
    # region carries no effect at all
    result = audited_in_spark[3]
    rows = result.metrics.set_index(["metric", "grouping", "group"])
    for metric in ("rmse", "mae"):
        minority = rows.loc[(metric, "age_band", "55+")]
        assert minority["tier"] == "flagged" and minority["direction"] == "worse"
        assert minority["ratio"] > 1.2
    assert not result.metrics.loc[result.metrics["grouping"] == "region", "flag"].any()
    assert any(h["group"] == "55+" and h["metric"] == "rmse" for h in result.hints)
    from engine.spark.audit import KEPT_NOTE

    assert KEPT_NOTE in result.notes


def test_without_a_fit_the_audit_fits_the_model_it_is_given(audited_in_spark):
    from engine.spark.audit import audit_spark

    data, ratings, evaluation, result = audited_in_spark[:4]
    again = audit_spark(ratings, evaluation, CONFIG, model=MODEL, users=data.users,
                        items=data.items)  # fmt: skip
    pd.testing.assert_frame_equal(again.lists, result.lists, rtol=0, atol=1e-9)
    pd.testing.assert_frame_equal(again.metrics, result.metrics, rtol=1e-9)


def test_an_audit_without_the_evaluation_folder_says_what_to_do(audited_in_spark, tmp_path):
    from dataclasses import replace

    from engine.spark.audit import audit_spark

    ratings, evaluation = audited_in_spark[1:3]
    with pytest.raises(DataError, match="predictions does not exist: audit_spark reads"):
        audit_spark(ratings, replace(evaluation, out=tmp_path / "nowhere"), CONFIG)
