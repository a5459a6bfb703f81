"""Each model's NDCG@k by user group: hand-computed toys, the audit's own values, the report.

``engine.audit.tables.ranking_by_group`` on a toy whose means are worked out by hand; the
in-memory report's SVD rows equal the audit's NDCG rows (same users, same convention) and
its other models' rows the means of their ``Evaluation.user_ranking``; the reading of one
grouping (``engine.report.ranking_groups``) in the cases a reader meets.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape

import numpy as np
import pandas as pd
import pytest

from engine.audit.tables import ALL_USERS, RANKING_BY_GROUP_COLUMNS, Z_95, ranking_by_group
from engine.report import build_report
from engine.report.html import render_html
from engine.report.ranking_groups import RANKING_BY_GROUP, best_model_sentence, wide_ranking_table


def _toy() -> tuple[dict[str, pd.Series], dict[str, pd.Series]]:
    users = pd.Index(["u1", "u2", "u3", "u4", "u5"], name="user_id")
    means = {
        "SVD": pd.Series([0.2, 0.4, 0.6, np.nan, 0.9], index=users),  # u4: never ranked
        "Popularity": pd.Series([0.5, 0.7, 0.1, 0.3, 0.0], index=users),
    }
    labels = pd.Series(["A", "A", "B", "B", None], index=users)  # u5 has no label
    return means, {"gender": labels}


def test_ranking_by_group_of_a_toy_equals_the_hand_computed_means():
    means, groupings = _toy()
    frame = ranking_by_group(means, groupings, min_users=2)
    assert list(frame.columns) == RANKING_BY_GROUP_COLUMNS
    got = frame.set_index(["model", "group"])
    # SVD: all = (0.2 + 0.4 + 0.6 + 0.9) / 4 (u4 unranked, u5 unlabelled but counted);
    # A = (0.2 + 0.4) / 2; B has one ranked user (u3): below min_users, no value.
    assert got.loc[("SVD", ALL_USERS), "value"] == pytest.approx(0.525)
    assert got.loc[("SVD", ALL_USERS), "n_users"] == 4
    assert got.loc[("SVD", "A"), "value"] == pytest.approx(0.3)
    assert got.loc[("SVD", "B"), "n_users"] == 1 and np.isnan(got.loc[("SVD", "B"), "value"])
    # Popularity ranked all five: all = 1.6 / 5, A = 0.6, B = 0.2.
    assert got.loc[("Popularity", ALL_USERS), "value"] == pytest.approx(0.32)
    assert got.loc[("Popularity", "A"), "value"] == pytest.approx(0.6)
    assert got.loc[("Popularity", "B"), "value"] == pytest.approx(0.2)
    assert frame["group"].tolist()[:3] == [ALL_USERS, "A", "B"]  # per model: all, then groups
    # Popularity - SVD on the users both ranked (u4 has no SVD value): u1 +0.3, u2 +0.3,
    # u3 -0.5, u5 -0.9: mean -0.2, sd 0.6, se 0.3, interval -0.2 +/- 1.96 x 0.3
    overall = got.loc[("Popularity", ALL_USERS)]
    assert overall["difference"] == pytest.approx(-0.2)
    assert overall["ci_low"] == pytest.approx(-0.2 - Z_95 * 0.3)
    assert overall["ci_high"] == pytest.approx(-0.2 + Z_95 * 0.3)
    assert got.loc[("Popularity", "A"), ["difference", "ci_low", "ci_high"]].tolist() == \
        pytest.approx([0.3, 0.3, 0.3])  # two equal differences: no spread  # fmt: skip
    # B has a Popularity value (u3, u4) but one user ranked by both: no paired difference
    assert np.isnan(got.loc[("Popularity", "B"), "difference"])
    assert got.loc[("SVD", "A"), ["difference", "ci_low"]].isna().all()  # the reference


def test_the_wide_table_has_one_users_column_only_where_the_models_ranked_the_same_users():
    means, groupings = _toy()
    uneven = wide_ranking_table(ranking_by_group(means, groupings, min_users=2))
    assert list(uneven.columns) == ["group", "users (SVD)", "users (Popularity)", "SVD",
                                    "Popularity", "Popularity - SVD (95% CI)"]  # fmt: skip
    assert uneven["Popularity - SVD (95% CI)"].tolist() == [
        "-0.2 [-0.788, +0.388]",
        "+0.3 [+0.3, +0.3]",
        "",
    ]
    assert uneven["users (SVD)"].tolist() == [4, 2, 1]
    even = {m: s.fillna(0.0) for m, s in means.items()}
    table = wide_ranking_table(ranking_by_group(even, groupings, min_users=2))
    assert list(table.columns) == ["group", "users", "SVD", "Popularity",
                                   "Popularity - SVD (95% CI)"]  # fmt: skip
    before = ranking_by_group(even, groupings, min_users=2).assign(difference=np.nan)
    assert list(wide_ranking_table(before).columns) == ["group", "users", "SVD", "Popularity"]
    assert table["users"].tolist() == [5, 2, 2]
    assert table["Popularity"].tolist() == pytest.approx([0.32, 0.6, 0.2])


def _rows(values: dict[str, dict[str, float]], n_users: int = 50) -> pd.DataFrame:
    """Rows of one grouping with values and no paired differences (``_with_intervals``)."""
    return pd.DataFrame(
        [("gender", group, model, n_users, value, np.nan, np.nan, np.nan)
         for model, by_group in values.items() for group, value in by_group.items()],
        columns=RANKING_BY_GROUP_COLUMNS,
    )  # fmt: skip


def test_each_other_model_is_counted_higher_lower_or_unclear_against_svd_per_group():
    rows = _rows({"SVD": {ALL_USERS: 0.08, "F": 0.06, "M": 0.09, "X": 0.05},
                  "BaselineOnly": {ALL_USERS: 0.08, "F": 0.06, "M": 0.08, "X": 0.06},
                  "Popularity": {ALL_USERS: 0.17, "F": 0.15, "M": 0.18, "X": 0.2}})  # fmt: skip
    intervals = {("BaselineOnly", "F"): (0.0, -0.01, 0.01), ("BaselineOnly", "M"): (-0.01, -0.02,
                 -0.001), ("BaselineOnly", "X"): (0.01, -0.001, 0.02),
                 ("Popularity", "F"): (0.09, 0.05, 0.13), ("Popularity", "M"): (0.09, 0.06, 0.12),
                 ("Popularity", "X"): (0.15, 0.1, 0.2)}  # fmt: skip
    for (model, group), numbers in intervals.items():
        at = (rows["model"] == model) & (rows["group"] == group)
        rows.loc[at, ["difference", "ci_low", "ci_high"]] = numbers
    sentence = best_model_sentence(rows, "NDCG@10", 30)
    assert sentence.endswith(
        " Against SVD on the same users (95% intervals, not adjusted for the number of groups): "
        "BaselineOnly no clear difference in 2 of 3 groups, lower in 1 (M); Popularity higher "
        "in 3 of 3 groups."
    )


SPREAD = (
    "Gap between the best- and worst-served groups, per model, as a difference (and as "
    "worst over best, 1 = even)"
)


def test_one_model_highest_everywhere_is_one_sentence_with_each_models_spread():
    rows = _rows({"SVD": {ALL_USERS: 0.08, "F": 0.06, "M": 0.09},
                  "Popularity": {ALL_USERS: 0.17, "F": 0.14, "M": 0.18}})  # fmt: skip
    # SVD: 0.09 - 0.06 = 0.03, 0.06 / 0.09 = 0.67; Popularity: 0.04 and 0.78: the higher
    # model has the larger difference and the ratio nearer 1, both shown
    assert best_model_sentence(rows, "NDCG@10", 30) == (
        "Highest NDCG@10 in every gender group compared (2) and over all users: Popularity. "
        f"{SPREAD}: SVD 0.03 (0.67), Popularity 0.04 (0.78)."
    )


def test_different_winners_by_group_are_named_with_their_values_and_small_groups_counted():
    rows = _rows({"SVD": {ALL_USERS: 0.1, "F": 0.12, "M": 0.05, "X": np.nan},
                  "Popularity": {ALL_USERS: 0.09, "F": 0.08, "M": 0.1, "X": np.nan}})  # fmt: skip
    assert best_model_sentence(rows, "NDCG@10", 30) == (
        "Highest NDCG@10 by gender group: SVD in F; Popularity in M (over all users: SVD; "
        f"values: F: SVD 0.12 vs Popularity 0.08, M: SVD 0.05 vs Popularity 0.1). {SPREAD}: "
        "SVD 0.07 (0.42), Popularity 0.02 (0.80). 1 group with fewer than 30 users with a "
        "relevant held-out rating is not compared."
    )


def test_ties_name_both_models_and_a_lone_group_or_none_is_no_comparison():
    tied = _rows({"SVD": {ALL_USERS: 0.1, "F": 0.1, "M": 0.2},
                  "Popularity": {ALL_USERS: 0.1, "F": 0.1, "M": 0.1}})  # fmt: skip
    assert best_model_sentence(tied, "NDCG@5", 30).startswith(
        "Highest NDCG@5 by gender group: SVD and Popularity in F; SVD in M (over all users: SVD "
        "and Popularity;"
    )
    lone = _rows({"SVD": {ALL_USERS: 0.1, "F": 0.1, "X": np.nan},
                  "Popularity": {ALL_USERS: 0.1, "F": 0.1, "X": np.nan}})  # fmt: skip
    assert best_model_sentence(lone, "NDCG@5", 30) == (
        "Only one group (F) of gender has at least 30 users with a relevant held-out rating, "
        "so the models are not compared by gender; over all users SVD and Popularity have the "
        "highest NDCG@5."
    )
    none = _rows({"SVD": {ALL_USERS: 0.1, "F": np.nan}, "Popularity": {ALL_USERS: 0.2,
                                                                        "F": np.nan}})  # fmt: skip
    assert best_model_sentence(none, "NDCG@5", 30) == (
        "No group of gender has at least 30 users with a relevant held-out rating, so the "
        "models are not compared by gender; over all users Popularity has the highest NDCG@5."
    )


def test_the_reports_svd_rows_are_the_audits_and_the_others_their_users_means(hostile_report):
    _, _, evaluation, result, report = hostile_report
    frame, minimum = report.ranking_by_group, result.config.min_group_size
    assert list(dict.fromkeys(frame["model"])) == ["SVD", "BaselineOnly"]
    user_groupings = set(result.metrics.loc[result.metrics["n_users"].notna(), "grouping"])
    assert set(frame["grouping"]) == user_groupings  # attributes and the derived groupings
    audit = result.metrics[result.metrics["metric"] == "ndcg"]
    svd = frame[(frame["model"] == "SVD") & (frame["group"] != ALL_USERS)]
    joined = svd.merge(audit, on=["grouping", "group"], suffixes=("", "_audit"))
    assert len(joined) == len(svd)
    shown = joined[joined["value"].notna()]
    assert len(shown) >= 4
    assert shown["value"].to_numpy() == pytest.approx(shown["value_audit"].to_numpy(), rel=1e-12)
    assert (joined.loc[joined["value"].isna(), "n_users"] < minimum).all()
    ranking = evaluation.user_ranking
    means = ranking[ranking["model"] == "BaselineOnly"].groupby("user_id")["ndcg"].mean()
    overall = frame[(frame["model"] == "BaselineOnly") & (frame["group"] == ALL_USERS)]
    assert overall["value"].to_numpy() == pytest.approx(means.mean(), rel=1e-12)
    assert (overall["n_users"] == len(means)).all()


def test_the_html_reads_each_grouping_and_a_lone_model_gets_no_comparison(hostile_report):
    data, model, evaluation, result, report = hostile_report
    html = render_html(report)
    assert f"<h3>{RANKING_BY_GROUP}</h3>" in html
    for _, rows in report.ranking_by_group.groupby("grouping", sort=False):
        sentence = best_model_sentence(rows, "NDCG@10", result.config.min_group_size)
        assert escape(sentence) in html  # the hostile sample's names stay text
    alone = evaluation.user_ranking[evaluation.user_ranking["model"] == "SVD"]
    lone = build_report(data, model, replace(evaluation, user_ranking=alone), result)
    assert lone.ranking_by_group.empty and RANKING_BY_GROUP not in render_html(lone)
