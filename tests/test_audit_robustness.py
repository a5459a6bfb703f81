"""Robustness of the audit (issue #14): odd attributes, switched-off statistics, empty
groups and tiny data give clean results with notes, never a crash or a RuntimeWarning."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from engine import ConfigError, DataFile, load_dataset
from engine.audit import AuditConfig, run_audit
from engine.audit.groups import item_attribute_groups, user_attribute_groups
from engine.audit.rows import NO_INTERVAL, deviation, group_rows
from engine.audit.specs import REGISTRY
from engine.audit.stats import identity
from engine.evaluate import EvaluationConfig, evaluate
from engine.model import ModelConfig, train
from engine.recommend import recommend_all
from engine.report.findings import findings

SMALL = ModelConfig(n_factors=4, n_epochs=5)
QUICK = {"bootstrap": 20, "permutations": 50, "min_group_size": 2, "explanations": False}


def _toy(rating, n_users: int = 40, n_items: int = 8, skip=lambda u, i: (u + i) % 3 == 0):
    rows = ["user,item,rating"] + [
        f"u{u:02d},i{i},{rating(u, i)}"
        for u in range(n_users)
        for i in range(n_items)
        if not skip(u, i)
    ]
    data = load_dataset(DataFile("r.csv", ("\n".join(rows) + "\n").encode()))
    evaluation = evaluate(data, SMALL, EvaluationConfig(folds=2, models=("SVD",)))
    return data, train(data, SMALL), evaluation


@pytest.fixture(scope="module")
def toy():
    """40 users x 8 items on a 1-5 scale, each user missing about a third of the items."""
    return _toy(lambda u, i: (u + 2 * i) % 5 + 1)


def _users(data, **columns) -> pd.DataFrame:
    ids = sorted(data.ratings["user_id"].unique())
    return pd.DataFrame(columns, index=pd.Index(ids, name="user_id"))


def _items(data, **columns) -> pd.DataFrame:
    ids = sorted(data.ratings["item_id"].unique())
    return pd.DataFrame(columns, index=pd.Index(ids, name="item_id"))


def _audit(data, model, evaluation, **settings):
    """Run the audit with RuntimeWarnings turned into errors."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return run_audit(data, model, evaluation, AuditConfig(**{**QUICK, **settings}))


def _rows(result, metric, grouping):
    m = result.metrics
    return m[(m["metric"] == metric) & (m["grouping"] == grouping)].set_index("group")


# --- 1. non-finite numbers --------------------------------------------------------------


def test_infinite_values_form_their_own_groups_and_quartiles_use_finite_values():
    income = [float(v) for v in range(18)] + [np.inf, -np.inf, np.nan]
    ids = [f"u{i:02d}" for i in range(len(income))]
    users = pd.DataFrame({"income": income}, index=pd.Index(ids, name="user_id"))
    groups, notes = user_attribute_groups(users, np.array(ids), None, max_groups=12)
    # Quartiles of 0..17: 0, 4.25, 8.5, 12.75, 17 -> bands of 5, 4, 4, 5 users.
    sizes = groups["income"].value_counts()
    assert sizes.to_dict() == {
        "(-0.001, 4.25]": 5, "(4.25, 8.5]": 4, "(8.5, 12.75]": 4, "(12.75, 17.0]": 5,
        "inf": 1, "-inf": 1, "unknown": 1,
    }  # fmt: skip
    assert (
        "income: 2 users have a non-finite value (1 inf, 1 -inf); they form the groups "
        "'inf' and '-inf'; the bands use the 18 finite values." in notes
    )
    assert "income: 1 user has no value and forms the group 'unknown'." in notes


