"""The report of ratings kept in Spark (``engine.spark.report``): the profile, split table,
accuracy, accuracy gaps and most recommended items counted in Spark equal those counted in
memory on the same ratings and Parquet outputs; the fingerprint ignores row order and sees a
changed rating; the four formats render, the JSON valid under the report's schema."""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import numpy as np
import pandas as pd
import pytest

from engine.audit.tables import Z_95
from engine.data.profile import dataset_profile
from engine.explain.titles import item_titles
from engine.protocols import Split, make_splits, split_table
from engine.report import SCHEMA_PATH
from engine.report.build import assemble_report
from engine.report.write import render
from tests.test_spark_support import (  # noqa: F401  (fixtures)
    MODEL,
    audited_fixture,
    evaluation_frame,
    spark_fixture,
    synthetic_fixture,
    toy_ratings,
)

START, DAY = 1_600_000_000, 86_400
pytestmark = [
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas"),
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
]


@pytest.fixture(scope="module")
def parts(audited_in_spark):
    """``report_parts_in_spark`` of the audited synthetic data (what ``report_spark`` uses)."""
    from engine.spark.report import report_parts_in_spark

    data, ratings, evaluation, result, statistics, _ = audited_in_spark
    return report_parts_in_spark(
        ratings, evaluation, result, MODEL, users=data.users, items=data.items,
        statistics=statistics, synthetic=data.synthetic,
    )  # fmt: skip


@pytest.fixture(scope="module")
def report(audited_in_spark, parts):
    """``report_spark``'s report: ``assemble_report`` of ``parts``."""
    return assemble_report(audited_in_spark[3], **parts.arguments())


def test_profile_counted_in_spark_equals_the_in_memory_profile(audited_in_spark, report):
    data = audited_in_spark[0]
    mine, theirs = report.profile, dataset_profile(data)
    pd.testing.assert_frame_equal(mine.rating_histogram, theirs.rating_histogram,
                                  check_dtype=False)  # fmt: skip
    for counts in ("user_activity", "item_popularity"):
        got, expected = getattr(mine, counts), getattr(theirs, counts)
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(),
                                       check_names=False, check_dtype=False)  # fmt: skip
        assert got.is_monotonic_decreasing
    summary, expected = mine.to_dict(), theirs.to_dict()
    assert summary.pop("name") == "ratings.csv" and expected.pop("name") == data.name
    assert summary.pop("rating_mean") == pytest.approx(expected.pop("rating_mean"), rel=1e-12)
    assert summary.pop("rating_std") == pytest.approx(expected.pop("rating_std"), rel=1e-12)
    assert summary == expected
    assert report.dataset["n_ratings"] == len(data.ratings) == report.profile.n_ratings


def _hashed_splits(ratings, evaluation, frame: pd.DataFrame) -> list[Split]:
    """The hashed folds read back from the held-out predictions, as ``Split`` masks."""
    held_out = evaluation_frame(ratings, evaluation, "predictions")
    fold = pd.Series(held_out["fold"].to_numpy(),
                     index=pd.MultiIndex.from_frame(held_out[["user_id", "item_id"]]))  # fmt: skip
    fold_of = fold.reindex(pd.MultiIndex.from_frame(frame[["user_id", "item_id"]])).to_numpy()
    assert not np.isnan(fold_of).any()  # every rating held out once
    return [Split(f, fold_of != f, fold_of == f) for f in range(evaluation.folds)]


def test_split_table_in_spark_equals_split_table_of_the_same_folds(audited_in_spark):
    from engine.spark.report import split_table_in_spark

    data, ratings, evaluation = audited_in_spark[:3]
    expected = split_table(data.ratings, _hashed_splits(ratings, evaluation, data.ratings))
    got = split_table_in_spark(ratings, evaluation)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["n_cold_items"].sum() > 0  # the check sees cold-start counts, not only zeros


