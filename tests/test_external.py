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
