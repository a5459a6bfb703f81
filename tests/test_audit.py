"""The audit finds the planted effects, agrees with fairlearn; each measure equals its formula."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame
from sklearn.metrics import mean_absolute_error, mean_squared_error

from engine import ConfigError, DataFile, load_dataset
from engine.audit import AuditConfig, run_audit, tables
from engine.audit import measures as M
from engine.audit.groups import (
    activity_groups,
    cap_groups,
    item_attribute_groups,
    propensity_groups,
    user_attribute_groups,
)
from engine.audit.stats import (
    bootstrap_ci,
    holm,
    identity,
    is_floor,
    normal_tail,
    permutation_p,
)
from engine.evaluate import EvaluationConfig, evaluate
from engine.model import ModelConfig, train
from engine.synth import MINORITY_AGE_BAND, UNDER_EXPOSED_PROVIDER
from tests.conftest import SAMPLE_DIR


@pytest.fixture(scope="module")
def pipeline():
    data = load_dataset(SAMPLE_DIR)
    model = train(data)
    evaluation = evaluate(data, ModelConfig(), EvaluationConfig(models=("SVD",)))
    return data, model, evaluation


@pytest.fixture(scope="module")
def audits(pipeline):
    data, model, evaluation = pipeline
    return [run_audit(data, model, evaluation, AuditConfig(seed=s)) for s in (0, 1, 2)]


def row(result, metric, grouping, group):
    m = result.metrics
    return m[(m["metric"] == metric) & (m["grouping"] == grouping) & (m["group"] == group)].iloc[0]


def test_planted_minority_is_flagged_worse_in_accuracy_with_every_seed(audits):
    for result in audits:
        for metric in ("rmse", "mae"):
            r = row(result, metric, "age_band", MINORITY_AGE_BAND)
            assert r["flag"] and r["direction"] == "worse", (metric, r.to_dict())
            assert r["ratio"] > 1.25


def test_planted_provider_is_shown_under_exposed_by_the_data_with_every_seed(audits):
    # The planted effect is in the ratings (interaction share), not in the model: it is
    # context (scope "data"), found significant and under-exposed, and never flagged.
    for result in audits:
        r = row(result, "interaction_share", "provider", UNDER_EXPOSED_PROVIDER)
        assert r["scope"] == "data" and r["tier"] == "context" and not r["flag"]
        assert r["direction"] == "rated less" and r["p_adjusted"] < 0.05
        assert r["ratio"] < 0.8


def test_control_attributes_are_never_flagged(audits):
    for result in audits:
        controls = result.metrics[result.metrics["grouping"].isin(["region", "gender"])]
        assert not controls["flag"].any(), controls[controls["flag"]].to_dict("records")
        assert (controls["tier"] != "flagged").all()


def test_data_rows_are_context_and_popularity_shares_are_by_definition(audits):
    for result in audits:
        m = result.metrics
        data = m[m["scope"] == "data"]
        assert set(data["metric"]) == {"interaction_share"}
        assert (data["tier"] == "context").all() and not data["flag"].any()
        tautology = data[data["grouping"] == "item popularity"]
        assert set(tautology["group"]) == {"short head", "long tail"}
        assert (tautology["status"] == "by definition").all()
        assert tautology["p_value"].isna().all() and tautology["severity"].isna().all()
        assert (m["flag"] == (m["tier"] == "flagged")).all()


def test_tiny_group_is_insufficient_data_and_never_ranked(audits):
    r = row(audits[0], "rmse", "gender", "X")
    assert r["status"] == "insufficient data"
    assert not r["flag"] and math.isnan(r["ratio"]) and math.isnan(r["p_value"])
    assert row(audits[0], "rmse", "gender", "M")["status"] == "reference"  # the largest group


def test_group_accuracy_equals_fairlearn_metricframe(pipeline, audits):
    data, _, evaluation = pipeline
    oof = evaluation.predictions[evaluation.predictions["model"] == "SVD"]
    groups = data.users["age_band"].reindex(oof["user_id"]).to_numpy()
    frame = MetricFrame(
        metrics={
            "rmse": lambda t, p: math.sqrt(mean_squared_error(t, p)),
            "mae": mean_absolute_error,
        },
        y_true=oof["rating"].to_numpy(),
        y_pred=oof["prediction"].to_numpy(),
        sensitive_features=groups,
    )
    for group, expected in frame.by_group.iterrows():
        assert row(audits[0], "rmse", "age_band", group)["value"] == pytest.approx(expected["rmse"])
        assert row(audits[0], "mae", "age_band", group)["value"] == pytest.approx(expected["mae"])


def test_every_row_carries_counts_ci_and_adjusted_p(audits):
    m = audits[0].metrics
    users = m["n_raters"].isna()
    assert (m.loc[users, "n_users"] >= 0).all() and m.loc[users, "n_items"].isna().all()
    items = m[~users]
    assert items["n_users"].isna().all() and (items["n_items"] >= 0).all()
    assert (m["n_ratings"] >= 0).all()
    tested = m[m["status"].isin(["ok", "flagged"]) & (m["family"] != "exposure")]
    assert tested["p_adjusted"].notna().all()
    assert (tested["p_adjusted"] >= tested["p_value"] - 1e-12).all()
    inside = tested.dropna(subset=["ci_low"])
    assert ((inside["ci_low"] <= inside["value"] + 1e-9)
            & (inside["value"] <= inside["ci_high"] + 1e-9)).mean() > 0.95  # fmt: skip


def test_exposure_rows_equal_the_measure(pipeline, audits):
    data, model, _ = pipeline
    from engine.audit.groups import item_attribute_groups
    from engine.recommend import recommend_all

    lists = recommend_all(model, 10)
    popularity = data.ratings["item_id"].value_counts()
    groups, _ = item_attribute_groups(data.items, popularity.index.to_numpy(), ["provider"], 12)
    shares = M.exposure_shares(lists, groups["provider"])
    for provider, share in shares.items():
        assert row(audits[0], "exposure_share", "provider", provider)["value"] == pytest.approx(
            share
        )


def test_catalogue_delta_gap_and_hints(audits):
    result = audits[0]
    catalogue = result.catalogue.set_index(["metric", "grouping"])["value"]
    assert 0 < catalogue[("coverage", "")] <= 1
    assert 0 <= catalogue[("gini_exposure", "")] <= 1
    assert ("pop_rsp", "item popularity") in catalogue.index
    assert set(result.delta_gap["group"]) == {"niche", "diverse", "blockbuster"}
    assert (result.delta_gap["n_users"] > 0).all()
    minority = [h for h in result.hints if h["group"] == MINORITY_AGE_BAND]
    assert minority and any("mean rating" in s for s in minority[0]["sentences"])
    assert {"value", "absolute", "under", "over", "non_parity", "n_items"} <= set(result.yao)


# --- hand-computed toys -------------------------------------------------------------------

# Yao & Huang by hand: u1, u2 in group A, u3 in B, u4 without a label (in every group's
# rest). Item z is rated in A only, so it never has both sides.
YAO_OOF = pd.DataFrame(
    [("u1", "x", 4.0, 3.5), ("u2", "x", 2.0, 2.5), ("u3", "x", 5.0, 4.0), ("u4", "x", 3.0, 3.0),
     ("u1", "y", 3.0, 3.0), ("u3", "y", 1.0, 2.0), ("u2", "z", 5.0, 4.0)],
    columns=["user_id", "item_id", "rating", "prediction"],
)  # fmt: skip
YAO_LABELS = pd.Series({"u1": "A", "u2": "A", "u3": "B"})


def test_out_of_fold_is_a_view_of_the_svd_block_or_else_the_same_rows(pipeline):
    from engine.audit.inputs import out_of_fold
    from engine.audit.registry import AuditSources

    data, model, evaluation = pipeline
    predictions = evaluation.predictions
    expected = predictions.loc[predictions["model"] == "SVD",
                               ["user_id", "item_id", "rating", "prediction"]]  # fmt: skip
    sources = AuditSources(data, model, evaluation, AuditConfig(), 10)
    oof = out_of_fold(sources, {})
    pd.testing.assert_frame_equal(oof, expected)
    assert np.shares_memory(oof["prediction"].to_numpy(), predictions["prediction"].to_numpy())
    # rows of several models interleaved (an evaluation saved by an earlier version)
    shuffled = predictions.sample(frac=1.0, random_state=0)
    mixed = AuditSources(data, model, replace(evaluation, predictions=shuffled), AuditConfig(), 10)
    pd.testing.assert_frame_equal(
        out_of_fold(mixed, {}), shuffled.loc[shuffled["model"] == "SVD", expected.columns]
    )


@pytest.mark.parametrize("at_once", [1, 3, tables.YAO_ROWS_AT_ONCE])
def test_yao_unfairness_by_hand(monkeypatch, at_once):
    # the sums are taken over at_once rows at a time: 7 rows in 7, 3 or 1 passes
    monkeypatch.setattr(tables, "YAO_ROWS_AT_ONCE", at_once)
    notes: list[str] = []
    rows = {r["group"]: r for r in tables.yao_rows("g", YAO_LABELS, YAO_OOF, 1, notes)}
    # A: x: inside y 3 r 3 (dg 0), rest (u3, u4) y 3.5 r 4 (do -0.5); y: dg 0, rest u3 do 1
    assert rows["A"] == pytest.approx({
        "grouping": "g", "group": "A", "n_users": 2, "value": 0.75, "absolute": 0.75,
        "under": 0.25, "over": 0.5, "non_parity": 0.25, "n_items": 2,
    })  # fmt: skip
    # B: x: dg -1, rest (u1, u2, u4) y 3 r 3 (do 0); y: dg 1, rest u1 do 0; non-parity |3 - 3.2|
    assert rows["B"] == pytest.approx({
        "grouping": "g", "group": "B", "n_users": 1, "value": 1.0, "absolute": 1.0,
        "under": 0.5, "over": 0.5, "non_parity": 0.2, "n_items": 2,
    })  # fmt: skip
    assert notes == []
    # at least 2 ratings on each side: only x qualifies for A, no item for B
    rows = {r["group"]: r for r in tables.yao_rows("g", YAO_LABELS, YAO_OOF, 2, [])}
    assert (rows["A"]["value"], rows["A"]["under"], rows["A"]["n_items"]) == (0.5, 0.5, 1)
    assert rows["B"]["n_items"] == 0 and math.isnan(rows["B"]["value"])
    assert rows["B"]["non_parity"] == pytest.approx(0.2)


def test_yao_group_holding_every_user_gets_a_note_not_a_row():
    labels = pd.Series("all", index=["u1", "u2", "u3", "u4"])
    notes: list[str] = []
    assert tables.yao_rows("everyone", labels, YAO_OOF, 1, notes) == []
    assert notes == [
        "Yao & Huang unfairness is not computed for everyone = all: every user with an "
        "out-of-fold prediction is in that group, so there is no rest to compare with."
    ]


# Accuracy across models by hand: squared errors SVD u1 1, 1; u2 9; u3 4 and BaselineOnly
# u1 0; u2 4; u3 4; u4 1 (u4 has no label: in the overall RMSE, in no group).
ACCURACY_PREDICTIONS = pd.DataFrame({
    "model": pd.Categorical(["SVD"] * 4 + ["BaselineOnly"] * 4,
                            categories=["BaselineOnly", "KNNBaseline", "SVD"]),
    "user_id": ["u1", "u1", "u2", "u3", "u1", "u2", "u3", "u4"],
    "rating": [3.0, 4.0, 1.0, 5.0, 3.0, 1.0, 5.0, 2.0],
    "prediction": [4.0, 3.0, 4.0, 3.0, 3.0, 3.0, 3.0, 3.0],
})  # fmt: skip


@pytest.mark.parametrize("interleaved", [False, True])
def test_accuracy_by_model_by_hand(interleaved):
    from types import SimpleNamespace

    predictions = ACCURACY_PREDICTIONS
    if interleaved:  # rows of the models mixed (an evaluation saved by an earlier version)
        predictions = predictions.iloc[[0, 4, 1, 5, 2, 6, 3, 7]]
    evaluation = SimpleNamespace(predictions=predictions)
    labels = pd.Series({"u1": "A", "u2": "A", "u3": "B"})
    table = tables.accuracy_by_model(evaluation, labels, min_users=1).set_index("model")
    assert list(table.index) == ["SVD", "BaselineOnly"]  # in order of appearance, no KNN
    # SVD: overall sqrt(15 / 4); A (u1, u1, u2) sqrt(11 / 3), B sqrt(4)
    assert table.loc["SVD", "overall_rmse"] == pytest.approx(math.sqrt(15 / 4))
    assert table.loc["SVD", "max_gap"] == pytest.approx(2 - math.sqrt(11 / 3))
    # BaselineOnly: overall sqrt(9 / 4); A (u1, u2) sqrt(2), B sqrt(4)
    assert table.loc["BaselineOnly", "overall_rmse"] == pytest.approx(1.5)
    assert table.loc["BaselineOnly", "max_gap"] == pytest.approx(2 - math.sqrt(2))
    assert table["groups_compared"].tolist() == [2, 2]
    # groups of at least 2 users: A alone, so nothing compared (not a gap of 0)
    table = tables.accuracy_by_model(evaluation, labels, min_users=2)
    assert table["max_gap"].isna().all() and table["groups_compared"].tolist() == [1, 1]


# Two users, lists of 2: u1 -> [a, b], u2 -> [b, c]. Popularity a=10, b=4, c=2 (long tail
# {b, c} in this toy), 10 users in the dataset.
LISTS = pd.DataFrame(
    {"user_id": ["u1", "u1", "u2", "u2"], "rank": [1, 2, 1, 2], "item_id": ["a", "b", "b", "c"]}
)
POP = pd.Series({"a": 10.0, "b": 4.0, "c": 2.0, "d": 1.0})
TAIL = pd.Series({"a": False, "b": True, "c": True, "d": True})
HEAD_TAIL = pd.DataFrame({"head": ~TAIL, "tail": TAIL})


def test_popularity_measures_by_hand():
    assert M.arp(LISTS, POP).to_dict() == {"u1": 7.0, "u2": 3.0}  # (10+4)/2, (4+2)/2
    assert M.aplt(LISTS, TAIL).to_dict() == {"u1": 0.5, "u2": 1.0}
    assert M.aclt(LISTS, TAIL).to_dict() == {"u1": 1.0, "u2": 2.0}
    nov = M.novelty(LISTS, POP, 10)
    assert nov["u1"] == pytest.approx((-math.log2(1.0) - math.log2(0.4)) / 2)
    assert M.coverage(LISTS, 4) == 0.75  # a, b, c of a, b, c, d
    # Exposure counts over the catalogue: a=1, b=2, c=1, d=0 -> sorted 0,1,1,2, n=4, sum 4:
    # G = ((2-5)*0 + (4-5)*1 + (6-5)*1 + (8-5)*2) / (4*4) = 6/16.
    assert M.exposure_gini(LISTS, np.array(["a", "b", "c", "d"])) == pytest.approx(6 / 16)
    assert M.gini(np.ones(5)) == 0.0


def test_exposure_shares_by_hand():
    membership = HEAD_TAIL
    w1, w2 = 1.0, 1 / math.log2(3)
    shares = M.exposure_shares(LISTS, membership)
    # head: a at rank 1 (u1) = w1; total = 2 * (w1 + w2).
    assert shares["head"] == pytest.approx(w1 / (2 * (w1 + w2)))
    assert shares["head"] + shares["tail"] == pytest.approx(1.0)


def test_rsp_and_reo_by_hand():
    membership = HEAD_TAIL
    train = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["d", "a"]})
    # RSP: head recommended 1 / candidates (2 users x 1 item - 1 rated) = 1;
    #      tail recommended 3 / (2 x 3 - 1) = 0.6; std/mean of [1, 0.6] = 0.2 / 0.8.
    assert M.rsp(LISTS, membership, train) == pytest.approx(0.25)
    relevant = pd.DataFrame({"user_id": ["u1", "u1", "u2"], "item_id": ["a", "d", "c"]})
    # REO: head hits a (u1) 1 / relevant head 1 = 1; tail hits c (u2) 1 / relevant tail 2.
    assert M.reo(LISTS, membership, relevant) == pytest.approx(0.25 / 0.75)


def test_miscalibration_by_hand():
    genres = pd.Series({"a": ("X",), "b": ("X", "Y"), "c": ("Y",), "d": ("Y",)})
    history = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["a", "c"]})  # p = (.5, .5)
    lists = pd.DataFrame({"user_id": ["u1"], "rank": [1], "item_id": ["a"]})  # q = (1, 0)
    value = M.miscalibration(history, lists, genres, alpha=0.01)["u1"]
    q_y = 0.01 * 0.5  # smoothed q(Y) = 0.99 * 0 + 0.01 * 0.5
    q_x = 0.99 + 0.01 * 0.5
    assert value == pytest.approx(0.5 * math.log2(0.5 / q_x) + 0.5 * math.log2(0.5 / q_y))
    same = M.miscalibration(history, history.assign(rank=[1, 2]), genres)["u1"]
    assert same == pytest.approx(0.0, abs=1e-12)


def test_bias_disparity_by_hand():
    labels = pd.Series({"u1": "g", "u2": "g"})
    membership = pd.DataFrame({"C": [True, True, False, False]}, index=["a", "b", "c", "d"])
    history = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "c"]})
    # P(C) = 0.5; input share in C = 1/2 -> B_S = 1; recommended share = 3/4 -> B_R = 1.5.
    table = M.bias_disparity(labels, history, LISTS, membership)
    assert table.iloc[0]["bias_disparity"] == pytest.approx(0.5)


def test_holm_by_hand():
    adjusted = holm(np.array([0.01, 0.04, 0.03, np.nan]))
    # sorted 0.01, 0.03, 0.04 with m = 3: 0.03, 0.06, 0.06 (monotone).
    np.testing.assert_allclose(adjusted[:3], [0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])


def test_permutation_and_bootstrap_behave():
    rng = np.random.default_rng(0)
    same = rng.normal(size=200)
    p_null = permutation_p(same[:100], np.ones(100), same[100:], np.ones(100), identity, 500, rng)
    assert p_null > 0.05
    shifted = permutation_p(same[:100] + 2, np.ones(100), same[100:], np.ones(100), identity,
                            500, rng)  # fmt: skip
    assert shifted == 1 / 501 and is_floor(shifted, 500)  # the floor, an honest bound
    assert not is_floor(p_null, 500)
    low, high = bootstrap_ci(same, np.ones(200), identity, 500, rng)
    assert low < same.mean() < high
    assert normal_tail(1.96, 1.0) == pytest.approx(0.05, abs=1e-3)


def test_groups_banding_capping_missing_and_derived():
    users = pd.DataFrame(
        {"age": [17, 22, 30, 40, 47, 52, 60] * 3, "city": [f"c{i % 10}" for i in range(21)],
         "flat": ["x"] * 21, "gender": ["F", "M", None] * 7},
        index=pd.Index([f"u{i:02d}" for i in range(21)], name="user_id"),
    )  # fmt: skip
    groups, notes = user_attribute_groups(users, users.index.to_numpy(), None, max_groups=8)
    assert sorted(groups["age"].unique()) == ["18-24", "25-34", "35-44", "45-49", "50-55",
                                               "56+", "Under 18"]  # fmt: skip
    assert groups["city"].nunique() == 8 and "other" in set(groups["city"])
    assert any("city: 10 values" in n for n in notes)
    flat = "User attribute 'flat' has one value (x) for all users: nothing to compare, left out."
    assert "flat" not in groups and flat in notes  # one value: left out, with a note
    assert (groups["gender"] == "unknown").sum() == 7
    assert any("7 users have no value" in n for n in notes)
    _, notes = user_attribute_groups(users, users.index.to_numpy(), ["flat"], 5)
    assert flat in notes
    sizes = pd.Series(np.arange(1, 41), index=[f"u{i:02d}" for i in range(40)])
    assert activity_groups(sizes).value_counts()["active"] == 2  # 5% of 40
    assert set(activity_groups(sizes).index[activity_groups(sizes) == "active"]) == {"u39", "u38"}
    propensity = propensity_groups(sizes.astype(float)).value_counts()
    assert propensity.to_dict() == {"diverse": 24, "niche": 8, "blockbuster": 8}
    merged, note = cap_groups(pd.Series(list("aaabbc"), name="x"), 2)
    assert merged.tolist() == list("aaa") + ["other"] * 3 and "apart" not in note[0]


def test_a_kept_value_named_other_is_never_mixed_with_the_merged_values():
    # MovieLens 100K's occupations hold "other" (105 users) among the largest values: the
    # smaller values merged into it would make a group of 253 while the note said 148
    occupations = ["other"] * 4 + ["student"] * 3 + ["doctor", "lawyer"]
    merged, (note,) = cap_groups(pd.Series(occupations, name="occupation"), 3)
    assert merged.value_counts().to_dict() == {"other": 4, "student": 3, "other (merged)": 2}
    assert note.endswith("the other 2 (doctor and lawyer; 2 users) are merged into 'other "
                         "(merged)'. The data's own 'other' is a group apart.")  # fmt: skip
    items = pd.DataFrame(
        {"genres": [("other",), ("other",), ("drama",), ("drama",), ("war",), ("noir",)]},
        index=pd.Index([f"i{n}" for n in range(6)], name="item_id"),
    )
    groups, notes = item_attribute_groups(items, items.index.to_numpy(), ["genres"], 3)
    membership = groups["genres"]
    assert membership.sum().to_dict() == {"other": 2, "drama": 2, "other (merged)": 2}
    assert membership.loc["i0", "other"] and not membership.loc["i0", "other (merged)"]
    assert any(
        n.endswith(
            "the other 2 (noir and war) merged into 'other (merged)'. The "
            "data's own 'other' is a group apart."
        )
        for n in notes
    ), notes


def test_audit_without_attributes_and_with_k_over_catalogue():
    rows = ["user,item,rating"] + [f"u{u},i{i},{(u + 2 * i) % 5 + 1}" for u in range(40)
                                   for i in range(8) if (u + i) % 3]  # fmt: skip
    data = load_dataset(DataFile("r.csv", ("\n".join(rows) + "\n").encode()))
    model = train(data, ModelConfig(n_factors=4, n_epochs=5))
    evaluation = evaluate(data, ModelConfig(n_factors=4, n_epochs=5),
                          EvaluationConfig(folds=2, models=("SVD",)))  # fmt: skip
    config = AuditConfig(k=50, bootstrap=20, permutations=50, min_group_size=2)
    result = run_audit(data, model, evaluation, config)
    assert set(result.metrics["grouping"]) >= {"activity", "popularity propensity"}
    assert any("k = 50 exceeds the catalogue of 8 items" in n for n in result.notes)


def test_invalid_audit_config():
    with pytest.raises(ConfigError, match=r"AuditConfig\.band=\(1\.2, 2\.0\) must satisfy"):
        AuditConfig(band=(1.2, 2.0))
    with pytest.raises(ConfigError, match=r"AuditConfig\.min_group_size=0"):
        AuditConfig(min_group_size=0)