def test_temporal_split_table_of_a_toy_equals_the_hand_checked_one(spark, tmp_path):
    """16 ratings on days 0..15, a fifth of the span tested: the cut is day 12, a rating's
    time, which is tested; so 12 train (the latest on day 11), 4 are tested, and u5 (days
    12-15) is a cold user. (K-fold's table is checked on the synthetic data's folds above.)"""
    from engine.spark.evaluate import evaluate_spark
    from engine.spark.load import load_ratings
    from engine.spark.report import split_table_in_spark

    toy = toy_ratings()
    toy["timestamp"] = START + DAY * toy["timestamp"]  # epoch times, read as times
    toy.to_csv(tmp_path / "toy.csv", index=False)
    ratings = load_ratings(tmp_path / "toy.csv")
    evaluation = evaluate_spark(ratings.ratings, (1, 5), tmp_path / "out", MODEL,
                                split="temporal", test_share=0.2, k=2, models=("SVD",))  # fmt: skip
    got = split_table_in_spark(ratings, evaluation)
    assert evaluation.test_start == START + 12 * DAY
    assert got.loc[0, ["n_train", "n_test"]].tolist() == [12, 4]
    assert got.loc[0, "train_latest"] == START + 11 * DAY
    assert got.loc[0, "n_cold_users"] == 1
    splits = make_splits(toy, "temporal", test_share=0.2)
    pd.testing.assert_frame_equal(got, split_table(toy, splits), check_dtype=False)


def test_accuracy_and_its_gaps_by_group_are_those_of_the_held_out_predictions(
    audited_in_spark, report
):
    data, ratings, evaluation, result = audited_in_spark[:4]
    assert report.accuracy["model"].unique().tolist() == ["SVD", "BaselineOnly", "Popularity"]
    assert "n_test" not in set(report.accuracy["metric"])
    minimum = result.config.min_group_size
    for model, table in (("SVD", "predictions"), ("BaselineOnly", "comparators/predictions")):
        held_out = _of_model(evaluation_frame(ratings, evaluation, table), model)
        error = held_out["prediction"] - held_out["rating"]
        accuracy = report.accuracy[report.accuracy["model"] == model].set_index("metric")
        rmse_by_fold = np.sqrt((error**2).groupby(held_out["fold"]).mean())
        assert accuracy.loc["rmse", "mean"] == pytest.approx(rmse_by_fold.mean(), rel=1e-12)
        lists = evaluation_frame(ratings, evaluation, table.replace("predictions", "lists"))
        lists = _of_model(lists, model)
        coverage = lists.groupby("fold")["item_id"].nunique() / data.n_items
        assert accuracy.loc["coverage", "mean"] == pytest.approx(coverage.mean(), rel=1e-12)
        tradeoff = report.tradeoff[report.tradeoff["model"] == model].set_index("grouping")
        assert tradeoff["overall_rmse"].to_numpy() == pytest.approx(
            np.sqrt((error**2).mean()), rel=1e-12
        )
        for attribute in ("gender", "age_band"):
            group = data.users[attribute].reindex(held_out["user_id"]).to_numpy()
            users = held_out.groupby(group)["user_id"].nunique()
            rmse = np.sqrt((error**2).groupby(group).mean())[users >= minimum]
            gap = tradeoff.loc[attribute, "max_gap"]
            assert gap == pytest.approx(rmse.max() - rmse.min(), rel=1e-12) and gap > 0