def test_infinite_ages_and_item_years_do_not_vanish():
    ages = [20.0, 30.0, 40.0, np.inf, -5.0, 250.0]
    ids = [f"u{i}" for i in range(len(ages))]
    users = pd.DataFrame({"age": ages}, index=pd.Index(ids, name="user_id"))
    groups, notes = user_attribute_groups(users, np.array(ids), None, max_groups=12)
    assert groups["age"].tolist() == ["18-24", "25-34", "35-44", "inf", "unknown", "unknown"]
    assert "age: 2 users have an age outside 0-199 and join the group 'unknown'." in notes
    years = [1990.0 + i for i in range(13)] + [np.inf]
    item_ids = [f"i{i:02d}" for i in range(len(years))]
    items = pd.DataFrame({"year": years}, index=pd.Index(item_ids, name="item_id"))
    membership, notes = item_attribute_groups(items, np.array(item_ids), None, max_groups=12)
    assert membership["year"].sum().to_dict() == {"1990s": 10, "2000s": 3, "inf": 1}
    assert any("year: 1 items have a non-finite value (1 inf)" in n for n in notes)


def test_audit_with_an_infinite_attribute_of_many_values_runs(toy):
    data, model, evaluation = toy
    income = np.arange(40, dtype=float)
    income[:3] = np.inf
    data = dataclasses.replace(data, users=_users(data, income=income))
    result = _audit(data, model, evaluation)
    rmse = _rows(result, "rmse", "income")
    assert rmse.loc["inf", "n_users"] == 3
    assert rmse["n_users"].sum() == 40  # nobody lost
    assert any("3 users have a non-finite value (3 inf)" in n for n in result.notes)


# --- 2. attributes named like a derived grouping ----------------------------------------


def test_attribute_named_like_a_derived_grouping_is_kept_under_a_distinct_name(toy):
    data, model, evaluation = toy
    users = _users(data, **{"activity": ["x", "y"] * 20, "popularity propensity": ["p"] * 20
                            + ["q"] * 20, "region": ["n", "s"] * 20})  # fmt: skip
    items = _items(
        data, **{"item popularity": ["hit", "flop"] * 4, "region": ["n"] * 4 + ["s"] * 4}
    )
    data = dataclasses.replace(data, users=users, items=items)
    result = _audit(data, model, evaluation)
    groupings = set(result.metrics["grouping"])
    assert {"activity", "activity (user attribute)", "popularity propensity",
            "popularity propensity (user attribute)", "item popularity",
            "item popularity (item attribute)", "region",
            "region (item attribute)"} <= groupings  # fmt: skip
    assert set(_rows(result, "rmse", "activity").index) == {"active", "inactive"}
    assert set(_rows(result, "rmse", "activity (user attribute)").index) == {"x", "y"}
    assert set(_rows(result, "exposure_share", "item popularity").index) == {
        "short head", "long tail"}  # fmt: skip
    assert set(_rows(result, "exposure_share", "region (item attribute)").index) == {"n", "s"}
    assert (
        "User attribute 'activity' is audited as 'activity (user attribute)': a derived "
        "grouping has the name 'activity', and both are kept." in result.notes
    )
    assert result.attribute_groupings == {
        "user": {"activity": "activity (user attribute)",
                 "popularity propensity": "popularity propensity (user attribute)",
                 "region": "region"},
        "item": {"item popularity": "item popularity (item attribute)",
                 "region": "region (item attribute)"},
    }  # fmt: skip


# --- 3. every attribute left out gets a note --------------------------------------------


def test_every_left_out_attribute_gets_a_note():
    ids = [f"u{i:04d}" for i in range(1200)]
    users = pd.DataFrame(
        {"flat": ["x"] * 1200, "empty": [None] * 1200, "code": [f"c{i}" for i in range(1200)],
         "half": ["h"] * 600 + [None] * 600},
        index=pd.Index(ids, name="user_id"),
    )  # fmt: skip
    groups, notes = user_attribute_groups(users, np.array(ids), None, max_groups=12)
    assert groups == {}
    assert notes == [
        "User attribute 'flat' has one value (x) for all users: nothing to compare, left out.",
        "User attribute 'empty' has no value for any user: nothing to compare, left out.",
        "User attribute 'code' has 1,200 distinct values (more than 1,000, like an "
        "identifier): left out; choose it by name to audit its 11 largest values (numbers "
        "in bands).",
        "User attribute 'half' has one value (h) for all users with a value (600 have none): "
        "nothing to compare, left out.",
    ]
    groups, notes = user_attribute_groups(users, np.array(ids), ["code"], max_groups=12)
    assert groups["code"].nunique() == 12
    assert any(
        "the other 1,189 (c11, c12, c13, c14, c15, c16, c17, c18 and 1,181 more; 1,189 "
        "users) are merged into 'other'" in n
        for n in notes
    ), notes

    item_ids = ["a", "b", "c"]
    for genres, note in (
        ([(), (), ()], "Item attribute 'genres' has no value for any item"),
        ([("Drama",)] * 3, "Item attribute 'genres' has one value (Drama) for all items"),
    ):
        items = pd.DataFrame({"genres": genres}, index=pd.Index(item_ids, name="item_id"))
        membership, notes = item_attribute_groups(items, np.array(item_ids), None, 12)
        assert membership == {} and any(n.startswith(note) for n in notes), notes
    _, notes = item_attribute_groups(None, np.array(item_ids), ["provider"], 12)
    assert notes == ["No item attribute table was loaded; only item popularity is audited."]


