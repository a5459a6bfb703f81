"""Reading an explanation: rating and direction, coverage, rollup, waterfall, faithfulness."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine import charts, load_dataset
from engine.explain import explain_prediction, linear_history, shapley_history
from engine.explain.additive import additive_view
from engine.explain.faithfulness import (
    RANDOM_SETS,
    WHY_THEY_DIFFER,
    Faithfulness,
    Removal,
    describe_agreement,
    faithfulness_check,
    rank_agreement,
)
from engine.explain.reading import (
    DIRECTIONS,
    NO_EFFECT,
    coverage,
    direction,
    history_reading,
    select_by_coverage,
    select_shown,
    surprising,
)
from engine.explain.rollup import UNKNOWN, attribute_rollup, rollup_attributes
from engine.model import ModelConfig, train
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel
from engine.whatif import full_ranking
from tests.conftest import SAMPLE_DIR


@pytest.fixture(scope="module")
def sample():
    return load_dataset(SAMPLE_DIR)


@pytest.fixture(scope="module")
def model(sample):
    return train(sample, ModelConfig(n_factors=20, n_epochs=20))


def toy_model() -> TrainedModel:
    """One factor, so ``x_j = [1, q_j]``; everything below is computed by hand.

    ``mu = 3``, all ``b_j = 0``. The user ``u`` rated ``a`` (q = 1) 5 stars and ``b``
    (q = -1) 1 star; the target ``t`` has q = 2. ``X^T X = 2 I``, ``A = (2 + 0.1*2) I``,
    so ``w_a = (1 + 2) / 2.2`` and ``w_b = (1 - 2) / 2.2``; ``y_a = +2``, ``y_b = -2``.
    """
    frame = pd.DataFrame(
        {"user_id": ["u", "u", "v", "v", "v"], "item_id": ["a", "b", "a", "t", "z"],
         "rating": [5.0, 1.0, 3.0, 3.0, 3.0]}
    )  # fmt: skip
    inter = Interactions.from_frame(frame, np.array(["a", "b", "t", "z"]))
    Q = np.array([[1.0], [-1.0], [2.0], [0.5]])
    return TrainedModel(
        ModelConfig(n_factors=1, refit_lambda=0.1), 3.0, np.zeros(2), np.zeros(4),
        np.zeros((2, 1)), Q, inter, (1.0, 5.0),
    )  # fmt: skip


# 1. the rating and the direction in words ----------------------------------------------


def test_toy_reading_matches_the_hand_computation():
    model = toy_model()
    vector = model.fold_in(["a", "b"], [5.0, 1.0])
    reading = history_reading(model, vector, 2, {"a": "Alpha", "b": "First Knight"})
    a, b = reading.iloc[0], reading.iloc[1]
    assert (a["residual"], b["residual"]) == pytest.approx((2.0, -2.0))
    assert (a["weight"], b["weight"]) == pytest.approx((3 / 2.2, -1 / 2.2))
    assert b["contribution"] == pytest.approx(2 / 2.2)  # the 1-star rating raises it
    assert b["label"] == "First Knight, rated 1"
    assert b["direction"] == (
        "Rated 1 (the model expects 3.00 from an average user): you liked it less than most "
        "and it is unlike this item, so it raises the prediction."
    )
    assert a["direction"].endswith(
        "you liked it more than most and it is like this item, so it raises the prediction."
    )
    # the contributions are the exact split
    view = linear_history(model, vector, 2)
    np.testing.assert_allclose(reading["contribution"], view.values, atol=1e-12)


def test_bars_that_push_against_their_rating_are_named():
    model = toy_model()
    vector = model.fold_in(["a", "b"], [5.0, 1.0])
    reading = history_reading(model, vector, 2, {"a": "Alpha", "b": "First Knight"})
    assert surprising(reading, np.array([0, 1])) == [
        "First Knight, rated 1: you liked it less than most and it is unlike this item, so it "
        "raises the prediction."
    ]
    assert surprising(reading, np.array([0])) == []  # only the shown bars


def test_the_four_directions_and_no_effect():
    assert direction(0.5, 0.1) == DIRECTIONS[(1, 1)]
    assert "raises" in direction(-0.5, -0.1) and "unlike" in direction(-0.5, -0.1)
    assert direction(0.5, -0.1) == (
        "you liked it more than most but it is unlike this item, so it lowers the prediction"
    )
    assert direction(-0.5, 0.1) == (
        "you liked it less than most and it is like this item, so it lowers the prediction"
    )
    assert direction(0.0, 0.3) == NO_EFFECT
    # the sign of the sentence agrees with the sign of the contribution
    for (y, w), text in DIRECTIONS.items():
        assert ("raises" in text) == (y * w > 0)


def test_history_bars_name_the_rating_and_hover_says_why():
    model = toy_model()
    vector = model.fold_in(["a", "b"], [5.0, 1.0])
    reading = history_reading(model, vector, 2, {"a": "<b>Alpha</b>", "b": "First Knight"})
    fig = charts.history_bars(linear_history(model, vector, 2), reading=reading)
    bar = fig.data[0]
    assert "First Knight, rated 1" in bar.y
    assert "&lt;b&gt;Alpha&lt;/b&gt;, rated 5" in bar.y  # data text shown literally
    assert any("unlike this item, so it raises" in c for c in bar.customdata)
    assert "%{customdata}" in bar.hovertemplate and "Alpha" not in bar.hovertemplate


# 2. coverage and the rollup ----------------------------------------------------------------


def test_coverage_states_what_the_shown_bars_hold():
    values = np.concatenate([np.full(12, 0.03 / 12), np.full(1278, 0.19 / 1278)])
    shown = select_shown(values, 12)
    assert sorted(shown) == list(range(12))
    cov = coverage(values, shown)
    assert (cov.n_shown, cov.n_total) == (12, 1290)
    assert cov.shown + cov.rest == pytest.approx(cov.total, abs=1e-12)
    text = cov.describe()
    assert text.startswith("The 12 largest of 1,290 ratings hold +0.030 of the +0.220")
    assert "the other 1,278 hold +0.190" in text


def test_rollup_sums_exactly_and_splits_genres_equally():
    items = pd.DataFrame(
        {"title": ["A", "B", "C"], "genres": [("Comedy", "Drama"), ("Comedy",), ()],
         "year": pd.array([1994, 2001, None], dtype="Int64"), "provider": ["P", None, "Q"]},
        index=pd.Index(["a", "b", "c"], name="item_id"),
    )  # fmt: skip
    ids, c = ["a", "b", "c", "d"], np.array([0.4, 0.1, -0.2, 0.05])  # d: not in the table
    assert rollup_attributes(items) == ["genre", "decade", "provider"]
    genre = attribute_rollup(ids, c, items, "genre").set_index("value")
    assert genre.loc["Comedy", "contribution"] == pytest.approx(0.2 + 0.1)
    assert genre.loc["Drama", "contribution"] == pytest.approx(0.2)
    assert genre.loc["Comedy", "ratings"] == 2 and genre.loc["Comedy", "weighted_ratings"] == 1.5
    assert genre.loc[UNKNOWN, "contribution"] == pytest.approx(-0.2 + 0.05)
    decade = attribute_rollup(ids, c, items, "decade").set_index("value")
    assert set(decade.index) == {"1990s", "2000s", UNKNOWN}
    for attribute in ("genre", "decade", "provider", "nonexistent"):
        total = attribute_rollup(ids, c, items, attribute)["contribution"].sum()
        assert total == pytest.approx(c.sum(), abs=1e-12)
    assert attribute_rollup(ids, c, None, "genre")["value"].tolist() == [UNKNOWN]


@pytest.mark.parametrize("user", [0, 3, 17])
def test_rollup_sums_to_the_history_effect_on_sample_data(sample, model, user):
    vector = model.user_vector(user)
    item = 100
    reading = history_reading(model, vector, item)
    effect = explain_prediction(
        model, str(model.interactions.user_ids[user]), str(model.interactions.item_ids[item]),
        counterfactual=False,
    ).prediction - (model.mu + model.bi[item])  # fmt: skip
    for attribute in rollup_attributes(sample.items):
        table = attribute_rollup(reading["item_id"], reading["contribution"], sample.items,
                                 attribute)  # fmt: skip
        assert abs(table["contribution"].sum() - effect) < 1e-12


# 3. the factor waterfall --------------------------------------------------------------------


def test_waterfall_stops_at_coverage_and_states_the_share_left():
    values = np.array([0.1, 1.0, *[0.02] * 20])  # user bias, one big factor, 20 small ones
    view = additive_view(values, 3.0, None, ["user bias", *[f"factor {k}" for k in range(21)]])
    fig = charts.factor_waterfall(view)
    labels = list(fig.data[0].y)
    # 80% of the factors' size (1.4) is 1.12: the big one and 6 small ones
    assert labels[-2] == "other 14 factors (20% of the factors' size)"
    other = fig.data[0].x[-2]
    assert abs(other) <= 0.2 * np.abs(values[1:]).sum() + 1e-12
    assert fig.data[0].x[0] + sum(fig.data[0].x[1:-1]) == pytest.approx(values.sum() + 3.0)
    chosen, left = select_by_coverage(values[1:], 0.8, cap=3)
    assert len(chosen) == 3 and left == pytest.approx(1 - 1.04 / 1.4)


# 4. the counterfactual's ratings in the history chart --------------------------------------


def test_highlighted_ratings_are_shown_even_beyond_the_top(model):
    vector = model.user_vector(3)
    reading = history_reading(model, vector, 100)
    view = linear_history(model, vector, 100)
    smallest = reading.iloc[int(np.argmin(np.abs(reading["contribution"])))]
    fig = charts.history_bars(view, top=12, reading=reading, highlight=[smallest["item_id"]])
    bar = fig.data[0]
    assert len(bar.y) == 13
    marked = [j for j, y in enumerate(bar.y) if y.startswith("★ ")]
    assert len(marked) == 1 and bar.y[marked[0]] == "★ " + smallest["label"]
    assert bar.marker.line.width[marked[0]] > 0
    assert bar.x[marked[0]] == pytest.approx(smallest["contribution"])


# 5. Shapley vs the exact split ----------------------------------------------------------


def test_rank_agreement_is_spearman_and_says_why_they_differ(model):
    vector = model.user_vector(3)
    exact = linear_history(model, vector, 100).values
    shap_values = shapley_history(model, vector, 100).values
    rho = rank_agreement(exact, shap_values)
    by_pandas = pd.Series(exact).rank().corr(pd.Series(shap_values).rank())
    assert rho == pytest.approx(by_pandas, abs=1e-12)
    assert rho > 0.5
    assert rank_agreement(exact, 2 * exact) == pytest.approx(1.0)
    assert rank_agreement(exact[:1], exact[:1]) != rank_agreement(exact[:1], exact[:1])  # nan
    text = describe_agreement(rho, len(exact))
    assert text.startswith(WHY_THEY_DIFFER) and f"{rho:.2f}" in text
    assert "ridge strength" in WHY_THEY_DIFFER and "bias" in WHY_THEY_DIFFER


# 6. the faithfulness check ------------------------------------------------------------------


def test_faithfulness_refolds_without_the_top_and_random_ratings(model):
    vector = model.user_vector(3)
    item = 100
    contributions = linear_history(model, vector, item).values
    check = faithfulness_check(model, vector, item, contributions)
    ids = model.interactions.item_ids
    top = np.argsort(-contributions, kind="stable")[:3]
    assert check.top.removed == [str(ids[vector.items[j]]) for j in top]
    keep = ~np.isin(ids[vector.items], check.top.removed)
    refolded = model.fold_in(ids[vector.items[keep]], vector.ratings[keep])
    expected = model.mu + refolded.bu + model.bi[item] + model.Q[item] @ refolded.pu
    assert check.top.prediction == pytest.approx(expected, abs=1e-9)
    assert check.top.prediction < check.prediction
    # the rank is the page's: the full ranking of unrated items
    ranking = full_ranking(model, vector, "u")
    page_rank = int(ranking.loc[ranking["item_id"] == ids[item], "rank"].iat[0])
    assert check.rank == page_rank
    # seeded: the same draw every time, a different one with another seed
    again = faithfulness_check(model, vector, item, contributions)
    assert again.random == check.random
    assert faithfulness_check(model, vector, item, contributions, seed=1).random != check.random
    assert len(check.random.removed) == 3
    assert "rank" in check.describe() and "seed 0" in check.describe()
    # the verdict's 50 random sets: the first is the random arm, all refolded exactly
    assert len(check.random_changes) == RANDOM_SETS
    assert check.random_changes[0] == pytest.approx(check.random.prediction - check.prediction)
    assert check.describe().endswith(check.verdict())


def test_faithfulness_verdict_counts_random_sets_that_lower_it_as_much():
    def check(changes: tuple[float, ...], top: list[str]) -> Faithfulness:
        return Faithfulness(4.0, 1, Removal(top, 3.5, 2), Removal(["x"], 3.9, 1), 0, changes)

    three = ["a", "b", "c"]
    assert (
        check((-0.1,) * 50, three)
        .verdict()
        .startswith("None of 50 random sets of 3 lowers it as much: the explanation picks out")
    )
    assert (
        check((-0.1,) * 45 + (-0.5,) * 5, three)
        .verdict()
        .startswith("5 of 50 random sets of 3 lower it as much: the explanation mostly picks out")
    )
    assert (
        check((-0.1,) * 44 + (-0.6,) * 6, three)
        .verdict()
        .startswith(
            "6 of 50 random sets of 3 lower it as much: for this prediction the most credited"
        )
    )
    assert check((-0.1,), []).verdict() == (
        "No rating raises this prediction, so there is nothing to remove."
    )


def test_faithfulness_on_the_toy_removes_only_positive_ratings():
    model = toy_model()
    vector = model.fold_in(["a", "b"], [5.0, 1.0])
    c = linear_history(model, vector, 2).values
    check = faithfulness_check(model, vector, 2, c)
    assert check.top.removed == ["a", "b"]  # both positive; only 2 ratings
    assert check.top.prediction == pytest.approx(3.0)  # no history left: mu + b_t
    assert check.prediction == pytest.approx(3.0 + c.sum())


def test_cli_explain_prints_the_reading(tmp_path):
    from tests.test_cli import run_cli

    done = run_cli("explain", str(SAMPLE_DIR), "--user", "u0003", "--item", "i0010")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)["reading"]
    first = out["ratings"][0]
    assert {"rating", "residual", "weight", "contribution", "direction"} <= set(first)
    assert first["contribution"] == pytest.approx(first["residual"] * first["weight"])
    assert out["coverage"]["sentence"].startswith("The 12 largest of")
    for rows in out["rollups"].values():
        assert sum(r["contribution"] for r in rows) == pytest.approx(
            out["coverage"]["total"], abs=1e-12
        )
    assert set(out["faithfulness"]) >= {"prediction", "rank", "top", "random", "seed"}
    assert "agreement" not in out  # Shapley only on request