def test_ndcg_by_group_of_every_model_is_the_mean_of_its_users_fold_means(audited_in_spark, report):
    """``ranking_by_group``: per model and group, the mean over the group's users of each
    user's NDCG averaged over the folds, recomputed by pandas from the Parquet, and
    Popularity's paired difference from SVD with its interval; the SVD's equal the audit's
    NDCG rows, and the derived groupings are there too."""
    data, ratings, evaluation, result = audited_in_spark[:4]
    frame, minimum = report.ranking_by_group, result.config.min_group_size
    assert list(dict.fromkeys(frame["model"])) == ["SVD", "BaselineOnly", "Popularity"]
    assert {"gender", "age_band", "activity", "popularity propensity"} <= set(frame["grouping"])
    for model, table in (("SVD", "user_ranking"), ("Popularity", "comparators/user_ranking")):
        means = _of_model(evaluation_frame(ratings, evaluation, table), model)
        means = means.groupby("user_id")["ndcg"].mean()
        rows = frame[(frame["model"] == model) & (frame["grouping"] == "gender")]
        rows = rows.set_index("group")
        assert rows.loc["all users", "value"] == pytest.approx(means.mean(), rel=1e-12)
        by_group = means.groupby(data.users["gender"].reindex(means.index).to_numpy())
        for group, values in by_group:
            assert rows.loc[group, "n_users"] == len(values)
            expected = values.mean() if len(values) >= minimum else np.nan
            assert rows.loc[group, "value"] == pytest.approx(expected, rel=1e-12, nan_ok=True)
        if model == "SVD":
            svd = means
            continue
        paired = (means - svd).dropna()  # the same users, Popularity minus SVD
        assert rows.loc["all users", "difference"] == pytest.approx(paired.mean(), rel=1e-9)
        half = Z_95 * paired.std() / np.sqrt(len(paired))
        assert rows.loc["all users", "ci_high"] == pytest.approx(paired.mean() + half, rel=1e-9)
    audit = result.metrics[result.metrics["metric"] == "ndcg"]
    svd = frame[(frame["model"] == "SVD") & (frame["group"] != "all users")]
    joined = svd.merge(audit, on=["grouping", "group"], suffixes=("", "_audit"))
    assert len(joined) == len(svd) and joined["value"].notna().sum() > 4
    shown = joined[joined["value"].notna()]
    assert shown["value"].to_numpy() == pytest.approx(shown["value_audit"].to_numpy(), rel=1e-12)


