"""The sample data regenerates byte for byte and carries the effects it claims."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from surprise import SVD, Dataset, Reader
from surprise.model_selection import KFold

from engine import ConfigError, load_dataset
from engine.synth import (
    INDIE_QUALITY_BONUS,
    MINORITY_AGE_BAND,
    UNDER_EXPOSED_PROVIDER,
    SynthConfig,
    generate,
    write_dataset,
)
from tests.conftest import SAMPLE_DIR

FILES = ("ratings.csv", "users.csv", "items.csv", "ground_truth.json")


@pytest.fixture(scope="module")
def sample():
    return load_dataset(SAMPLE_DIR)


def test_committed_sample_regenerates_byte_for_byte(tmp_path):
    write_dataset(generate(), tmp_path)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), name


def test_another_seed_gives_other_data():
    a = generate(SynthConfig(n_users=50, n_items=80, n_ratings=2000, seed=1))
    b = generate(SynthConfig(n_users=50, n_items=80, n_ratings=2000, seed=2))
    assert not a.ratings.equals(b.ratings)
    again = generate(SynthConfig(n_users=50, n_items=80, n_ratings=2000, seed=1))
    assert a.ratings.equals(again.ratings)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="n_ratings=10 must lie between"):
        SynthConfig(n_users=10, n_ratings=10)


def test_sample_size_is_movielens_like(sample):
    assert sample.n_users == 1000
    assert 1650 <= sample.n_items <= 1700
    assert 95_000 <= sample.n_ratings <= 100_000
    assert sample.ratings.groupby("user_id").size().min() >= 20
    assert (sample.scale.low, sample.scale.high, sample.scale.step) == (1, 5, 1)
    assert sample.ratings["timestamp"].notna().all()


def test_long_tail(sample):
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
    effect = next(e for e in truth["planted_effects"] if e["name"] == "long_tail_popularity")
    counts = sample.ratings["item_id"].value_counts()
    head = effect["realised"]["short_head_items"]
    assert counts.iloc[:head].sum() >= 0.8 * len(sample.ratings) > counts.iloc[: head - 1].sum()
    assert head / sample.n_items < 0.5


def test_indie_items_are_better_but_less_exposed(sample):
    items = sample.items
    ratings = sample.ratings.merge(items[["provider"]], left_on="item_id", right_index=True)
    indie = ratings["provider"] == UNDER_EXPOSED_PROVIDER
    catalogue_share = (items["provider"] == UNDER_EXPOSED_PROVIDER).mean()
    assert indie.mean() < 0.6 * catalogue_share
    gap = ratings.loc[indie, "rating"].mean() - ratings.loc[~indie, "rating"].mean()
    assert gap > 0.5 * INDIE_QUALITY_BONUS


def group_rmse(sample) -> pd.DataFrame:
    """Out-of-fold squared errors of Surprise SVD (seeded 5-fold CV), with user attributes."""
    reader = Reader(rating_scale=(1, 5))
    data = Dataset.load_from_df(sample.ratings[["user_id", "item_id", "rating"]], reader)
    rows = []
    for train, test in KFold(n_splits=5, random_state=7, shuffle=True).split(data):
        algo = SVD(random_state=7).fit(train)
        rows += [(p.uid, (p.r_ui - p.est) ** 2) for p in algo.test(test)]
    errors = pd.DataFrame(rows, columns=["user_id", "se"])
    return errors.merge(sample.users, left_on="user_id", right_index=True)


def test_minority_is_served_worse_and_region_control_is_not(sample):
    errors = group_rmse(sample)
    by_age = errors.groupby("age_band")["se"].mean().pow(0.5)
    others = by_age.drop(MINORITY_AGE_BAND)
    assert by_age[MINORITY_AGE_BAND] > others.max() + 0.03
    by_region = errors.groupby("region")["se"].mean().pow(0.5)
    minority_gap = by_age[MINORITY_AGE_BAND] - others.mean()
    assert by_region.max() - by_region.min() < minority_gap / 2
    assert np.isfinite(by_age).all()


def test_gender_x_is_below_the_minimum_group_size(sample):
    counts = sample.users["gender"].value_counts()
    assert 5 <= counts["X"] < 30
    assert counts["M"] > counts["F"] > 300
