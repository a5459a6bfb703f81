"""External systems: hand-built systems of known behaviour, audited like the built-in SVD."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.audit import AuditConfig, run_audit
from engine.audit.groups import LONG_TAIL, item_popularity_groups
from engine.data import load_dataset
from engine.evaluate import EvaluationConfig, evaluate
from engine.external import (
    BUILT_IN_POPULARITY,
    BUILT_IN_SVD,
    MIN_R2,
    ExternalSystem,
    audit_system,
    compare_pair,
    compare_systems,
    fit_surrogate,
    surrogate_explanation,
    temporal_heldout,
    with_pairs,
)
from engine.external.systems import built_in_systems
from engine.model import ModelConfig, train
from engine.recommend import recommend_all
from engine.synth import SynthConfig, generate, write_dataset

K = 10
CONFIG = AuditConfig(k=K, bootstrap=30, permutations=200, min_group_size=20)
MODEL = ModelConfig(n_factors=6, n_epochs=15)
LIST_FAMILIES = ("arp", "aplt", "aclt", "novelty", "miscalibration", "exposure_share",
                 "interaction_share")  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic data (with providers), its temporal held-out split and the SVD on it."""
    folder = tmp_path_factory.mktemp("synth")
    write_dataset(generate(SynthConfig(n_users=300, n_items=200, n_ratings=12_000, seed=3)),
                  folder)  # fmt: skip
    data = load_dataset(folder)
    heldout = temporal_heldout(data)
    model = train(heldout.train, MODEL)
    return data, heldout, model


def _lists(rows: list[tuple[str, list[str]]]) -> pd.DataFrame:
    """``user_id, rank, item_id, score`` from (user, ranked items)."""
    out = [(u, r + 1, i, np.nan) for u, items in rows for r, i in enumerate(items)]
    return pd.DataFrame(out, columns=["user_id", "rank", "item_id", "score"])


def _row(result, metric, grouping, group):
    rows = result.metrics
    found = rows[(rows["metric"] == metric) & (rows["grouping"] == grouping)
                 & (rows["group"] == group)]  # fmt: skip
    assert len(found) == 1, (metric, grouping, group)
    return found.iloc[0]


def test_popularity_system_has_no_long_tail_exposure_and_low_coverage(world):
    _, heldout, model = world
    train = heldout.train.ratings
    popular = train["item_id"].value_counts().index[:K].tolist()
    users = sorted(train["user_id"].unique())
    system = ExternalSystem("pop", lists=_lists([(u, popular) for u in users]))
    audit = audit_system(system, heldout, model, CONFIG)
    catalogue = audit.result.catalogue.set_index("metric")["value"]
    n_items = train["item_id"].nunique()
    assert catalogue["coverage"] == pytest.approx(K / n_items)
    assert catalogue["coverage"] < 0.1
    tail = _row(audit.result, "exposure_share", "item popularity", LONG_TAIL)
    assert tail["value"] == 0.0
    assert tail["tier"] == "flagged"
    assert _row(audit.result, "aplt", "activity", "inactive")["value"] == 0.0


def test_random_system_exposes_groups_near_their_catalogue_share(world):
    _, heldout, model = world
    train = heldout.train.ratings
    items = np.array(sorted(train["item_id"].unique()))
    rng = np.random.default_rng(0)
    users = sorted(train["user_id"].unique())
    system = ExternalSystem("random", lists=_lists(
        [(u, list(rng.choice(items, K, replace=False))) for u in users]))  # fmt: skip
    result = audit_system(system, heldout, model, CONFIG).result
    exposure = result.metrics[(result.metrics["metric"] == "exposure_share")
                              & (result.metrics["grouping"] == "provider")]  # fmt: skip
    assert len(exposure) >= 3
    # ratio = exposure share / catalogue share: about 1 for every provider
    assert exposure["ratio"].between(0.8, 1.25).all(), exposure[["group", "value", "ratio"]]
    assert not exposure["flag"].any()
    popularity = train["item_id"].value_counts()
    tail_share = item_popularity_groups(popularity)[LONG_TAIL].mean()
    tail = _row(result, "exposure_share", "item popularity", LONG_TAIL)
    assert tail["value"] == pytest.approx(tail_share, abs=0.05)


def test_system_hiding_a_provider_shows_it_at_zero_exposure_and_flagged(world):
    data, heldout, model = world
    hidden = data.items["provider"].value_counts().index[0]
    hidden_items = set(data.items.index[data.items["provider"] == hidden])
    full = recommend_all(model, 60)
    kept = full[~full["item_id"].isin(hidden_items)].copy()
    kept["rank"] = kept.groupby("user_id").cumcount() + 1
    kept = kept[kept["rank"] <= K].assign(score=kept["raw_prediction"])
    system = ExternalSystem("hides", lists=kept[["user_id", "rank", "item_id", "score"]])
    result = audit_system(system, heldout, model, CONFIG).result
    row = _row(result, "exposure_share", "provider", hidden)
    assert row["value"] == 0.0
    assert row["tier"] == "flagged"
    assert bool(row["flag"])
    assert row["direction"] == "under-exposed"