def test_a_text_attribute_with_a_value_for_nearly_every_user_is_left_out_unless_chosen():
    """Like MovieLens 100K's zip_code (795 values for 943 users): more values than half the
    users with one is an identifier, left out by default with a note; at exactly half it is
    kept, and so is a numeric one (banded); chosen by name it is audited, capped."""
    ids = [f"u{i:03d}" for i in range(100)]
    users = pd.DataFrame(
        {"zip": [f"z{i // 2 if i < 98 else i}" for i in range(100)],  # 49 pairs, 2 alone: 51
         "postcode": [f"p{i // 2}" for i in range(100)],  # 50 values: exactly half
         "score": np.arange(100.0)},
        index=pd.Index(ids, name="user_id"),
    )  # fmt: skip
    groups, notes = user_attribute_groups(users, np.array(ids), None, max_groups=12)
    assert sorted(groups) == ["postcode", "score"]
    assert notes[0] == (
        "User attribute 'zip' has 51 distinct values for 100 users (more than 50%, like an "
        "identifier: its groups would be too small to test): left out; choose it by name to "
        "audit its 11 largest values."
    )
    groups, _ = user_attribute_groups(users, np.array(ids), ["zip"], max_groups=12)
    assert groups["zip"].nunique() == 12


def test_any_tuple_valued_item_column_is_multi_valued_membership():
    item_ids = np.array(["a", "b", "c", "d"])
    tags = [("kids", "music"), ("music",), (), ("kids",)]
    items = pd.DataFrame({"tags": tags}, index=pd.Index(item_ids, name="item_id"))
    membership, _ = item_attribute_groups(items, item_ids, None, 12)
    table = membership["tags"]
    assert table["kids"].tolist() == [True, False, False, True]
    assert table["music"].tolist() == [True, True, False, False]
    assert table["unknown"].tolist() == [False, False, True, False]


def test_group_without_any_user_for_a_metric_keeps_its_row():
    labels = pd.Series({"u1": "a", "u2": "a", "u3": "b"})
    parts = (pd.Series({"u1": 1.0, "u2": 3.0}), pd.Series({"u1": 1.0, "u2": 1.0}), identity)
    rows = group_rows(REGISTRY["ndcg"], "g", labels, parts, pd.Series({"u1": 5, "u2": 7, "u3": 9}),
                       AuditConfig(**QUICK), np.random.default_rng(0))  # fmt: skip
    by_group = {r["group"]: r for r in rows}
    assert by_group["a"]["value"] == 2.0 and by_group["a"]["status"] == "reference"
    assert by_group["b"]["n_users"] == 0 and by_group["b"]["status"] == "insufficient data"


# --- 4. bootstrap off: no interval --------------------------------------------------------


def test_bootstrap_off_gives_no_interval_anywhere(toy):
    data, model, evaluation = toy
    result = _audit(data, model, evaluation, bootstrap=0)
    m = result.metrics
    assert m["ci_low"].isna().all() and m["ci_high"].isna().all()
    exposure = m[m["family"] == "exposure"]
    assert set(exposure["status"]) <= {"not tested", "by definition", "insufficient data"}
    assert "not tested" in set(exposure["status"]) and exposure["p_value"].isna().all()
    assert any(NO_INTERVAL in n for n in result.notes)


