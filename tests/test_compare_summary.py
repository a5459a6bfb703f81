"""What the comparison's summary, report and page say (known answers on hand-built toys)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.audit import AuditConfig
from engine.compare import KNOWN_OVERALL, KNOWN_TO, compare_models, population_sentence
from engine.compare.text import difference_text, interval_text
from engine.report.numbers import value_text
from tests.test_compare import _row
from tests.test_compare_population import KNOWN, NEW, _model, _rmse

STRANGERS = [f"s{u:02d}" for u in range(20)]  # in neither version's training data
#: "B only" (10 users) and "A and B" (10) fall under this minimum; "neither" (20) does not.
SMALL = AuditConfig(k=2, min_group_size=12, permutations=999, bootstrap=100, seed=7)


@pytest.fixture(scope="module")
def diluted():
    """A knows the k users; B = A plus the n users; 20 strangers neither knows.

    Window: everyone rates i1 and i2 with 4. A stranger is predicted ``mu + b_i`` (3.5,
    2.5) by both versions: squared errors 0.25 + 2.25 = 2.5 under A and B, difference 0.
    """
    a = _model(KNOWN, {u: 0.2 for u in KNOWN})
    b = _model(KNOWN + NEW, {**{u: 0.2 for u in KNOWN}, **{u: 1.0 for u in NEW}})
    rows = [(u, i, 4.0) for u in KNOWN + NEW + STRANGERS for i in ("i1", "i2")]
    window = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    return compare_models(a, b, window, SMALL)


def _known_ab(users: list[str]) -> tuple[float, float]:
    """RMSE of ``users`` rating i1, i2 with 4 (no i9 rating in this window)."""
    se = {u: ((3.7 - 4) ** 2 + (2.7 - 4) ** 2,) * 2 for u in KNOWN}
    se |= {u: ((3.5 - 4) ** 2 + (2.5 - 4) ** 2, (4.5 - 4) ** 2 + (3.5 - 4) ** 2) for u in NEW}
    n = 2 * len(users)
    return np.sqrt(sum(se[u][0] for u in users) / n), np.sqrt(sum(se[u][1] for u in users) / n)


def test_summary_says_how_many_users_can_differ_and_tests_them_apart(diluted):
    counts = diluted.counts
    assert (counts["users_known"], counts["pairs_known"]) == (20, 40)
    assert (counts["users_neither"], counts["pairs_neither"]) == (20, 40)
    assert diluted.sentences[1] == (
        "Of 80 window ratings, 40 (from 20 users) are of users at least one version knows: "
        "only they can differ by what a version learned. 40 (from 20 users) are of users "
        "neither version knows, predicted by both versions' fallbacks (the same squared "
        "errors for all 20, an RMSE difference of 0; their lists follow each version's "
        "fallback list, which can differ); the overall rows include them, the rows "
        f"'{KNOWN_OVERALL}' leave them out."
    )
    overall = _row(diluted.rows, "RMSE", "all users", "all users")
    known = _row(diluted.rows, "RMSE", KNOWN_OVERALL, KNOWN_OVERALL)
    assert (overall["n_users"], known["n_users"], known["n_pairs"]) == (40, 20, 40)
    value_a, value_b = _known_ab(KNOWN + NEW)  # sqrt(1.78 * 10 + 2.5 * 10) / 40) -> ...
    assert (known["value_a"], known["value_b"]) == pytest.approx((value_a, value_b))
    strangers_se = 20 * 2.5
    assert overall["value_a"] == pytest.approx(np.sqrt((value_a**2 * 40 + strangers_se) / 80))
    assert abs(known["difference"]) > abs(overall["difference"])  # diluted by exact zeros
    assert known["verdict"] == "improved" and np.isfinite(known["p_adjusted"])
    ndcg = _row(diluted.rows, "NDCG@2", KNOWN_OVERALL, KNOWN_OVERALL)
    assert ndcg["n_users"] == 20
    sentence = next(s for s in diluted.sentences if s.startswith("Over the 20 users"))
    assert sentence.startswith("Over the 20 users at least one version knows, B improved RMSE (")


def test_the_population_sentence_says_whether_the_fallbacks_agree():
    """Users neither version knows: all, none or some with the same squared errors (e.g. a
    Spark run and a Surprise run have other fallbacks: nothing is the same)."""
    users = pd.DataFrame({"new_to_a": [True, True, False, False],
                          "new_to_b": [True, True, False, True], "n_pairs": [2, 3, 2, 3],
                          "se_a": [1.0, 2.0, 3.0, 4.0]})  # fmt: skip
    said = {
        name: population_sentence(users.assign(se_b=se_b))
        for name, se_b in (("all", [1.0, 2.0, 9.0, 9.0]), ("none", [1.5, 2.5, 3.0, 4.0]),
                           ("some", [1.0, 2.5, 3.0, 4.0]))
    }  # fmt: skip
    assert ("(the same squared errors for all 2, an RMSE difference of 0; their lists follow "
            "each version's fallback list, which can differ)") in said["all"]  # fmt: skip
    assert "(the fallbacks differ, e.g. other training data or another engine, so" in said["none"]
    assert "(the same squared errors for 1 of them, an RMSE difference of 0; the others" in said[
        "some"]  # fmt: skip
    assert said["all"].startswith("Of 10 window ratings, 5 (from 2 users) are of users at least")
    assert population_sentence(users.assign(new_to_b=False, se_b=0.0)) is None


def test_summary_gives_the_known_to_groups_under_the_minimum_with_their_values(diluted):
    (sentence,) = [s for s in diluted.sentences if s.startswith("RMSE by the versions")]
    b_only = _row(diluted.rows, "RMSE", KNOWN_TO, "B only")
    assert b_only["verdict"] == "insufficient data"
    a_new, b_new = _rmse(NEW[1:])[0], _known_ab(NEW)[1]  # no i9 here: A 1.118, B 0.5
    assert (b_only["value_a"], b_only["value_b"]) == pytest.approx((_known_ab(NEW)[0], b_new))
    assert a_new == pytest.approx(_known_ab(NEW)[0])
    assert (
        f"B only {value_text(b_only['value_a'])} -> {value_text(b_only['value_b'])}, "
        f"{difference_text(b_only['difference'])} (not tested: 10 users, under the minimum "
        "of 12)"
    ) in sentence
    assert "B only 1.118 -> 0.5, -0.6180 (not tested" in sentence
    assert "neither (20 users) 1.118 -> 1.118, 0, " in sentence
    assert "fallback list" not in sentence  # said for NDCG only: RMSE's fallback is said apart
    (ndcg,) = [s for s in diluted.sentences if s.startswith("NDCG@2 by the versions")]
    assert ndcg.endswith(
        "Users neither version knows get each version's fallback list (its most-rated items), "
        "not a model's ranking: their NDCG@2 says how often they rated popular items in the "
        "window, not how well a model serves them."
    )


def test_identical_versions_without_strangers_have_no_second_overall_row():
    a = _model(KNOWN, {u: 0.2 for u in KNOWN})
    window = pd.DataFrame([(u, "i1", 4.0) for u in KNOWN], columns=["user_id", "item_id", "rating"])
    result = compare_models(a, a, window, SMALL)
    assert KNOWN_OVERALL not in set(result.rows["grouping"])
    assert not any("at least one version knows" in s for s in result.sentences)


def test_a_summary_clause_gives_the_holm_adjusted_p_where_it_differs():
    from engine.compare.run import _clause

    row = pd.Series({"value_a": 1.0, "value_b": 0.9, "difference": -0.1, "ci_low": -0.2,
                     "ci_high": -0.01, "p_value": 0.0085, "p_is_bound": False,
                     "p_adjusted": 0.042})  # fmt: skip
    assert _clause(row) == ("1 -> 0.9, -0.1000, 95% CI -0.2000 to -0.0100, p = 0.0085, "
                            "Holm-adjusted p = 0.042")  # fmt: skip
    alone = row.copy()
    alone["p_adjusted"] = 0.0085  # a family of one test: the same p, said once
    assert _clause(alone).endswith("-0.0100, p = 0.0085")


def test_exposure_rows_read_in_percentages_and_points_others_in_decimals():
    from engine.compare.text import display_rows, shown_values

    assert shown_values("exposure: genres", 0.1723, 0.263, 0.0907, 0.0667, 0.1106) == (
        "17.2%", "26.3%", "+9.1 points", "+6.7 to +11.1 points")  # fmt: skip
    assert shown_values("RMSE", 1.032, 1.023, -0.009, -0.0215, 0.0052) == (
        "1.032", "1.023", "-0.0090", "-0.0215 to +0.0052")  # fmt: skip
    shown = display_rows(pd.DataFrame([_exposure_row("low", -0.05, "lower")]))
    assert shown.loc[0, ["A", "B", "B - A", "95% interval of B - A"]].tolist() == [
        "10.0%", "5.0%", "-5.0 points", "-6.0 to -4.0 points"]  # fmt: skip


def test_differences_are_written_with_4_decimals_never_in_scientific_notation():
    assert difference_text(4.568e-06) == "+0.0000"
    assert difference_text(-0.0009038) == "-0.0009"
    assert difference_text(0.0) == "0"
    assert difference_text(np.nan) == ""
    assert interval_text(0.0012, 0.0141) == "+0.0012 to +0.0141"
    assert interval_text(np.nan, 0.1) == ""


@pytest.fixture(scope="module")
def genres():
    """The toy of ``tests.test_compare`` with multi-valued genres: A (i0-i2), B (i1, i2, i4),
    C (i3-i5); catalogue shares 3/6 each, adding up to 1.5.

    A lists i3, i4 to everyone, B lists i1, i2: genre A's share 0 -> 1 (higher), C's 1 -> 0
    (lower), B's 1/log2(3) / (1 + 1/log2(3)) -> 1 (higher).
    """
    from tests.test_compare import CONFIG, ITEMS, N_PER_TEAM, USERS
    from tests.test_compare import _model as team_model

    a = team_model(np.zeros(len(USERS)), [0, 0, 0, 0.5, 0.4, 0])
    b = team_model(np.array([1.0] * N_PER_TEAM + [-0.5] * N_PER_TEAM), [0, 0, 0, -0.5, -0.4, 0])
    window = pd.DataFrame({"user_id": np.repeat(USERS, 2), "item_id": ["i1", "i2"] * len(USERS),
                           "rating": 4.0})  # fmt: skip
    items = pd.DataFrame(
        {"genres": [("A",), ("A", "B"), ("A", "B"), ("C",), ("C", "B"), ("C",)]},
        index=pd.Index(ITEMS, name="item_id"),
    )
    return compare_models(a, b, window, CONFIG, items=items)


def test_exposure_of_overlapping_groups_has_its_catalogue_share_and_a_note(genres):
    rows = genres.rows
    for group in ("A", "B", "C"):
        assert _row(rows, "exposure: genres", "genres", group)["catalogue_share"] == 0.5
    b = _row(rows, "exposure: genres", "genres", "B")
    assert b["value_a"] == pytest.approx(1 / np.log2(3) / (1 + 1 / np.log2(3)))
    assert rows.loc[rows["metric"] == "RMSE", "catalogue_share"].isna().all()
    assert (
        "exposure: genres: groups overlap (an item can be in several): an item counts in each "
        "of its groups, so catalogue shares add up to 1.50"
    ) in " ".join(genres.notes)
    (sentence,) = [s for s in genres.sentences if s.startswith("B's exposure: genres")]
    assert sentence.startswith(
        "B's exposure: genres share (an item counts in each of its groups, so the shares add "
        "up to more than 100%) was higher for 2 groups: A (catalogue 50.0%; 0.0% -> 100.0%, "
        "+100.0 points, "
    )
    assert "; lower for C (catalogue 50.0%; 100.0% -> 0.0%, -100.0 points, " in sentence


def _exposure_row(group: str, difference: float, verdict: str) -> dict:
    return {
        "metric": "exposure: genres", "grouping": "genres", "group": group, "n_users": 100,
        "n_pairs": pd.NA, "value_a": 0.1, "value_b": 0.1 + difference, "difference": difference,
        "ci_low": difference - 0.01, "ci_high": difference + 0.01, "p_value": 0.001,
        "p_method": "permutation", "p_is_bound": False, "p_adjusted": 0.002, "verdict": verdict,
        "better": "", "catalogue_share": 0.1,
    }  # fmt: skip


def test_exposure_summary_names_both_directions_up_to_four_each():
    from engine.compare import summary_sentences

    rows = pd.DataFrame(
        [_exposure_row(f"low{i}", -0.01 * (i + 1), "lower") for i in range(6)]
        + [_exposure_row(f"high{i}", 0.001 * (i + 1), "higher") for i in range(5)]
    )
    (sentence,) = summary_sentences(rows)
    assert "higher for 5 groups: high4 (" in sentence and ", and 1 more;" in sentence
    assert "lower for 6 groups: low5 (" in sentence and sentence.endswith(", and 2 more.")
    assert "high0 (" not in sentence and "high1 (" in sentence  # the 4 largest of each
    assert "low1 (" not in sentence and "low2 (" in sentence


def test_exposure_sources_split_the_difference_by_who_knows_the_user():
    """u1, u2 known to both, u3 to B only, u4 to neither; group G's shares A (0.5, 0.5, 0,
    0.2), B (0.5, 0.7, 0.6, 0.2): differences 0, 0.2, 0.6, 0 over 4 users -> A and B 0.05,
    B only 0.15, neither 0; they add up to the row's 0.8 / 4 = 0.2."""
    from engine.compare.run import exposure_sources, exposure_sources_sentence

    users = pd.Index(["u1", "u2", "u3", "u4"])
    a = pd.DataFrame({"G": [0.5, 0.5, 0.0, 0.2]}, index=users)
    b = pd.DataFrame({"G": [0.5, 0.7, 0.6, 0.2]}, index=users)
    known = pd.Series(["A and B", "A and B", "B only", "neither"], index=users)
    parts = exposure_sources(a, b, known)
    assert parts["G"].to_dict() == pytest.approx({"A and B": 0.05, "B only": 0.15, "neither": 0})
    assert parts["n_users"].to_dict() == {"A and B": 2, "B only": 1, "neither": 1}
    assert parts["G"].sum() == pytest.approx((b - a)["G"].mean())
    row = pd.DataFrame([{"group": "G", "difference": 0.2}])
    assert exposure_sources_sentence("exposure: genres", row, parts) == (
        "Where the exposure: genres changes come from, by the versions that know the user "
        "(users: A and B 2, B only 1, neither 1; each group's part of the difference in points, "
        "adding up to it before rounding): G +20.0 points = A and B +5.0, B only +15.0, "
        "neither +0.0."
    )
    assert exposure_sources_sentence("exposure: genres", row, parts.loc[["A and B"]]) is None