def test_system_equal_to_the_svd_gives_identical_audit_and_surrogate_r2_of_one(world):
    _, heldout, model = world
    svd = built_in_systems(model, heldout, K)[0]
    mine = ExternalSystem("mine", lists=svd.lists, predictions=svd.predictions)
    comparison = compare_systems(heldout, [mine], config=CONFIG, model=model)
    ours, theirs = comparison.audits["mine"].result, comparison.audits[BUILT_IN_SVD].result
    pd.testing.assert_frame_equal(ours.metrics, theirs.metrics)
    pd.testing.assert_frame_equal(ours.catalogue, theirs.catalogue)
    table = comparison.table.set_index("system")
    numeric = table.columns.drop(["kind", "surrogate_r2"])
    pd.testing.assert_series_equal(table.loc["mine", numeric], table.loc[BUILT_IN_SVD, numeric],
                                   check_names=False)  # fmt: skip
    surrogate = comparison.surrogates["mine"]
    assert surrogate.overall_r2 == pytest.approx(1.0, abs=1e-6)
    ok = surrogate.users[surrogate.users["status"] == "ok"]
    assert len(ok) > 0 and (ok["r2"] > 1 - 1e-6).all()
    assert ok["overlap"].min() == 1.0
    # the built-in audit of the same lists on the same data: identical list-family values
    evaluation = evaluate(heldout.train, MODEL, EvaluationConfig(folds=2, k=K, models=("SVD",)))
    builtin = run_audit(heldout.train, model, evaluation, CONFIG,
                        lists=recommend_all(model, K))  # fmt: skip
    key = ["metric", "grouping", "group"]
    a = builtin.metrics[builtin.metrics["metric"].isin(LIST_FAMILIES)].set_index(key)
    b = ours.metrics[ours.metrics["metric"].isin(LIST_FAMILIES)].set_index(key)
    assert len(a) > 20
    pd.testing.assert_series_equal(a["value"], b["value"].reindex(a.index))
    pd.testing.assert_series_equal(a["n_users"], b["n_users"].reindex(a.index))
    # identical systems: every paired difference is 0 and never significant
    rows = compare_pair(comparison, BUILT_IN_SVD, "mine")
    tested = rows[rows["verdict"] != "insufficient data"]
    assert len(tested) and (tested["difference"].abs() < 1e-12).all()
    assert (tested["verdict"] == "no significant difference").all()


def test_side_by_side_uses_the_same_users_for_every_system(world):
    _, heldout, model = world
    svd_lists = built_in_systems(model, heldout, K)[0].lists
    few = sorted(svd_lists["user_id"].unique())[:50]
    partial = ExternalSystem("partial", lists=svd_lists[svd_lists["user_id"].isin(few)])
    comparison = compare_systems(heldout, [partial], config=CONFIG, model=model)
    assert (comparison.table["n_users"] == 50).all()
    assert any("left out because another system has no list" in n for n in comparison.notes)
    assert set(comparison.names) == {BUILT_IN_SVD, BUILT_IN_POPULARITY, "partial"}


def test_surrogate_of_random_scores_is_labelled_too_low_to_explain(world):
    _, heldout, model = world
    rng = np.random.default_rng(1)
    items = np.array(sorted(heldout.train.ratings["item_id"].unique()))
    users = sorted(heldout.train.ratings["user_id"].unique())[:20]
    rows = [(u, i, float(rng.normal())) for u in users for i in rng.choice(items, 40, False)]
    noise = ExternalSystem("noise", predictions=pd.DataFrame(
        rows, columns=["user_id", "item_id", "prediction"]))  # fmt: skip
    surrogate = fit_surrogate(noise, model, top_n=K)
    assert (surrogate.users["status"] == "low fidelity").mean() > 0.8
    user = surrogate.users.loc[surrogate.users["status"] == "low fidelity", "user_id"].iloc[0]
    explanation, label = surrogate_explanation(surrogate, model, user, items[0])
    assert explanation is None
    assert f"threshold R^2 = {MIN_R2:g}" in label and "cannot explain" in label
    few = ExternalSystem(
        "few", predictions=pd.DataFrame(rows[:5], columns=["user_id", "item_id", "prediction"])
    )
    assert fit_surrogate(few, model).users["status"].tolist() == ["too few scores"]