def _of_model(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    """The rows of ``model`` in a comparators' table; an SVD table (no ``model``) as it is."""
    return frame[frame["model"] == model] if "model" in frame else frame


def test_comparators_in_spark_equal_surprise_baselineonly_and_popularity_on_the_same_folds(
    audited_in_spark,
):
    """On each hashed fold, Surprise's BaselineOnly and the in-memory Popularity model fitted
    on the fold's training ratings give the held-out predictions, top-k lists and per-user
    ranking metrics that evaluate_spark wrote for them, and their fold means."""
    from engine.evaluate import held_out_predictions, held_out_ranking
    from engine.metrics import RANKING_METRICS
    from engine.model.comparators import train_baseline, train_popularity
    from engine.recommend import DEFAULT_BLOCK_BYTES

    data, ratings, evaluation = audited_in_spark[:3]
    catalogue = ratings.items.toPandas().sort_values("i")["item_id"].to_numpy().astype(object)
    splits = _hashed_splits(ratings, evaluation, data.ratings)
    spark_tables = {
        table: evaluation_frame(ratings, evaluation, f"comparators/{table}")
        for table in ("predictions", "lists", "user_ranking")
    }
    metrics = evaluation.fold_metrics.set_index(["model", "fold", "metric"])["value"]
    k, threshold = evaluation.k, evaluation.threshold
    for split in splits:
        train, test = data.ratings[split.train], data.ratings[split.test]
        for model in (train_baseline(train, (1, 5), catalogue),
                      train_popularity(train, (1, 5), catalogue)):  # fmt: skip
            mine = {name: _of_model(table, model.name).query(f"fold == {split.fold}")
                    for name, table in spark_tables.items()}  # fmt: skip
            per_user, lists, coverage = held_out_ranking(
                model, test, k, threshold, DEFAULT_BLOCK_BYTES
            )
            got = mine["lists"].sort_values(["user_id", "rank"])[["user_id", "rank", "item_id"]]
            expected = lists.sort_values(["user_id", "rank"])[["user_id", "rank", "item_id"]]
            assert got.to_numpy().tolist() == expected.to_numpy().tolist()
            got = mine["user_ranking"].set_index("user_id").loc[per_user["user_id"]]
            assert got["n_relevant"].tolist() == per_user["n_relevant"].tolist()
            for metric in RANKING_METRICS:
                np.testing.assert_allclose(got[metric], per_user[metric], rtol=0, atol=1e-12)
                assert metrics[model.name, split.fold, metric] == pytest.approx(
                    per_user[metric].mean(), rel=1e-12
                )
            assert metrics[model.name, split.fold, "coverage"] == pytest.approx(coverage)
            if not model.predicts_ratings:
                assert mine["predictions"].empty  # Popularity predicts no rating
                continue
            frame, rmse, _ = held_out_predictions(model, test, split.fold)
            got = (
                mine["predictions"]
                .set_index(["user_id", "item_id"])
                .loc[pd.MultiIndex.from_frame(frame[["user_id", "item_id"]])]
            )
            np.testing.assert_allclose(got["prediction"], frame["prediction"], atol=1e-9)
            assert got["reason"].tolist() == frame["reason"].astype(str).tolist()
            assert got["was_impossible"].any()  # cold users or items fall back as in Surprise
            assert metrics[model.name, split.fold, "rmse"] == pytest.approx(rmse, rel=1e-9)


def test_most_recommended_items_are_counted_from_the_audited_lists(audited_in_spark, report):
    data, result = audited_in_spark[0], audited_in_spark[3]
    counts = result.lists["item_id"].value_counts()
    top = counts.sort_index().sort_values(ascending=False, kind="stable").head(10)
    titles = item_titles(data)
    assert report.top_items["title"].tolist() == [titles.get(i, i) for i in top.index]
    assert report.top_items["recommendations"].tolist() == top.tolist()
    popularity = data.ratings["item_id"].value_counts()
    assert report.top_items["ratings"].tolist() == popularity.reindex(top.index).tolist()


def test_the_saved_parts_give_the_same_report_without_spark_and_refuse_tampering(
    audited_in_spark, parts, report, tmp_path
):
    """``save_kept`` then ``kept_report``: the four formats byte for byte (the same created
    time, from the stored provenance); a modified file, and opening it as a saved analysis,
    are refused in one sentence."""
    from engine.saved import SavedAnalysisError, open_analysis
    from engine.saved.kept import is_kept, kept_report, open_kept, save_kept

    result = audited_in_spark[3]
    save_kept(tmp_path, parts, result, "file:///elsewhere/evaluation")
    assert is_kept(tmp_path) and not is_kept(tmp_path / "kept")
    again, result_again = kept_report(tmp_path)
    formats = ["html", "json", "csv"]
    assert render(again, formats) == render(report, formats)
    assert result_again.lists.equals(result.lists) and result_again.metrics.equals(result.metrics)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["evaluation"] == "file:///elsewhere/evaluation"
    assert sum(e["bytes"] for e in manifest["files"].values()) < 2_000_000  # aggregates only
    with pytest.raises(SavedAnalysisError, match="whose ratings stayed in Spark") as refused:
        open_analysis(tmp_path)  # update and compare open saved analyses
    assert "python -m engine report FOLDER --out DIR" in str(refused.value)
    assert "streamlit run dashboard/app.py -- --analysis FOLDER" in str(refused.value)
    table = tmp_path / "kept" / "parts" / "accuracy.parquet"
    table.write_bytes(table.read_bytes()[:-8] + b"tampered")
    with pytest.raises(SavedAnalysisError, match=r"accuracy\.parquet does not match its SHA-256"):
        open_kept(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "schema_version": "9"}))
    with pytest.raises(SavedAnalysisError, match="schema version '9' or fields this tool"):
        open_kept(tmp_path)
    # saved before the paired intervals (adc79f3): opened, the intervals absent (NaN)
    earlier = replace(parts, ranking_by_group=parts.ranking_by_group.iloc[:, :5])
    save_kept(tmp_path / "earlier", earlier, result, "x")
    ranking = open_kept(tmp_path / "earlier").parts.ranking_by_group
    assert list(ranking.columns) == list(parts.ranking_by_group.columns)
    assert ranking["difference"].isna().all() and ranking["value"].equals(
        parts.ranking_by_group["value"])  # fmt: skip