def test_exposure_interval_uses_the_configured_number_of_replicates(toy):
    data, model, evaluation = toy
    result = _audit(data, model, evaluation, bootstrap=1)
    exposure = result.metrics[result.metrics["family"] == "exposure"]
    # One replicate: both percentiles are that replicate (two would usually differ).
    tested = exposure[exposure["status"] != "by definition"]
    assert len(tested) and (tested["ci_low"] == tested["ci_high"]).all()
    assert any("Only 1 bootstrap replicate:" in n for n in result.notes)


def test_finding_without_interval_says_so():
    row = {"family": "accuracy", "metric": "rmse", "grouping": "g", "group": "a",
           "n_users": 40, "n_ratings": 400, "value": 1.2, "ci_low": np.nan, "ci_high": np.nan,
           "reference_group": "b", "ratio": 1.5, "p_value": 0.001, "p_adjusted": 0.002,
           "flag": True, "direction": "worse", "status": "flagged", "better": "lower",
           "definition": ""}  # fmt: skip
    reference = {**row, "group": "b", "value": 0.8, "ratio": 1.0, "flag": False,
                 "status": "reference", "direction": ""}  # fmt: skip
    (finding,) = findings(pd.DataFrame([row, reference]))
    assert f"{NO_INTERVAL}, Holm-adjusted p = 0.002" in finding.sentence
    assert "nan" not in finding.sentence


# --- 5. threshold from the scale, seed validated ------------------------------------------


def test_threshold_defaults_to_the_scale_and_is_recorded():
    data, model, evaluation = _toy(lambda u, i: (u + 2 * i) % 10 + 1)  # a 1-10 scale
    result = _audit(data, model, evaluation)
    assert AuditConfig().threshold is None
    assert result.config.threshold == 8.0 and result.threshold_source == "scale"
    assert result.relevance_rule == (
        "relevant = rating >= 8, three quarters of the way up the 1-10 scale (rounded up to a "
        "rating step)"
    )
    assert any("relevant = rating >= 8" in n for n in result.notes)
    given = _audit(data, model, evaluation, threshold=6)
    assert given.config.threshold == 6.0 and given.threshold_source == "given"
    assert any("PopREO uses 6" in n for n in given.notes)  # the evaluation used 8


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"seed": -1}, r"AuditConfig\.seed=-1 is not allowed: use an integer in \[0, 4294967295\]"),
        ({"seed": 2**32}, r"AuditConfig\.seed=4294967296 is not allowed"),
        ({"seed": 1.5}, r"AuditConfig\.seed=1\.5 is not allowed"),
        ({"seed": True}, r"AuditConfig\.seed=True is not allowed"),
        ({"threshold": float("nan")}, r"AuditConfig\.threshold=nan is not allowed: use a finite"),
        ({"bootstrap": 2.5}, r"AuditConfig\.bootstrap=2\.5 is not allowed: use an integer >= 0"),
        ({"alpha": 1.0}, r"AuditConfig\.alpha=1\.0 is not allowed"),
    ],
)
def test_invalid_settings_name_the_field_and_the_range(settings, message):
    with pytest.raises(ConfigError, match=message):
        AuditConfig(**settings)


def test_seed_bounds_are_allowed():
    assert AuditConfig(seed=0).seed == 0 and AuditConfig(seed=2**32 - 1).seed == 2**32 - 1
    assert AuditConfig(band=[0.8, 1.25]).band == (0.8, 1.25)  # a list (JSON) is kept hashable


# --- 6. no RuntimeWarning in small audits ---------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"threshold": 6},  # above the 1-5 scale: PopREO undefined in every fold
        {"bootstrap": 0, "permutations": 0},
        {"k": 1, "min_group_size": 1},
        {"min_group_size": 10_000, "permutations": 1, "bootstrap": 1},
    ],
)
def test_small_audit_raises_no_runtime_warning(toy, settings):
    data, model, evaluation = toy
    result = _audit(data, model, evaluation, **settings)  # warnings are errors in _audit
    assert len(result.metrics) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result.flagged()


def test_ratio_deviation_orders_zero_and_negative_ratios_first_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        distance = deviation(pd.Series([2.0, 0.5, 0.0, -0.5, np.nan, 1.0]))
    assert distance[:2] == pytest.approx([math.log(2), math.log(2)])
    assert np.isinf(distance[2]) and np.isinf(distance[3])
    assert np.isnan(distance[4]) and distance[5] == 0.0