def test_surrogate_explanation_adds_up_to_the_surrogate_score(world):
    _, heldout, model = world
    svd = built_in_systems(model, heldout, K)[0]
    surrogate = fit_surrogate(ExternalSystem("s", predictions=svd.predictions), model)
    user = surrogate.users.loc[surrogate.users["status"] == "ok", "user_id"].iloc[0]
    item = svd.predictions.loc[svd.predictions["user_id"] == user, "item_id"].iloc[0]
    explanation, label = surrogate_explanation(surrogate, model, user, item)
    assert label.startswith("This explains a surrogate that matches s with R^2 = 1.00")
    u = model.interactions.user_index([user])[0]
    i = model.interactions.item_index([item])[0]
    total = explanation.base_values + explanation.values.sum()
    assert total == pytest.approx(model.predict_pairs(np.array([u]), np.array([i]))[0], abs=1e-5)


def test_surrogate_fidelity_is_out_of_sample_so_noise_cannot_pass(world):
    _, heldout, model = world
    rng = np.random.default_rng(2)
    items = np.array(sorted(heldout.train.ratings["item_id"].unique()))
    users = sorted(heldout.train.ratings["user_id"].unique())[:40]
    n = 2 * (model.Q.shape[1] + 1)  # twice the parameters: in-sample R^2 of noise is ~0.5
    rows = [(u, i, float(rng.normal())) for u in users for i in rng.choice(items, n, False)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "prediction"])
    surrogate = fit_surrogate(ExternalSystem("noise", predictions=frame), model)
    in_sample = []
    for _, block in frame.groupby("user_id"):
        j = model.interactions.item_index(block["item_id"].to_numpy())
        X = np.column_stack([np.ones(len(j)), model.Q[j]])
        y = block["prediction"].to_numpy() - model.mu - model.bi[j]
        fit = X @ np.linalg.lstsq(X, y, rcond=None)[0]
        s = block["prediction"].to_numpy()
        in_sample.append(1 - np.sum((y - fit) ** 2) / np.sum((s - s.mean()) ** 2))
    assert max(in_sample) > MIN_R2  # an in-sample fit would explain some of them
    assert (surrogate.users["status"] == "low fidelity").all()
    assert surrogate.overall_r2 < 0


def _blind_lists(data, k: int = K) -> pd.DataFrame:
    """Each user's ``k`` most-rated items the user never rated in the WHOLE data (held-out
    period included): lists that can never contain a held-out item."""
    ratings = data.ratings
    order = ratings["item_id"].value_counts().index.tolist()
    rated = ratings.groupby("user_id")["item_id"].agg(set)
    return _lists([(u, [i for i in order if i not in rated[u]][:k]) for u in rated.index])


def test_lists_that_exclude_every_rated_item_are_warned_and_get_no_utility_verdict(world):
    data, heldout, model = world
    blind = ExternalSystem("mostpopular", lists=_blind_lists(data))
    comparison = compare_systems(heldout, [blind], config=CONFIG, model=model)
    table = comparison.table.set_index("system")
    row = table.loc["mostpopular"]
    assert row["n_hits"] == 0 and row["n_relevant_hits"] == 0
    assert row["n_listed"] == K * row["n_users"] > 0
    assert row["ndcg"] == 0.0 and row["n_users_ranked"] > 0
    assert row["utility_interpretable"] is False
    assert table.loc[BUILT_IN_SVD, "utility_interpretable"] is True
    assert table.loc[BUILT_IN_SVD, "n_hits"] > 0
    assert list(comparison.warnings) == ["mostpopular"]
    assert comparison.warnings["mostpopular"] == (
        f"None of mostpopular's {int(row['n_listed']):,} listed items is among its users' "
        "held-out ratings: its lists cannot score on utility (were they built excluding items "
        "users rated after the cut?). Its NDCG and recall of 0 say nothing about its quality."
    )
    assert comparison.to_dict()["warnings"] == [comparison.warnings["mostpopular"]]
    rows = compare_pair(comparison, BUILT_IN_SVD, "mostpopular")
    utility = rows[rows["metric"].isin(["ndcg", "recall"])
                   & (rows["verdict"] != "insufficient data")]  # fmt: skip
    assert len(utility) and utility["verdict"].str.startswith("not interpretable").all()
    sentences = with_pairs(comparison).pairs[f"mostpopular vs {BUILT_IN_SVD}"]
    ndcg = next(s for s in sentences if s.startswith("ndcg:"))
    assert "worse" not in ndcg and "better" not in ndcg and "significant in" not in ndcg
    assert "no verdict, not interpretable (mostpopular: no listed item" in ndcg
    # its other metrics keep their verdicts (aplt is judged on the lists, not held-out ratings)
    assert any(s.startswith("aplt:") and "overall" in s for s in sentences)