def test_fingerprint_ignores_row_order_and_sees_a_changed_rating_or_time(
    audited_in_spark, tmp_path
):
    from engine.spark.load import load_ratings
    from engine.spark.report import fingerprint_in_spark

    data, ratings = audited_in_spark[:2]
    original = fingerprint_in_spark(ratings)
    shuffled = data.ratings.sample(frac=1.0, random_state=3)
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    assert fingerprint_in_spark(load_ratings(tmp_path / "shuffled.csv")) == original
    for column, value in (("rating", 6 - shuffled["rating"].iloc[0] + 0.5),
                          ("timestamp", shuffled["timestamp"].iloc[0] + 1)):  # fmt: skip
        changed = shuffled.copy()
        changed.iloc[0, changed.columns.get_loc(column)] = value
        changed.to_csv(tmp_path / f"{column}.csv", index=False)
        assert fingerprint_in_spark(load_ratings(tmp_path / f"{column}.csv")) != original
    assert original.startswith("spark:")


def test_the_report_renders_in_the_four_formats_and_says_what_it_rests_on(audited_in_spark, report):
    data, _, evaluation, result = audited_in_spark[:4]
    files = render(report, "html,json,csv,pdf")
    document = json.loads(files["report.json"])
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(document)
    assert len(document["metrics"]) == len(result.metrics)
    evaluation_settings = document["model"]["evaluation"]
    assert evaluation_settings["models"] == ["SVD", "BaselineOnly", "Popularity"]
    assert evaluation_settings["folds"] == evaluation.folds == 2
    assert evaluation_settings["protocol"].startswith("2-fold cross-validation by hash")
    assert evaluation_settings["fold_assignment"] == "hash"  # the field the HTML reads
    assert document["provenance"]["dataset"]["rows_kept"] == len(data.ratings)
    assert document["provenance"]["versions"]["pyspark"] != "not installed"
    html = files["report.html"].decode()
    assert files["report.pdf"].startswith(b"%PDF")
    assert "<p>2-fold cross-validation by hash (seed 0)" in html
    # SVD and BaselineOnly predict ratings: one trade-off chart per attribute, not one table
    assert "Accuracy gap by user attribute" not in html
    assert "Accuracy vs fairness by gender (lower-left is better)" in html
    assert document["audit_config"]["explanations"] is True
    assert "Explanation fidelity by group" in html  # audited on this route too
    assert files["metrics.csv"].decode().count("\n") == len(result.metrics) + 1