# --- 7. exposure of groups no list reaches --------------------------------------------------


def test_item_group_no_list_reaches_has_exposure_zero_and_is_under_exposed(toy):
    data, model, evaluation = toy
    shown = set(recommend_all(model, 1)["item_id"])
    items = sorted(data.ratings["item_id"].unique())
    never = [i for i in items if i not in shown]
    assert never  # k = 1 leaves some items out of every list
    provider = ["hidden" if i in never else "shown" for i in items]
    data = dataclasses.replace(data, items=_items(data, provider=provider))
    result = _audit(data, model, evaluation, k=1, bootstrap=200)
    hidden = _rows(result, "exposure_share", "provider").loc["hidden"]
    assert hidden["value"] == 0.0 and hidden["ratio"] == 0.0
    # Every bootstrap replicate is 0: p is the bootstrap's bound 1 / (B + 1) (not p = 0);
    # "shown" holds every list (share 1 in every replicate: no variation, not tested), so
    # the family has this one test: Holm leaves 1 / 201 < 0.05: flagged, under-exposed.
    assert hidden["p_value"] == 1 / 201 and hidden["p_is_bound"]
    assert hidden["p_method"] == "bootstrap" and hidden["p_adjusted"] == 1 / 201
    assert hidden["flag"] and hidden["tier"] == "flagged"
    assert hidden["direction"] == "under-exposed"
    off = _audit(data, model, evaluation, k=1, bootstrap=0)
    hidden = _rows(off, "exposure_share", "provider").loc["hidden"]
    assert hidden["value"] == 0.0 and hidden["status"] == "not tested"


def test_no_recommendation_at_all_gives_an_explicit_status_and_notes():
    # Every user rated every item: nothing is left to recommend.
    data, model, evaluation = _toy(lambda u, i: (3 * u + 2 * i) % 5 + 1, n_users=12,
                                   n_items=4, skip=lambda u, i: False)  # fmt: skip
    data = dataclasses.replace(data, items=_items(data, genres=[("A",), ("B",)] * 2))
    result = _audit(data, model, evaluation, explanations=True)
    exposure = result.metrics[result.metrics["metric"] == "exposure_share"]
    assert exposure["value"].isna().all()
    assert set(exposure["status"]) <= {"no recommendations", "insufficient data"}
    assert "no recommendations" in set(exposure["status"])
    notes = " ".join(result.notes)
    assert "12 of 12 users have rated every item and get no recommendation" in notes
    assert ("arp, aplt, aclt, novelty, miscalibration, explanation_support, deletion_fidelity "
            "are not audited by group") in notes  # fmt: skip
    assert "No list holds any item" in notes


# --- 8. degenerate settings and data --------------------------------------------------------


def test_every_group_insufficient_returns_cleanly_with_notes(toy):
    data, model, evaluation = toy
    data = dataclasses.replace(data, users=_users(data, gender=["F", "M"] * 20))
    result = _audit(data, model, evaluation, min_group_size=10_000, permutations=1)
    user_rows = result.metrics[result.metrics["family"] != "exposure"]
    assert (user_rows["status"] == "insufficient data").all()
    assert not result.metrics["flag"].any() and result.flagged().empty and result.hints == []
    assert (
        "No group of 'gender', 'activity', 'popularity propensity' has at least 10000 users "
        "(the minimum group size): all its rows are insufficient data and nothing is "
        "compared." in result.notes
    )
    assert any(n.startswith("Only 1 label permutation:") for n in result.notes)


def test_permutations_off_leaves_user_groups_untested(toy):
    data, model, evaluation = toy
    result = _audit(data, model, evaluation, permutations=0)
    user_rows = result.metrics[result.metrics["family"] != "exposure"]
    assert set(user_rows["status"]) <= {"reference", "insufficient data", "not tested",
                                        "no variation"}  # fmt: skip
    assert user_rows["p_value"].isna().all() and not user_rows["flag"].any()
    assert any("Significance tests are off (permutations = 0)" in n for n in result.notes)