def test_utility_check_counts_exactly_the_listed_held_out_ratings(world):
    _, heldout, model = world
    held = heldout.ratings
    train_items = set(heldout.train.ratings["item_id"])
    users = set(heldout.train.ratings["user_id"])
    mine = held[held["item_id"].isin(train_items) & held["user_id"].isin(users)]
    mine = mine.sort_values(["user_id", "item_id"]).groupby("user_id").head(K)
    oracle = ExternalSystem("oracle", lists=_lists(
        [(u, block["item_id"].tolist()) for u, block in mine.groupby("user_id")]))  # fmt: skip
    comparison = compare_systems(heldout, [oracle], config=CONFIG, model=model)
    row = comparison.table.set_index("system").loc["oracle"]
    threshold = 4.0  # the synthetic 1-5 scale's default relevance threshold
    assert row["n_listed"] == row["n_hits"] == len(mine)
    assert row["n_relevant_hits"] == int((mine["rating"] >= threshold).sum())
    assert row["utility_interpretable"] is True and not comparison.warnings
    # NDCG and recall average over the listed users with a relevant held-out rating only
    relevant = set(held.loc[held["rating"] >= threshold, "user_id"])
    assert row["n_users_ranked"] == len(relevant & set(mine["user_id"])) < row["n_users"]


def test_why_a_users_list_has_no_explanation_is_said_exactly(world):
    _, heldout, model = world
    from engine.external import no_explanation_reason

    svd = built_in_systems(model, heldout, K)[0]
    users = sorted(svd.predictions["user_id"].unique())
    full, few = users[0], users[1]
    items = model.interactions.item_ids
    preds = pd.concat([
        svd.predictions[svd.predictions["user_id"] == full],
        pd.DataFrame({"user_id": few, "item_id": items[:5],
                      "prediction": [3.0, 4.5, 2.0, 4.0, 1.0]}),
    ], ignore_index=True)  # fmt: skip
    scored = ExternalSystem("scored", predictions=preds)
    surrogate = fit_surrogate(scored, model)
    params = model.Q.shape[1] + 1
    assert no_explanation_reason(scored, surrogate, few) == (
        f"No explanation: 5 scores for this user; the surrogate needs more scores than its "
        f"{params} parameters (factors + bias) — give longer scored lists or a predictions file."
    )
    if surrogate.fidelity(full)["status"] == "ok":
        assert no_explanation_reason(scored, surrogate, full) is None
    assert "gave no scores for this user" in no_explanation_reason(scored, surrogate, users[2])
    ranks = ExternalSystem("ranks", lists=_lists([(full, ["a", "b"])]))
    assert no_explanation_reason(ranks, None, full).startswith(
        "No explanation: ranks gave no scores (its lists have ranks only)"
    )
    # the list shown beside the SVD's: as the user saw it, or the scores highest first
    assert ranks.top_for(full, 1)[["rank", "item_id"]].values.tolist() == [[1, "a"]]
    top = scored.top_for(few, 3)
    assert top["rank"].tolist() == [1, 2, 3]
    assert top["score"].is_monotonic_decreasing
    assert top["score"].iloc[0] == preds.loc[preds["user_id"] == few, "prediction"].iloc[:5].max()


def test_paired_rows_are_shown_as_text_with_the_systems_names():
    from engine.external import paired_display
    from engine.external.paired import ROWS

    rows = pd.DataFrame([
        ["ndcg", "higher", "overall", "overall", 900, 0.05, 0.03, -0.02, -0.03, -0.01,
         1 / 2001, True, 1 / 2001, "B worse"],
        ["ndcg", "higher", "gender", "F", 12, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan,
         False, np.nan, "insufficient data"],
        ["aplt", "higher", "overall", "overall", 1500, 0.1, 0.2, 0.1, 0.05, 0.15, 0.31, False,
         0.31, "no significant difference"],
    ], columns=ROWS)  # fmt: skip
    rows.loc[1, "p_value"] = None
    shown = paired_display(rows, "SVD (built-in)", "mostpopular")
    assert "p_is_bound" not in shown.columns
    assert list(shown.columns) == ["metric", "better", "grouping", "group", "users",
                                   "SVD (built-in)", "mostpopular",
                                   "mostpopular − SVD (built-in)", "95% interval", "p",
                                   "p (Holm)", "verdict"]  # fmt: skip
    assert shown["p"].tolist() == ["< 0.0005", "—", "0.31"]
    assert shown["verdict"].tolist() == ["mostpopular worse", "insufficient data",
                                         "no significant difference"]  # fmt: skip
    assert shown.loc[0, "95% interval"] == "-0.0300 to -0.0100"  # as the Compare page writes it
    assert shown.loc[0, "mostpopular − SVD (built-in)"] == "-0.0200"
    assert shown.loc[1, "SVD (built-in)"] == "—" and shown.loc[1, "95% interval"] == "—"
    assert shown.map(lambda v: isinstance(v, str)).all().all()  # text: no None, no checkbox
    assert not shown.isin(["None", "nan"]).any().any()
