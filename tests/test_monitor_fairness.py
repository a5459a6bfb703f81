"""Fairness over time (engine.monitor_fairness): provider shares and group gaps per window.

Known answers on hand-built units (exposure share exactly 0.5 then 0; RMSE exactly twice
the reference's), a toy without change, and the sample's planted provider decay over 3
seeds (``engine.synth.generate``), with no flag on the control attributes.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from engine import load_dataset
from engine.model.config import ModelConfig
from engine.monitor import MonitorConfig, monitor
from engine.monitor_changes import change_table, value_table
from engine.monitor_fairness import gap_change_table, gap_table, list_units
from engine.synth import SynthConfig, generate, write_dataset
from tests.conftest import per_seed

SETTINGS = MonitorConfig(min_group_size=10, bootstrap=200, permutations=500)
MEMBERSHIP = pd.DataFrame({"P": [True, False], "Q": [False, True]}, index=["p1", "q1"])


def _windows(n: int) -> pd.DataFrame:
    return pd.DataFrame({"window": range(n), "label": [f"w{i}" for i in range(n)],
                         "status": ["ok"] * n})  # fmt: skip


def _lists(w: int, users: int, p_first: list[bool]) -> pd.DataFrame:
    """Two-item lists: ``p_first[u % len]`` puts P's item at rank 1, else at rank 2."""
    rows = []
    for u in range(users):
        first, second = ("p1", "q1") if p_first[u % len(p_first)] else ("q1", "p1")
        rows += [(f"w{w}u{u}", 1, first), (f"w{w}u{u}", 2, second)]
    return pd.DataFrame(rows, columns=["user_id", "rank", "item_id"])