def test_cli_run_keeps_the_ratings_in_spark_and_writes_the_report(
    spark, synthetic_folder, tmp_path, capsys
):
    """``run --engine spark --keep-in-spark``: the report of the audit with the planted
    under-served minority (55+) flagged on RMSE, no saved analysis but the report's parts, from
    which ``report OUT`` writes the same files without Spark, and the user side. The data is
    read and the Parquet tables written at ``file://`` URIs, through Hadoop's file system as
    on a cluster (``--spark-tables``); the temporal split (one split: faster; K-fold in Spark
    is checked on ``audited_in_spark``'s folds)."""
    from engine.cli import main
    from engine.saved.kept import is_kept

    out, tables = tmp_path / "kept", tmp_path / "tables"
    code = main(["run", synthetic_folder.as_uri(), "--spark-tables", tables.as_uri(),
                 "--engine", "spark", "--keep-in-spark", "--split", "temporal",
                 "--out", str(out), "--format", "json,csv", "--factors", "5",
                 "--epochs", "5", "--bootstrap", "100", "--seed", "4"])  # fmt: skip
    assert code == 0
    said = json.loads(capsys.readouterr().out)
    assert said["saved_analysis"].startswith("none") and is_kept(out)  # the report's parts
    assert said["evaluation"] == tables.as_uri()
    assert sorted(p.name for p in (out / "report").iterdir()) == ["metrics.csv", "report.json"]
    n_ratings = len(pd.read_csv(synthetic_folder / "ratings.csv"))
    n_held_out = len(pd.read_parquet(tables / "predictions"))
    document = json.loads((out / "report" / "report.json").read_text())
    assert document["dataset"]["n_ratings"] == n_ratings and document["dataset"]["synthetic"]
    evaluated = document["model"]["evaluation"]
    assert evaluated["split"] == "temporal" and evaluated["folds"] == 1
    assert 0 < n_held_out < n_ratings
    assert f"tested on the {n_held_out:,} " in evaluated["protocol"]
    models = ["BaselineOnly", "Popularity"]  # SVD is always evaluated
    assert evaluated["models"] == ["SVD", *models]
    listed = sorted(p.name for p in (tables / "comparators" / "lists").iterdir() if p.is_dir())
    assert listed == [f"model={m}" for m in models]
    rows = pd.DataFrame(document["metrics"])
    minority = rows[(rows["metric"] == "rmse") & (rows["group"] == "55+")].iloc[0]
    assert minority["flag"] and minority["ratio"] > 1.2
    assert not rows[rows["grouping"] == "region"]["flag"].any()  # a control attribute
    assert "interaction_share" in set(rows["metric"])
    # the report written again from the stored parts, without Spark
    assert main(["report", str(out), "--out", str(tmp_path / "again"),
                 "--format", "json,csv"]) == 0  # fmt: skip
    for name in ("report.json", "metrics.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (out / "report" / name).read_bytes()
    _check_user_side(out, synthetic_folder)


def _check_user_side(out, folder):
    """The run's user side: each user's ratings are the file's, the ratings per item the
    file's counts, and the stored user vector the exact refit of those ratings on the stored
    item side (so the user pages explain the final fit)."""
    from engine import load_dataset
    from engine.saved.kept import open_kept

    data = load_dataset(folder)
    side = open_kept(out).users
    assert list(side.user_ids) == sorted(data.ratings["user_id"].unique())
    counts = data.ratings["item_id"].value_counts().reindex(side.item_ids)
    np.testing.assert_array_equal(side.item_counts, counts.to_numpy())
    for user_id in side.user_ids[:: max(1, len(side.user_ids) // 20)]:
        mine = side.data_for(user_id).ratings
        expected = data.ratings[data.ratings["user_id"] == user_id].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, expected)
        model = side.model_for(user_id)
        user = side.user_index(user_id)
        vector = model.user_vector(user)
        refit = model.fold_in(model.interactions.item_ids[vector.items], vector.ratings)
        np.testing.assert_allclose(refit.pu, side.P[user], atol=1e-6)
        assert refit.bu == pytest.approx(side.bu[user], abs=1e-6)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ([], "--keep-in-spark keeps the ratings in Spark: add --engine spark."),
        (["--engine", "spark", "--split", "last-n"],
         "--split last-n is not available with --keep-in-spark"),
        (["--engine", "spark", "--models", "SVD,KNNBaseline,Popularity"],
         "--models KNNBaseline is not available with --keep-in-spark: where the ratings lie "
         "the models are SVD,BaselineOnly,Popularity"),
        (["--engine", "spark", "--over-time", "month"],
         "--over-time is not available with --keep-in-spark"),
    ],
)  # fmt: skip
def test_cli_refuses_what_the_ratings_kept_in_spark_cannot_give(
    tmp_path, capsys, options, fragment
):
    from engine.cli import main

    code = main(["run", "sample_data", "--keep-in-spark", "--out", str(tmp_path / "x"), *options])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_cli_refuses_spark_tables_without_keep_in_spark(tmp_path, capsys):
    from engine.cli import main

    out = tmp_path / "x"
    code = main(["run", "sample_data", "--spark-tables", "hdfs://nn/t", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--spark-tables names where --keep-in-spark writes" in err
    assert "Traceback" not in err and not out.exists()
    code = main(["run", "sample_data", "--no-user-side", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--no-user-side leaves out the user side" in err
    assert "Traceback" not in err and not out.exists()


def test_a_file_spark_cannot_read_cannot_stay_in_spark(tmp_path):
    import gzip

    from engine.errors import DataError
    from engine.spark.inputs import load_kept_inputs

    (tmp_path / "ratings.csv.gz").write_bytes(gzip.compress(b"user,item,rating\nu1,i1,4\n"))
    with pytest.raises(DataError) as raised:
        load_kept_inputs(ratings=tmp_path / "ratings.csv.gz")
    assert str(raised.value) == (
        "ratings.csv.gz cannot stay in Spark: Spark reads CSV/TSV/Parquet only, not gzip. "
        "Convert the ratings to CSV, TSV or Parquet on disk, or leave out --keep-in-spark to "
        "read them in memory."
    )
