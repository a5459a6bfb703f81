"""The sample's effects planted over time are found at the planted month, with 3 seeds.

Each seed's data is generated afresh (``engine.synth.generate``), not read from the
committed sample; the expectations come from its ``ground_truth["over_time"]``.
Monitoring runs on the months up to the late cohort's settling month (the later months
add nothing to these checks), with a small SVD and modest resampling to stay fast.
"""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from engine import load_dataset
from engine.model.config import ModelConfig
from engine.monitor import MonitorConfig, monitor
from engine.synth import SynthConfig, generate, write_dataset
from tests.conftest import per_seed

SEEDS = (0, 1, 2)


def _settings(truth: dict) -> MonitorConfig:
    """Small SVD, modest resampling; the baseline is the first month after the warm-up."""
    return MonitorConfig(
        bootstrap=20,
        permutations=1000,
        user_attributes=("cohort", "region", "gender"),
        model=ModelConfig(n_factors=20, n_epochs=10),
        baseline=_steady(truth),
    )


def _steady(truth: dict) -> str:
    """First month after the regular users' joining period (the warm-up: cold start)."""
    joined = pd.Timestamp(truth["start"]) + pd.Timedelta(days=truth["early_join_days"])
    return (joined + pd.DateOffset(months=1)).strftime("%Y-%m")


def _start(month: str) -> int:
    return int(pd.Timestamp(f"{month}-01", tz="UTC").timestamp())


def _end(month: str) -> int:
    return int((pd.Timestamp(f"{month}-01", tz="UTC") + pd.DateOffset(months=1)).timestamp())


def monitored_seed(seed: int, folder: str) -> tuple[object, dict, object]:
    """``(dataset, truth, monitoring)`` of the sample generated with ``seed``, cut after the
    late cohort's settling month (written to ``folder``)."""
    dataset = generate(SynthConfig(seed=seed))
    truth = dataset.ground_truth["over_time"]
    cut = dataset.ratings[dataset.ratings["timestamp"] < _end(truth["late_cohort"]["settled"])]
    write_dataset(dataclasses.replace(dataset, ratings=cut), folder)
    return dataset, truth, monitor(load_dataset(folder), truth["window"], _settings(truth))


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """``monitored_seed`` of every seed, the seeds in parallel processes."""
    return per_seed(monitored_seed, SEEDS, tmp_path_factory, "seed")


@pytest.fixture(params=SEEDS)
def planted(request, seeds):
    return seeds[request.param]


def test_late_cohort_joins_in_the_planted_month(planted):
    dataset, truth, result = planted
    cohort = truth["late_cohort"]
    late = dataset.users.loc[dataset.users[cohort["attribute"]] == cohort["group"], "user_id"]
    first = dataset.ratings.groupby("user_id")["timestamp"].min().reindex(late)
    assert first.between(_start(cohort["joins"]), _end(cohort["joins"]) - 1).all()
    data = result.data.set_index("label")
    # The data table's spike of new users: every late user, plus a trickle of regular ones.
    assert data.loc[cohort["joins"], "new_users"] >= len(late) >= 30
    later = data.loc[data.index >= _steady(truth), "new_users"].drop(cohort["joins"])
    assert data.loc[cohort["joins"], "new_users"] > 2 * later.max()


def test_late_cohort_is_served_worse_until_it_settles(planted):
    _, truth, result = planted
    cohort = truth["late_cohort"]
    unsettled = (pd.Timestamp(f"{cohort['joins']}-01") + pd.DateOffset(months=1)).strftime("%Y-%m")
    values = result.values[(result.values["quantity"] == "rmse")
                           & (result.values["grouping"] == cohort["attribute"])]  # fmt: skip
    value = values.set_index(["label", "group"])["value"]
    # Joining month: all cold start, no RMSE; next month: far worse than the regular users.
    assert (cohort["joins"], cohort["group"]) not in value.index
    assert value[unsettled, cohort["group"]] > 1.25 * value[unsettled, cohort["reference"]]
    fair = result.fairness.set_index(["label", "quantity", "grouping", "group"])
    assert fair.loc[(unsettled, "rmse", cohort["attribute"], cohort["group"]), "outside_band"]
    # Settled month: the late cohort's RMSE falls, flagged against the previous month.
    changes = result.changes
    flagged = changes[(changes["tier"] == "flagged") & (changes["quantity"] == "rmse")
                      & (changes["grouping"] == cohort["attribute"])]  # fmt: skip
    found = flagged[(flagged["group"] == cohort["group"]) & (flagged["comparison"] == "previous")]
    assert found["label"].tolist() == [cohort["settled"]]
    assert (found["ratio"] < 1).all()
    assert any(
        f"RMSE for {cohort['attribute']} = {cohort['group']} fell" in s and cohort["settled"] in s
        for s in result.sentences
    )


def test_no_change_over_time_is_flagged_for_the_controls(planted):
    _, truth, result = planted
    changes = result.changes[result.changes["label"] > _steady(truth)]  # after the warm-up
    controls = changes[changes["grouping"].isin(truth["controls"])]
    assert len(controls) and (controls["status"] == "ok").any()
    assert (controls["tier"] != "flagged").all(), controls[controls["tier"] == "flagged"]


def test_decaying_provider_loses_its_share_of_ratings_from_the_planted_month(planted):
    dataset, truth, _ = planted
    decay = truth["provider_decay"]
    month = pd.to_datetime(dataset.ratings["timestamp"], unit="s").dt.strftime("%Y-%m")
    items = set(dataset.items.loc[dataset.items[decay["attribute"]] == decay["group"], "item_id"])
    share = dataset.ratings["item_id"].isin(items).groupby(month).mean()
    before = share[share.index < decay["from"]].iloc[-6:]
    after = share[share.index >= decay["from"]]
    assert before.max() < 1.25 * before.min()  # steady before
    assert after.iloc[0] < 0.85 * before.mean()  # falls from the planted month on
    assert after.max() < 0.8 * before.mean() and after.iloc[-3:].max() < 0.55 * before.mean()
    realised = pd.Series(decay["realised"]["rating_share_by_month"])
    assert realised.round(6).equals(share.round(6).rename(None).rename_axis(None))