def _exposure_run(second: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    # Window 0: half the users see P first, half second: P's share is exactly 1/2.
    units = pd.concat([list_units(_lists(0, 40, [True, False]), MEMBERSHIP, "provider", 0),
                       list_units(second, MEMBERSHIP, "provider", 1)])  # fmt: skip
    values = value_table(units, {}, _windows(2), SETTINGS)
    return values, change_table(units, {}, _windows(2), values, 0, SETTINGS)


def test_exposure_share_known_answer_half_then_none_is_flagged():
    only_q = pd.DataFrame({"user_id": [f"v{u}" for u in range(40)], "rank": 1, "item_id": "q1"})
    values, changes = _exposure_run(only_q)
    share = values.set_index(["window", "group"])["value"]
    assert share[0, "P"] == pytest.approx(0.5) and share[0, "Q"] == pytest.approx(0.5)
    assert share[1, "P"] == 0.0 and share[1, "Q"] == 1.0
    # A user who sees P first has share 1 / (1 + 1 / log2 3) of the weight on P.
    by_user = list_units(_lists(0, 2, [True, False]), MEMBERSHIP, "provider", 0)
    p_rows = by_user[by_user["group"] == "P"]
    first = 1 / (1 + 1 / math.log2(3))
    assert sorted(p_rows["a"] / p_rows["b"]) == pytest.approx([1 - first, first])
    row = changes[(changes["group"] == "P") & (changes["comparison"] == "previous")].iloc[0]
    assert row["ratio"] == 0.0 and row["difference"] == pytest.approx(-0.5)
    assert row["tier"] == "flagged" and row["p_method"] == "normal approximation"
    assert row["sentence"].startswith("Exposure share for provider = P fell from 0.500 to 0.000")
    q = changes[(changes["group"] == "Q")].iloc[0]
    assert q["ratio"] == pytest.approx(2.0) and q["tier"] == "flagged"


def test_exposure_share_without_change_is_not_flagged():
    values, changes = _exposure_run(_lists(1, 60, [False, True]))  # same half / half, new users
    assert values["value"].to_numpy() == pytest.approx([0.5] * 4)
    assert changes["ratio"].to_numpy() == pytest.approx([1.0] * len(changes))
    assert (changes["tier"] == "").all() and (changes["p_value"] > 0.5).all()


def _rmse_units(w: int, errors: dict[str, tuple[float, float]]) -> tuple[pd.DataFrame, dict]:
    """50 users per group, 4 ratings each; squared errors alternate between the pair."""
    rows, labels = [], {}
    for group, pair in errors.items():
        for u in range(50):
            user = f"{group}{u}"
            rows.append((w, "rmse", user, pair[u % 2], 4.0))
            labels[user] = group
    frame = pd.DataFrame(rows, columns=["window", "quantity", "user_id", "a", "b"])
    return frame, labels


def test_a_gap_twice_the_reference_is_flagged_and_its_closing_too():
    # Window 0: A (50 users) has RMSE sqrt(mean(12, 20) / 4) = 2; B (100 users, the
    # reference: most users) has sqrt(mean(3, 5) / 4) = 1.
    w0, l0 = _rmse_units(0, {"A": (12.0, 20.0), "B": (3.0, 5.0)})
    extra, l2 = _rmse_units(0, {"B": (3.0, 5.0)})
    extra["user_id"] = extra["user_id"] + "x"
    w1, l1 = _rmse_units(1, {"A": (3.0, 5.0), "B": (3.0, 5.0)})
    units = pd.concat([w0, extra, w1], ignore_index=True)
    labels = {**l0, **{k + "x": v for k, v in l2.items()}, **l1}
    groupings = {"side": pd.Series(labels)}
    gaps, _ = gap_table(units, groupings, _windows(2), SETTINGS)
    g = gaps.set_index(["window", "group"])
    assert g.loc[(0, "B"), "status"] == "reference" and g.loc[(0, "A"), "reference_group"] == "B"
    assert g.loc[(0, "A"), "value"] == pytest.approx(2.0)  # sqrt(mean(12, 20) / 4)
    assert g.loc[(0, "A"), "ratio"] == pytest.approx(2.0) and g.loc[(0, "A"), "tier"] == "flagged"
    assert g.loc[(0, "A"), "ci_low"] > 1.25 and g.loc[(0, "A"), "sentence"].endswith("flagged")
    # No permutation reaches a perfect separation: the floor p is refined (family of m = 2
    # tests, B' = ceil(20 * 2 / 0.05) = 800 > 500 permutations) and is still a bound.
    assert g.loc[(0, "A"), "p_value"] == pytest.approx(1 / 801) and g.loc[(0, "A"), "p_is_bound"]
    assert "p < 0.0013" in g.loc[(0, "A"), "sentence"]
    # Window 1: equal groups; the reference is A (first by name among equals), B at parity.
    assert g.loc[(1, "B"), "ratio"] == pytest.approx(1.0) and g.loc[(1, "B"), "tier"] == ""


def test_change_p_values_are_refined_per_holm_family_and_stay_bounds():
    # A's RMSE halves from window 0 to 1 (users are new), B's stays: the change of A is
    # beyond every permutation, so its p is the floor of the draws behind it.
    w0, l0 = _rmse_units(0, {"A": (12.0, 20.0), "B": (3.0, 5.0)})
    w1, l1 = _rmse_units(1, {"A": (3.0, 5.0), "B": (3.0, 5.0)})
    w1["user_id"] = w1["user_id"] + "w1"
    units = pd.concat([w0, w1], ignore_index=True)
    groupings = {"side": pd.Series({**l0, **{k + "w1": v for k, v in l1.items()}})}
    values = value_table(units, groupings, _windows(2), SETTINGS)
    changes = change_table(units, groupings, _windows(2), values, 0, SETTINGS)
    c = changes[changes["comparison"] == "previous"].set_index("group")
    # (rmse, side, previous) holds m = 2 tests: B' = ceil(20 * 2 / 0.05) = 800 > 500, and
    # A's floor p is redrawn; B's (p > alpha) is not.
    assert c.loc["A", "p_value"] == pytest.approx(1 / 801) and c.loc["A", "p_is_bound"]
    assert c.loc["B", "p_value"] > 0.05 and not c.loc["B", "p_is_bound"]
    # (rmse, all, previous) holds one test: 400 draws would do, the first pass's 500 stay.
    assert c.loc["all", "p_value"] == pytest.approx(1 / 501) and c.loc["all", "p_is_bound"]
    assert c["tier"].to_dict() == {"A": "flagged", "B": "", "all": "flagged"}


def test_a_gap_that_closes_is_flagged_as_narrowed():
    units, labels = [], {}
    for w, a_pair in ((0, (12.0, 20.0)), (1, (3.0, 5.0))):
        frame, lab = _rmse_units(w, {"A": a_pair, "B": (3.0, 5.0)})
        more, lab2 = _rmse_units(w, {"B": (3.0, 5.0)})
        more["user_id"] += "x"
        frame["user_id"] = frame["user_id"] + f"w{w}"
        more["user_id"] = more["user_id"] + f"w{w}"
        units += [frame, more]
        labels |= {k + f"w{w}": v for k, v in lab.items()}
        labels |= {k + f"xw{w}": v for k, v in lab2.items()}
    gaps, replicates = gap_table(pd.concat(units), {"side": pd.Series(labels)}, _windows(2),
                                 SETTINGS)  # fmt: skip
    changes = gap_change_table(gaps, replicates, 0, SETTINGS)
    row = changes[changes["comparison"] == "previous"].iloc[0]
    assert row["ratio"] == pytest.approx(1.0) and row["other_ratio"] == pytest.approx(2.0)
    assert row["ratio_change"] == pytest.approx(0.5) and row["tier"] == "flagged"
    assert "narrowed: ratio 2.00 -> 1.00 in w1" in row["sentence"]


# --- the sample's planted provider decay, 3 seeds ---------------------------------------------


SEEDS = (0, 1, 2)


def monitored_decay(seed: int, folder: str) -> tuple[dict, object]:
    """``(truth, monitoring)`` of the sample generated with ``seed`` (written to ``folder``)."""
    dataset = generate(SynthConfig(seed=seed))
    truth = dataset.ground_truth["over_time"]
    before = pd.Timestamp(f"{truth['provider_decay']['from']}-01") - pd.DateOffset(months=1)
    config = MonitorConfig(bootstrap=100, permutations=1000, user_attributes=truth["controls"],
                           model=ModelConfig(n_factors=20, n_epochs=10),
                           baseline=before.strftime("%Y-%m"))  # fmt: skip
    write_dataset(dataclasses.replace(dataset), folder)
    return truth, monitor(load_dataset(folder), truth["window"], config)


@pytest.fixture(scope="module")
def decays(tmp_path_factory):
    """``monitored_decay`` of every seed, the seeds in parallel processes."""
    return per_seed(monitored_decay, SEEDS, tmp_path_factory, "decay")


@pytest.fixture(params=SEEDS)
def decayed(request, decays):
    return decays[request.param]


def test_the_decaying_provider_is_flagged_from_the_planted_month(decayed):
    truth, result = decayed
    decay = truth["provider_decay"]
    c = result.changes[(result.changes["grouping"] == decay["attribute"])
                       & (result.changes["group"] == decay["group"])]  # fmt: skip
    share = c[c["quantity"] == "rating_share"]
    drops = share[(share["comparison"] == "previous") & (share["tier"] == "flagged")]
    assert drops["label"].min() == decay["from"]  # first flagged in the planted month
    assert (drops["ratio"] < 0.8).all()
    after = share[(share["comparison"] == "baseline") & (share["label"] >= decay["from"])]
    assert len(after) and (after["tier"] == "flagged").all() and (after["ratio"] < 0.8).all()
    exposure = c[(c["quantity"] == "exposure") & (c["comparison"] == "baseline")]
    flagged = exposure[exposure["tier"] == "flagged"]
    assert len(flagged) and (flagged["label"] >= decay["from"]).all()
    assert (flagged["ratio"] < 0.8).all()  # served less than the month before the decay
    assert flagged["sentence"].str.contains(f"Exposure share for provider = {decay['group']} "
                                            "fell from").all()  # fmt: skip
    assert flagged["sentence"].str.contains("catalogue share 0.").all()
    values = result.exposure[result.exposure["group"] == decay["group"]]
    assert (values["catalogue_share"].between(0, 1)).all()
    # Exposure shares of a single-valued attribute sum to 1 in every window.
    totals = result.exposure.groupby("window")["exposure_share"].sum()
    assert np.allclose(totals, 1.0)


def test_no_control_attribute_is_flagged_for_any_change_or_rmse_gap(decayed):
    """Controls: no flagged change (any quantity), gap change, or RMSE gap in any window.

    A change that every user shares is not the control's: a control group's change is not
    asserted in a (quantity, comparison, window) where the change of all users (grouping
    ``"all"``) is significant itself. The sample's RMSE does change for everyone (the
    model's first months, the late cohort's unsettled months), and the groups of a control
    inherit it: in seed 1, RMSE of all users fell 2022-02 -> 2022-03 (ratio 0.87, p 0.00057
    with the refinement, notable) and region = East's by 0.77, outside the band (p 0.00058
    from 34,800 permutations, Holm 0.049: flagged; with 1,000 permutations its p was at
    the 1/1001 floor, Holm 0.087, and the resolution hid it).

    Per-window NDCG@k gaps are not asserted: NDCG@10 per window is about 0.01 on the
    sample (15-30 users with a hit per group), and over 3 seeds x 2 controls x ~23 windows
    a chance gap reaches Holm's threshold now and then. With the first pass alone (1,000
    permutations) gender was flagged in seed 0 (2023-03, p at its 1/1001 floor) and seed 2
    (2023-12, p at its floor). With the refinement of p-values whose decision depends on
    the resolution (``engine.audit.stats.refine_permutation_p``: the family holds m = 23
    tests, so both were redrawn with 9,200 permutations) seed 2's p is 0.0036 (Holm
    0.083, not flagged) but seed 0's is 0.00033 (3/9201; Holm 0.0075, still flagged): a
    chance gap of the data, not of the resolution. The family-wise rate is controlled per
    (quantity, attribute), not zero.
    """
    truth, result = decayed
    controls = truth["controls"]
    changes = result.changes
    everyone = changes[(changes["grouping"] == "all") & (changes["tier"] != "")]
    shared = set(zip(everyone["quantity"], everyone["comparison"], everyone["window"], strict=True))
    keys = zip(changes["quantity"], changes["comparison"], changes["window"], strict=True)
    own = changes[[key not in shared for key in keys]]
    gaps = result.fairness[result.fairness["quantity"] == "rmse"]
    for table in (own, gaps, result.gap_changes):
        rows = table[table["grouping"].isin(controls)]
        assert len(rows) and rows["p_value"].notna().any()  # they were tested
        assert (rows["tier"] != "flagged").all(), rows.loc[rows["tier"] == "flagged", "sentence"]
