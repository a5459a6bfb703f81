"""Cross-validation: paired folds, complete out-of-fold predictions, Surprise-equal RMSE."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tracemalloc
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from surprise import SVD, accuracy

from engine import ConfigError, DataError, DataFile, load_dataset
from engine.evaluate import LIST_METRICS, EvaluationConfig, assign_folds, evaluate
from engine.model import ModelConfig, train_svd
from engine.model.base import surprise_trainset
from engine.recommend import top_k_indices
from engine.synth import SynthConfig, generate, write_dataset

SMALL = ModelConfig(n_factors=8, n_epochs=15, refit_users=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synth")
    write_dataset(generate(SynthConfig(n_users=100, n_items=120, n_ratings=4000, seed=2)), folder)
    return load_dataset(folder)


@pytest.fixture(scope="module")
def result(data):
    return evaluate(data, SMALL, EvaluationConfig(folds=3, k=5))


def test_folds_partition_the_ratings_evenly():
    fold = assign_folds(1003, 5, seed=4)
    counts = np.bincount(fold)
    assert counts.tolist() == [201, 201, 201, 200, 200]
    assert not np.array_equal(fold, assign_folds(1003, 5, seed=5))
    np.testing.assert_array_equal(fold, assign_folds(1003, 5, seed=4))


def test_every_rating_is_predicted_once_per_rating_model(data, result):
    for model in ("SVD", "BaselineOnly", "KNNBaseline"):
        rows = result.predictions[result.predictions["model"] == model]
        assert len(rows) == data.n_ratings
        pairs = rows[["user_id", "item_id"]].apply(tuple, axis=1)
        assert pairs.is_unique
    assert "Popularity" not in set(result.predictions["model"])
    folds = result.predictions.groupby("model")["fold"].apply(lambda f: f.to_numpy())
    np.testing.assert_array_equal(folds["SVD"], folds["KNNBaseline"])  # paired


def test_predictions_are_grouped_by_model_then_split(result):
    # one contiguous block per model, in MODEL_NAMES order, splits in order within it
    frame = result.predictions
    models = frame["model"].astype(str).to_numpy()
    starts = np.flatnonzero(np.r_[True, models[1:] != models[:-1]])
    assert models[starts].tolist() == ["SVD", "BaselineOnly", "KNNBaseline"]
    for model, block in frame.groupby("model", observed=True, sort=False):
        assert (np.diff(block["fold"].to_numpy()) >= 0).all(), model


def test_fold_rmse_equals_surprise_accuracy_on_the_same_split(data, result):
    fold_of = assign_folds(data.n_ratings, 3, 0)
    train, test = data.ratings[fold_of != 0], data.ratings[fold_of == 0]
    algo = SVD(n_factors=8, n_epochs=15, random_state=0).fit(surprise_trainset(train, (1, 5)))
    testset = list(test[["user_id", "item_id", "rating"]].itertuples(index=False, name=None))
    expected = accuracy.rmse(algo.test(testset), verbose=False)
    metrics = result.fold_metrics
    got = metrics.query("model == 'SVD' and fold == 0 and metric == 'rmse'")["value"].item()
    assert got == pytest.approx(expected, abs=1e-12)


def test_summary_and_json(result):
    summary = result.summary()
    assert summary.index.tolist() == ["SVD", "BaselineOnly", "KNNBaseline", "Popularity"]
    assert np.isnan(summary.loc["Popularity", ("rmse", "mean")])
    out = result.to_dict()
    assert len(out["models"]["SVD"]["rmse"]["folds"]) == 3
    assert 0 <= out["models"]["Popularity"]["ndcg"]["mean"] <= 1
    assert out["relevance_threshold"] == 4.0 and out["threshold_source"] == "scale"
    assert out["notes"] == []


def test_unknown_users_in_a_fold_are_flagged_not_dropped():
    rows = ["user,item,rating"] + [f"u{u},i{i},{(u * i) % 5 + 1}" for u in range(6)
                                   for i in range(6)] + ["loner,i1,5"]  # fmt: skip
    data = load_dataset(DataFile("r.csv", ("\n".join(rows) + "\n").encode()))
    result = evaluate(data, SMALL, EvaluationConfig(folds=2, k=3, models=("SVD",)))
    loner = result.predictions[result.predictions["user_id"] == "loner"]
    assert len(loner) == 1
    assert loner["was_impossible"].item()
    assert loner["reason"].item() == "user not in training fold"
    assert np.isfinite(loner["prediction"].item())


def test_fewer_ratings_than_folds_is_a_clear_error():
    data = load_dataset(DataFile("r.csv", b"user,item,rating\na,x,1\nb,y,5\na,y,3\n"))
    with pytest.raises(DataError, match="has 3 ratings, fewer than the 5 folds"):
        evaluate(data, SMALL)


def test_same_seed_same_evaluation(data):
    a = evaluate(data, SMALL, EvaluationConfig(folds=2, k=5, models=("SVD",)))
    b = evaluate(data, SMALL, EvaluationConfig(folds=2, k=5, models=("SVD",)))
    pd.testing.assert_frame_equal(
        a.fold_metrics.query("metric != 'fit_seconds'"),
        b.fold_metrics.query("metric != 'fit_seconds'"),
    )


def test_ranking_metrics_equal_a_brute_force_ranking(data, result):
    fold_of = assign_folds(data.n_ratings, 3, 0)
    train, test = data.ratings[fold_of != 0], data.ratings[fold_of == 0]
    model = train_svd(train, (1.0, 5.0), SMALL)
    users = result.user_ranking.query("model == 'SVD' and fold == 0").set_index("user_id")
    checked = 0
    for user_id, row in users.head(15).iterrows():
        u = model.interactions.user_index([user_id])[0]
        rated = set(model.interactions.history(u)[0])
        scores = model.score_block(np.array([u]))[0]
        candidates = [i for i in range(model.interactions.n_items) if i not in rated]
        ranked = sorted(candidates, key=lambda i: (-scores[i], model.interactions.item_ids[i]))
        top = model.interactions.item_ids[ranked[:5]]
        mine = test[(test["user_id"] == user_id) & (test["rating"] >= 4)]
        relevant = set(mine["item_id"])
        hits = [item in relevant for item in top]
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(5, len(relevant))))
        assert row["n_relevant"] == len(relevant)
        assert row["precision"] == pytest.approx(sum(hits) / 5)
        assert row["recall"] == pytest.approx(sum(hits) / len(relevant))
        assert row["ndcg"] == pytest.approx(dcg / idcg)
        checked += sum(hits)
    assert checked > 0  # the comparison exercised at least one hit
    mean = result.fold_metrics.query("model == 'SVD' and fold == 0 and metric == 'ndcg'")
    assert mean["value"].item() == pytest.approx(users["ndcg"].mean())


def csv_data(name: str, rows: list[tuple[str, str, float]]):
    lines = ["user,item,rating"] + [f"{u},{i},{r:g}" for u, i, r in rows]
    return load_dataset(DataFile(name, ("\n".join(lines) + "\n").encode()))


def strict_json(document: dict) -> dict:
    """Round-trip through JSON that refuses NaN and infinity."""
    return json.loads(json.dumps(document, allow_nan=False))


def test_threshold_above_the_scale_gives_na_ranking_metrics_not_a_key_error(data):
    result = evaluate(data, SMALL, EvaluationConfig(folds=2, k=5, threshold=6))
    metrics = result.fold_metrics.set_index(["model", "fold", "metric"])["value"]
    for model in ("SVD", "BaselineOnly", "KNNBaseline", "Popularity"):
        for fold in (0, 1):
            assert all(np.isnan(metrics[(model, fold, m)]) for m in LIST_METRICS)
            assert metrics[(model, fold, "n_users_ranked")] == 0
    assert np.isfinite(metrics[("SVD", 0, "rmse")]) and np.isfinite(metrics[("SVD", 1, "mae")])
    assert result.user_ranking.empty and "ndcg" in result.user_ranking.columns
    assert result.top_lists.empty and "item_id" in result.top_lists.columns
    assert result.threshold_source == "given" and result.evaluation.threshold == 6
    assert "above the top of the 1-5 rating scale, so no rating can be relevant" in result.notes[0]
    assert "no held-out rating >= 6 in any of the 2 folds" in result.notes[1]
    summary = result.summary()
    assert np.isnan(summary.loc["SVD", ("ndcg", "mean")])  # the column is kept, not dropped
    assert np.isfinite(summary.loc["SVD", ("rmse", "mean")])
    out = strict_json(result.to_dict())
    assert out["models"]["SVD"]["ndcg"] == {"mean": None, "std": None, "folds": [None, None]}
    assert out["models"]["SVD"]["rmse"]["mean"] > 0
    assert out["notes"] == result.notes


def test_a_fold_without_a_relevant_rating_is_na_and_the_mean_is_over_the_others(data):
    fold_of = assign_folds(data.n_ratings, 2, 0)
    ratings = data.ratings.copy()
    low = (fold_of == 0) & (ratings["rating"] >= 4)
    ratings.loc[low, "rating"] = 3.0  # fold 0 holds no rating >= 4
    result = evaluate(replace(data, ratings=ratings), SMALL,
                      EvaluationConfig(folds=2, k=5, models=("SVD",)))  # fmt: skip
    values = result.fold_metrics.set_index(["fold", "metric"])["value"]
    assert np.isnan(values[(0, "ndcg")]) and np.isnan(values[(0, "coverage")])
    assert 0 < values[(1, "ndcg")] <= 1
    assert result.summary().loc["SVD", ("ndcg", "mean")] == pytest.approx(values[(1, "ndcg")])
    assert result.notes == [
        "The ranking metrics (precision, recall, NDCG, MAP, hit rate and coverage) are n/a in "
        "fold 0 for every model: no held-out rating >= 4 in fold 0; their means are over the "
        "other folds."
    ]
    out = strict_json(result.to_dict())
    assert out["models"]["SVD"]["ndcg"]["folds"][0] is None
    assert out["models"]["SVD"]["ndcg"]["mean"] == pytest.approx(values[(1, "ndcg")])


def test_users_with_one_rating_each_keep_rmse_and_say_why_ranking_is_na():
    data = csv_data("single.csv", [(f"u{u}", f"i{u % 7}", u % 5 + 1) for u in range(40)])
    result = evaluate(data, SMALL, EvaluationConfig(folds=3, k=3))
    assert np.isfinite(result.summary().loc["SVD", ("rmse", "mean")])
    assert np.isnan(result.summary().loc["SVD", ("precision", "mean")])
    assert len(result.notes) == 1
    assert "in none of the 3 folds does a user with a held-out rating >= 4 have a rating in " \
        "the training folds" in result.notes[0]  # fmt: skip
    strict_json(result.to_dict())


def test_thumbs_data_takes_its_threshold_from_the_scale():
    rows = [(f"u{u}", f"i{i}", 1 if (u * i) % 3 else -1) for u in range(10) for i in range(10)]
    data = csv_data("thumbs.csv", rows)
    result = evaluate(data, SMALL, EvaluationConfig(folds=2, k=3, models=("SVD",)))
    assert result.evaluation.threshold == 1 and result.threshold_source == "scale"
    assert result.relevance_rule == (
        "relevant = rating >= 1, three quarters of the way up the -1 to 1 scale (rounded up to "
        "a rating step)"
    )
    assert result.notes == []
    assert np.isfinite(result.summary().loc["SVD", ("ndcg", "mean")])
    given = evaluate(data, SMALL, EvaluationConfig(folds=2, k=3, threshold=4, models=("SVD",)))
    assert np.isnan(given.summary().loc["SVD", ("ndcg", "mean")])
    assert "no held-out rating >= 4 in any of the 2 folds" in given.notes[-1]


def test_threshold_default_is_the_top_quarter_of_a_1_to_10_scale():
    rows = [(f"u{u}", f"i{i}", (u + 2 * i) % 10 + 1) for u in range(12) for i in range(12)]
    data = csv_data("ten.csv", rows)
    assert (data.scale.low, data.scale.high) == (1, 10)
    result = evaluate(data, SMALL, EvaluationConfig(folds=2, k=3, models=("SVD",)))
    assert result.evaluation.threshold == 8
    assert result.relevance_rule == (
        "relevant = rating >= 8, three quarters of the way up the 1-10 scale (rounded up to a "
        "rating step)"
    )
    relevant = result.user_ranking["n_relevant"].sum()
    assert relevant == (data.ratings["rating"] >= 8).groupby(data.ratings["user_id"]).sum().sum()
    given = evaluate(data, SMALL, EvaluationConfig(folds=2, k=3, threshold=7, models=("SVD",)))
    assert given.evaluation.threshold == 7 and given.threshold_source == "given"
    assert given.to_dict()["relevance_rule"] == (
        "relevant = rating >= 7, as given (the rating scale is 1-10)"
    )
    low = evaluate(data, SMALL, EvaluationConfig(folds=2, k=3, threshold=1, models=("SVD",)))
    assert "every held-out rating is relevant" in low.notes[0]


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "0"])
def test_seed_must_be_an_integer_in_the_32_bit_range(seed):
    with pytest.raises(ConfigError, match=r"EvaluationConfig\.seed=.* is not allowed: use an "
                                          r"integer in \[0, 4294967295\]"):  # fmt: skip
        EvaluationConfig(seed=seed)
    assert EvaluationConfig(seed=2**32 - 1).seed == 2**32 - 1


@pytest.mark.parametrize("threshold", [float("nan"), float("inf"), "4"])
def test_threshold_must_be_a_finite_number_or_none(threshold):
    with pytest.raises(ConfigError, match=r"EvaluationConfig\.threshold=.* use a finite rating"):
        EvaluationConfig(threshold=threshold)


def test_evaluation_ids_keep_the_data_id_dtype(data, result):
    # evaluate() reads ids as Python objects internally (speed); its tables must not show it
    for table in (result.predictions, result.user_ranking, result.top_lists):
        assert table["user_id"].dtype == data.ratings["user_id"].dtype
    for table in (result.predictions, result.top_lists):
        assert table["item_id"].dtype == data.ratings["item_id"].dtype


def _top_k_by_full_sort(scores: np.ndarray, k: int) -> np.ndarray:
    """Reference: sort each row by (score descending, column ascending); NaN is -inf."""
    clean = np.where(np.isnan(scores), -np.inf, scores)
    columns = np.broadcast_to(np.arange(clean.shape[1]), clean.shape)
    return np.lexsort((columns, -clean), axis=1)[:, : min(k, clean.shape[1])]


def test_top_k_equals_a_full_sort_with_ties_by_column():
    rng = np.random.default_rng(7)
    for trial in range(400):
        shape = (int(rng.integers(1, 6)), int(rng.integers(1, 25)))
        scores = rng.integers(0, 3 + trial % 4, size=shape).astype(float)  # many ties
        scores[rng.random(shape) < 0.3] = -np.inf
        scores[rng.random(shape) < 0.1] = np.nan
        for k in (1, 2, 5, 30):
            np.testing.assert_array_equal(
                top_k_indices(scores, k), _top_k_by_full_sort(scores, k), err_msg=f"k={k}"
            )
    assert top_k_indices(np.zeros((2, 3)), 0).shape == (2, 0)


def test_evaluating_does_not_import_shap():
    code = (
        "import sys, engine, engine.analysis, engine.evaluate; "
        "print(any(m == 'shap' or m.startswith('shap.') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_label_columns_are_sorted_categories_of_the_values_present_however_built():
    from engine.evaluate import as_labels

    text = pd.Series(["SVD", "BaselineOnly", "SVD"], dtype="str")
    # as evaluate labels each split: every model's category, present or not
    parts = [as_labels(text[:2], ["SVD", "Popularity", "BaselineOnly"]),
             as_labels(text[2:], ["SVD", "Popularity", "BaselineOnly"])]  # fmt: skip
    joined = pd.concat(parts)
    assert isinstance(joined.dtype, pd.CategoricalDtype)  # not object: same categories
    evaluated, read_back = as_labels(joined), as_labels(text)
    assert list(evaluated.cat.categories) == ["BaselineOnly", "SVD"]  # Popularity dropped
    pd.testing.assert_series_equal(evaluated.reset_index(drop=True), read_back)
    assert list(read_back.astype("str")) == list(text)  # the same strings
    # every category present but out of order: sorted, the values kept
    order = ["SVD", "BaselineOnly"]
    unsorted = as_labels(pd.Series(pd.Categorical(order, categories=order)))
    assert list(unsorted.cat.categories) == ["BaselineOnly", "SVD"]
    assert list(unsorted.astype("str")) == ["SVD", "BaselineOnly"]
    # a missing value stays missing when the others are recoded
    gap = as_labels(pd.Series(pd.Categorical(["SVD", None, "KNN"], categories=["SVD", "KNN", "X"])))
    assert list(gap.cat.categories) == ["KNN", "SVD"] and gap.isna().tolist() == [
        False,
        True,
        False,
    ]
    assert gap.astype("str")[[0, 2]].tolist() == ["SVD", "KNN"]


def test_labelling_a_large_column_takes_a_few_bytes_a_row():
    # the evaluation labels its 50M held-out predictions at once (25M ratings): pandas'
    # remove_unused_categories and reorder_categories took about 37 bytes a row
    from engine.evaluate import as_labels

    rows = 2_000_000
    codes = np.arange(rows, dtype=np.int8) % 2  # "SVD" and "BaselineOnly"; "KNN" unused
    column = pd.Series(pd.Categorical.from_codes(codes, categories=["SVD", "BaselineOnly", "KNN"]))
    tracemalloc.start()
    try:
        labelled = as_labels(column)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert list(labelled.cat.categories) == ["BaselineOnly", "SVD"]
    assert (labelled.astype("str") == column.astype("str")).all()
    assert peak < 4 * rows, peak / rows


def test_small_int_dtype_is_the_narrowest_signed_type_holding_the_range():
    from engine.evaluate import small_int_dtype, small_ints

    assert small_int_dtype(0, 127) == np.int8 and small_int_dtype(-128, 0) == np.int8
    assert small_int_dtype(0, 128) == np.int16 and small_int_dtype(-129, 0) == np.int16
    assert small_int_dtype(1, 32_768) == np.int32 and small_int_dtype(0, 2**31) == np.int64
    folds = pd.Series([0, 300, 4], dtype="int64")  # read back from an edited file
    assert small_ints(folds).dtype == np.int16 and small_ints(folds).tolist() == [0, 300, 4]
    narrow = pd.Series([1, 2], dtype="int8")
    assert small_ints(narrow) is narrow  # never widened
    assert small_ints(pd.Series([1.0, 2.0])).dtype == np.float64  # other dtypes unchanged


def test_folds_and_ranks_are_kept_in_one_byte_a_row(result):
    # about 0.65 GB at 25M ratings: folds of 50M predictions, folds and ranks of 24M list rows
    assert result.predictions["fold"].dtype == np.int8
    assert result.user_ranking["fold"].dtype == np.int8
    assert result.top_lists["fold"].dtype == np.int8 and result.top_lists["rank"].dtype == np.int8
    assert sorted(result.predictions["fold"].unique()) == [0, 1, 2]
    assert sorted(result.top_lists["rank"].unique()) == [1, 2, 3, 4, 5]
    # narrowed without loss: every list is still ranked 1..n
    lists = result.top_lists.groupby(["model", "fold", "user_id"], observed=True)["rank"]
    assert (lists.max() == lists.count()).all()


@pytest.mark.parametrize(
    ("engine_name", "models", "given_a_table"),
    [
        ("spark", ("SVD", "BaselineOnly", "Popularity"), False),  # all read the index only
        ("spark", ("SVD", "KNNBaseline"), True),  # KNNBaseline builds a Surprise trainset
        ("surprise", ("Popularity",), False),
        ("surprise", ("SVD", "Popularity"), True),
    ],
)
def test_a_splits_training_table_is_dropped_when_no_model_reads_it(
    monkeypatch, data, engine_name, models, given_a_table
):
    from engine.evaluate import SplitResult, empty_ranking

    evaluation = sys.modules["engine.evaluate"]  # the module (engine.evaluate is the function)

    seen = []

    def recorded(name, train, test, fold, context, interactions, spark_fit=None):
        seen.append((name, train is not None, interactions.n_ratings))
        return SplitResult(None, math.nan, math.nan, *empty_ranking(), 0.0)

    monkeypatch.setattr(evaluation, "_evaluate_model", recorded)
    config = replace(SMALL, engine=engine_name)
    evaluate(data, config, EvaluationConfig(folds=2, models=models))
    assert len(seen) == 2 * len(models)
    assert {given for _, given, _ in seen} == {given_a_table}
    assert sum(n for name, _, n in seen if name == models[0]) == data.n_ratings  # 2 folds
