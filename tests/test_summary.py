"""Executive summary, tiers and the exposure chart, on hand-built audit tables."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from engine import AuditConfig, ModelConfig, charts
from engine.report.findings import findings, headline
from engine.report.numbers import count_text, ratio_text, value_text
from engine.report.summary import (
    MAX_ITEMS,
    TASTE_CHECK,
    SummaryItem,
    data_context,
    executive_summary,
    insufficient_summary,
    protocol_words,
    with_protocol,
)

CONFIG = AuditConfig()
NO_ACCURACY = pd.DataFrame(columns=["model", "metric", "mean", "std"])


def row(**given) -> dict:
    """One audit row with the audit's columns; ``given`` overrides the defaults."""
    base = {
        "family": "accuracy", "metric": "rmse", "scope": "model", "grouping": "gender",
        "group": "F", "n_users": 300, "n_items": pd.NA, "n_raters": pd.NA, "n_ratings": 3000,
        "value": 1.0, "ci_low": 0.9, "ci_high": 1.1, "reference_group": "M", "ratio": 1.0,
        "p_value": 0.01, "p_method": "permutation", "p_is_bound": False, "p_adjusted": 0.01,
        "flag": False, "tier": "", "direction": "", "severity": np.nan, "status": "ok",
        "better": "lower", "definition": "",
    }  # fmt: skip
    out = {**base, **given}
    if out["tier"] in ("flagged", "notable", "context") and pd.isna(out["severity"]):
        n = out["n_users"] if pd.isna(out["n_raters"]) else out["n_raters"]
        out["severity"] = abs(math.log(out["ratio"])) * n
    out["flag"] = out["tier"] == "flagged"
    if out["flag"]:
        out["status"] = "flagged"
    return out


def reference(metric: str = "rmse", grouping: str = "gender", value: float = 0.9, **given):
    return row(metric=metric, grouping=grouping, group="M", value=value, ratio=1.0,
               status="reference", p_value=np.nan, p_adjusted=np.nan, **given)  # fmt: skip


def exposure(group: str, value: float, catalogue: float, tier: str = "flagged", **given):
    ratio = value / catalogue
    fields = dict(family="exposure", metric="exposure_share", grouping="genres", group=group,
                  n_users=pd.NA, n_items=50, n_raters=900, value=value, ratio=ratio,
                  reference_group="catalogue share", better="higher", tier=tier,
                  p_method="normal approximation",
                  direction="over-exposed" if ratio > 1 else "under-exposed")  # fmt: skip
    return row(**{**fields, **given})


def table(*rows: dict) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows))
    for column in ("n_users", "n_items", "n_raters", "n_ratings"):
        frame[column] = frame[column].astype("Int64")
    return frame


def test_summary_ranks_by_gap_times_users_affected():
    metrics = table(
        reference(),
        row(group="small", n_users=40, value=1.35, ratio=1.5, tier="flagged", direction="worse"),
        row(group="F", n_users=300, value=0.99, ratio=1.1, tier="notable", direction="worse"),
        reference("ndcg", "age", 0.2, better="higher", family="top-N utility"),
        row(family="top-N utility", metric="ndcg", grouping="age", group="old", n_users=500,
            value=0.1, ratio=0.5, better="higher", tier="flagged", direction="worse"),
    )  # fmt: skip
    items = executive_summary(metrics, NO_ACCURACY, CONFIG, n_users=1000)
    assert [i.group for i in items] == ["old", "F", "small"]  # 347 > 28.6 > 16.2
    assert [i.kind for i in items] == ["flagged", "notable", "flagged"]
    severities = [i.severity for i in items]
    assert severities == sorted(severities, reverse=True)
    assert severities[0] == pytest.approx(math.log(2) * 500)
    women = items[1]
    assert women.headline == (
        "RMSE is worse for gender = F (300 users with a held-out rating): 0.99 vs 0.9 for M, "
        "10% higher (lower is better)."
    )
    assert women.detail.startswith("Notable: ratio 1.10 is inside [0.8, 1.25]")
    assert women.check_next.startswith("check whether these users have fewer ratings")


def test_a_worse_ranking_points_to_the_popularity_baseline_only_when_it_was_evaluated():
    metrics = table(
        reference("ndcg", "age", 0.2, better="higher", family="top-N utility"),
        row(family="top-N utility", metric="ndcg", grouping="age", group="old", n_users=500,
            value=0.1, ratio=0.5, better="higher", tier="flagged", direction="worse"),
    )  # fmt: skip
    accuracy = pd.DataFrame({"model": ["SVD", "Popularity"], "metric": ["ndcg", "ndcg"],
                             "mean": [0.2, 0.1], "std": [0.0, 0.0]})  # fmt: skip
    (with_baseline,) = executive_summary(metrics, accuracy, CONFIG, n_users=1000)
    assert "popularity baseline ranks these users better" in with_baseline.check_next
    assert "'Ranking by group across models' table" in with_baseline.check_next  # where to look
    only_svd = accuracy[accuracy["model"] == "SVD"]  # e.g. ratings kept in Spark
    (without,) = executive_summary(metrics, only_svd, CONFIG, n_users=1000)
    assert "baseline" not in without.check_next and "profile sizes" in without.check_next


def test_a_worse_accuracy_points_to_other_models_gaps_only_when_there_are_others():
    metrics = table(reference(), row(group="F", value=1.35, ratio=1.5, tier="flagged",
                                     direction="worse"))  # fmt: skip
    accuracy = pd.DataFrame({"model": ["SVD", "BaselineOnly"], "metric": ["rmse", "rmse"],
                             "mean": [0.9, 0.95], "std": [0.0, 0.0]})  # fmt: skip
    (several,) = executive_summary(metrics, accuracy, CONFIG, n_users=1000)
    assert "compare the models' group gaps" in several.check_next
    (one,) = executive_summary(metrics, accuracy[:1], CONFIG, n_users=1000)
    assert "models" not in one.check_next and "fewer ratings" in one.check_next
    ranks_only = pd.DataFrame({"model": ["SVD", "SVD", "Popularity"],
                               "metric": ["rmse", "ndcg", "ndcg"], "mean": [0.9, 0.2, 0.1],
                               "std": [0.0, 0.0, 0.0]})  # fmt: skip
    (no_other_rmse,) = executive_summary(metrics, ranks_only, CONFIG, n_users=1000)
    assert no_other_rmse.check_next == one.check_next  # Popularity has no accuracy gap


def test_summary_keeps_at_most_seven_items_and_gives_every_family_a_place():
    rows = [reference()]
    for i in range(12):  # twelve large popularity gaps, one per grouping
        rows.append(reference("arp", f"attribute {i}", 1.0, family="popularity"))
        rows.append(row(family="popularity", metric="arp", grouping=f"attribute {i}",
                        group="g", n_users=900, value=3.0, ratio=3.0, tier="flagged",
                        direction="worse"))  # fmt: skip
    rows.append(row(group="F", value=0.975, ratio=1.075, tier="notable", direction="worse"))
    metrics = table(*rows)
    items = executive_summary(metrics, NO_ACCURACY, CONFIG, n_users=1000)
    assert len(items) == MAX_ITEMS
    families = [i.family for i in items]
    assert families[-1] == "accuracy"  # a small accuracy gap is not pushed out ...
    assert families.count("popularity") == MAX_ITEMS - 1  # ... nor kept from filling the rest
    assert executive_summary(metrics, NO_ACCURACY, CONFIG, 1000, limit=3)[0].family == "popularity"


def test_item_groups_in_one_direction_make_one_item():
    metrics = table(
        exposure("Drama", 0.40, 0.2), exposure("Comedy", 0.30, 0.2),
        exposure("Horror", 0.01, 0.05), exposure("War", 0.02, 0.04, tier="notable"),
        {**exposure("long tail", 0.06, 0.68), "grouping": "item popularity"},
    )  # fmt: skip
    items = executive_summary(metrics, NO_ACCURACY, CONFIG, n_users=1000)
    assert len(items) == 2
    under = next(i for i in items if "under-exposed" in i.headline)
    assert under.headline == (
        "3 item groups (2 flagged, 1 notable) get less recommendation exposure than their "
        "share of the catalogue "
        "(under-exposed): item popularity = long tail (6.0% vs 68.0%), genres = Horror (1.0% "
        "vs 5.0%), genres = War (2.0% vs 4.0%)."
    )
    assert under.metrics == ("exposure_share",) * 3
    assert "genres = War 0.50 (notable)" in under.detail
    # the leading ratio is the first group's, said so (it was read as the three groups')
    assert under.detail.startswith("item popularity = long tail is flagged: ratio 0.09, outside")


def test_data_rows_are_context_never_summary_flags_or_headline_counts():
    data_row = exposure("Drama", 0.6, 0.2, tier="context", metric="interaction_share",
                        scope="data", direction="over-exposed")  # fmt: skip
    data_row.update(flag=False, status="ok")
    metrics = table(reference(), data_row, row(value=1.2, ratio=1.33, tier="flagged",
                                               direction="worse"))  # fmt: skip
    items = executive_summary(metrics, NO_ACCURACY, CONFIG, n_users=1000)
    assert [i.family for i in items] == ["accuracy"]
    assert [f.metric for f in findings(metrics)] == ["rmse"]
    said = " ".join(headline(metrics, NO_ACCURACY, CONFIG))
    assert "1 row is flagged" in said and "0 more are notable" in said
    assert "1 rows describe the ratings themselves" in said
    (context,) = data_context(metrics, CONFIG)
    assert context.startswith("Items with genres = Drama get 60.0% of all ratings but make up")
    assert "before any model" in context


def test_notable_rows_become_findings_of_their_own_tier():
    metrics = table(reference(), row(value=0.975, ratio=1.075, tier="notable", direction="worse"))
    assert findings(metrics) == []
    (notable,) = findings(metrics, tier="notable")
    assert notable.tier == "notable" and notable.severity == pytest.approx(300 * math.log(1.075))


@pytest.mark.parametrize(
    ("p", "bound", "shown"),
    [(1 / 2001, True, "adjusted p < 0.0005, permutation"), (1e-12, False, "adjusted p < 1e-6"),
     (0.0123, False, "adjusted p = 0.012")],
)  # fmt: skip
def test_summary_writes_p_values_as_the_test_can_give_them(p, bound, shown):
    metrics = table(reference(), row(value=1.2, ratio=1.33, tier="flagged", direction="worse",
                                     p_adjusted=p, p_is_bound=bound))  # fmt: skip
    (item,) = executive_summary(metrics, NO_ACCURACY, CONFIG, n_users=1000)
    assert shown in item.detail
    assert "e-1" not in item.detail and "e-0" not in item.detail.replace("e-06", "")


def test_a_popularity_baseline_that_ranks_better_is_a_finding_about_the_recommender():
    accuracy = pd.DataFrame(
        [("SVD", "ndcg", 0.05, 0.01), ("Popularity", "ndcg", 0.10, 0.01),
         ("SVD", "recall", 0.04, 0.01), ("Popularity", "recall", 0.03, 0.01)],
        columns=["model", "metric", "mean", "std"],
    )  # fmt: skip
    metrics = table(reference(), row(value=0.975, ratio=1.075, tier="notable", direction="worse"))
    items = executive_summary(metrics, accuracy, CONFIG, n_users=943)
    first = items[0]
    assert first.kind == "evaluation" and first.severity == pytest.approx(943 * math.log(2))
    assert first.headline.startswith("The popularity baseline ranks better than SVD: NDCG@k 0.1")
    assert first.check_next.startswith("check the model settings")
    named = {"n_factors", "n_epochs", "reg_all", "refit_lambda"}  # settings a report lists
    assert all(name in first.check_next for name in named)
    assert named <= {f.name for f in fields(ModelConfig)}
    tie = accuracy.assign(mean=[0.1, 0.05, 0.04, 0.03])
    assert all(i.kind != "evaluation" for i in executive_summary(metrics, tie, CONFIG, 943))
    assert "BaselineOnly" not in first.detail  # not evaluated
    biases = pd.concat([accuracy, pd.DataFrame([("BaselineOnly", "ndcg", 0.06, 0.01)],
                                               columns=accuracy.columns)])  # fmt: skip
    with_biases = executive_summary(metrics, biases, CONFIG, n_users=943)[0]
    assert with_biases.detail.endswith(
        " BaselineOnly (the mean plus user and item biases, no factors) ranks better than SVD "
        "too: NDCG@k 0.06."
    )
    below = biases.assign(mean=[*biases["mean"][:-1], 0.04])  # BaselineOnly ranks worse
    assert "BaselineOnly" not in executive_summary(metrics, below, CONFIG, n_users=943)[0].detail


def test_the_baseline_item_names_the_protocol_its_figures_come_from():
    accuracy = pd.DataFrame(
        [("SVD", "ndcg", 0.0933, 0.01), ("Popularity", "ndcg", 0.1739, 0.01)],
        columns=["model", "metric", "mean", "std"],
    )
    metrics = table(reference())
    (item,) = executive_summary(metrics, accuracy, CONFIG, n_users=943, k=10, protocol="5-fold")
    assert item.headline == (
        "The popularity baseline ranks better than SVD in the 5-fold evaluation: NDCG@10 "
        "0.1739 vs 0.0933 (mean over its folds)."
    )
    (plain,) = executive_summary(metrics, accuracy, CONFIG, n_users=943, k=10)
    assert with_protocol([plain], "5-fold") == [item]
    assert protocol_words({"split": "kfold", "folds": 5}) == "5-fold"
    assert protocol_words({"split": "temporal", "test_share": 0.2}) == "temporal-split"
    assert protocol_words({"split": "last-n", "last_n": 2}) == "leave-last-2"
    assert protocol_words({}) is None


def test_insufficient_groups_are_summarised_per_grouping():
    small = [row(grouping="zip", group=f"{i:05d}", n_users=3, status="insufficient data",
                 value=np.nan, ratio=np.nan) for i in range(40)]  # fmt: skip
    sentence = insufficient_summary(table(reference(), *small), 30)
    assert sentence.startswith("40 groups are below the minimum size of 30 users: 40 of zip ")
    assert "(holding 120 users)" in sentence


def test_numbers_have_one_precision_per_kind():
    assert ratio_text(1.0749) == "1.07" and value_text(0.97512) == "0.9751"
    assert value_text(123456.7) == "123,457" and count_text(1682) == "1,682"
    assert ratio_text(np.nan) == value_text(None) == count_text(pd.NA) == ""


def test_a_ratio_that_rounds_onto_a_band_edge_keeps_the_decimals_that_tell_it_apart():
    # flagged at 1.2501 (> 1.25): "1.25" would read as on the edge, inside the band
    assert ratio_text(1.2501) == "1.2501" and ratio_text(0.79996) == "0.79996"
    assert ratio_text(1.25) == "1.25" and ratio_text(0.8) == "0.80"  # the edges themselves
    assert ratio_text(1.2501, band=(0.5, 2.0)) == "1.25"  # not an edge of this band
    metrics = table(reference(), row(group="F", value=1.12509, ratio=1.2501, tier="flagged",
                                     direction="worse"))  # fmt: skip
    (item,) = executive_summary(metrics, pd.DataFrame(columns=["model", "metric", "mean", "std"]),
                                CONFIG, n_users=1000)  # fmt: skip
    assert item.detail.startswith("Flagged: ratio 1.2501, outside [0.8, 1.25]")


def test_exposure_chart_shows_the_catalogue_share_and_both_directions():
    rows = table(exposure("Drama", 0.5, 0.4), exposure("Horror", 0.01, 0.05),
                 exposure("Comedy", 0.3, 0.3, tier=""))  # fmt: skip
    fig = charts.group_metric(rows, "exposure by genres")
    names = [t.name for t in fig.data]
    assert "catalogue share" in names
    assert {"under-exposed (below catalogue share)", "over-exposed (above catalogue share)"} <= set(
        names
    )
    colours = {t.marker.color for t in fig.data if t.type == "bar" and t.name != charts.HATCHED}
    assert {charts.DIRECTION_COLOURS[n] for n in names if n in charts.DIRECTION_COLOURS} == colours
    assert charts.HATCHED not in names  # every directed bar is flagged: nothing hatched
    catalogue = next(t for t in fig.data if t.name == "catalogue share")
    assert list(catalogue.y) == pytest.approx([0.4, 0.05, 0.3])
    assert fig.layout.showlegend is not False
    # Genre shares overlap (they add up to 0.75 here: no note); past 1 the chart says so.
    assert not fig.layout.annotations
    overlapping = table(exposure("Drama", 0.5, 0.6), exposure("Comedy", 0.6, 0.7))
    (note,) = charts.group_metric(overlapping, "exposure").layout.annotations
    assert "Groups overlap" in note.text and "add up to 130%," in note.text  # as the shares
    notable = table(exposure("Drama", 0.5, 0.4), exposure("Horror", 0.04, 0.05, tier="notable"))
    hatched = charts.group_metric(notable, "exposure by genres")
    under = next(t for t in hatched.data if t.name == "under-exposed (below catalogue share)")
    over = next(t for t in hatched.data if t.name == "over-exposed (above catalogue share)")
    assert under.marker.pattern.shape == charts.NOTABLE_PATTERN and list(under.x) == ["Horror"]
    assert over.marker.pattern.shape is None and list(over.x) == ["Drama"]  # flagged: solid
    assert charts.HATCHED in [t.name for t in hatched.data]
    # a direction with both: the legend shows the solid trace, the hatched one joins its group
    both = table(exposure("Drama", 0.5, 0.4), exposure("War", 0.3, 0.2, tier="notable"))
    traces = [t for t in charts.group_metric(both, "e").data if t.type == "bar" and t.x[0]]
    shown = [(list(t.x), t.marker.pattern.shape, t.showlegend) for t in traces]
    assert shown == [(["Drama"], None, True), (["War"], "/", False)]


def test_interaction_share_is_drawn_next_to_the_exposure():
    rows = table(exposure("Drama", 0.5, 0.4), exposure("<b>Horror</b>", 0.01, 0.05))
    data_rows = rows.assign(metric="interaction_share", scope="data", value=[0.45, 0.02])
    fig = charts.group_metric(rows, "exposure", interaction=data_rows)
    (trace,) = [t for t in fig.data if t.name == "interaction share (ratings)"]
    assert list(trace.y) == pytest.approx([0.45, 0.02])
    assert "&lt;b&gt;Horror&lt;/b&gt;" in trace.x  # data text shown literally


def test_disparity_overview_colours_by_tier_with_a_legend():
    metrics = table(reference(), row(group="F", value=1.2, ratio=1.33, tier="flagged",
                                     direction="worse"),
                    row(group="X", value=0.95, ratio=1.05, tier="notable", direction="worse"),
                    row(group="Y", value=0.9, ratio=1.0, tier=""))  # fmt: skip
    fig = charts.disparity_overview(metrics, CONFIG.band, "accuracy")
    assert [t.name for t in fig.data] == ["flagged", "notable", "not flagged or notable"]
    assert fig.data[0].marker.color == charts.TIER_COLOURS["flagged"]


def test_summary_item_is_a_plain_record():
    item = SummaryItem("h", "d", "check x", 1.0, "flagged")
    assert (item.family, item.metrics) == ("", ())


def test_problems_take_the_places_before_groups_served_better():
    # Seven families each with a small "worse" row, and one family whose most severe row is a
    # group served *better* (the mirror of its reference served worse): the better one,
    # though the most severe, is the one left out of the seven places.
    rows = [reference("ndcg", "age", 0.2, better="higher", family="top-N utility"),
            row(family="top-N utility", metric="ndcg", grouping="age", group="young",
                n_users=900, value=0.4, ratio=2.0, better="higher", tier="flagged",
                direction="better")]  # fmt: skip
    for number in range(7):
        family, metric = f"family {number}", f"metric{number}"
        rows += [reference(metric, "gender", 1.0, family=family),
                 row(family=family, metric=metric, group="F", n_users=100, value=1.1,
                     ratio=1.1, tier="notable", direction="worse")]  # fmt: skip
    items = executive_summary(table(*rows), NO_ACCURACY, CONFIG, n_users=1000)
    assert len(items) == MAX_ITEMS
    assert all(i.direction == "worse" for i in items)
    assert "young" not in {i.group for i in items}
    # with one problem fewer, the better item takes the free place
    fewer = executive_summary(table(*rows[:-2]), NO_ACCURACY, CONFIG, n_users=1000)
    assert fewer[0].group == "young" and fewer[0].direction == "better"


def test_ratings_share_rows_read_as_ratings_and_are_coloured_only_when_the_audit_gave_a_direction():
    # Children's at parity in the ratings (ratio 0.99, p = 1): no direction, neutral colour;
    # Sci-Fi rated twice its catalogue share (significant): "rated more", never "exposed".
    parity = exposure(
        "Children's",
        0.0723,
        0.073,
        tier="context",
        scope="data",
        metric="interaction_share",
        direction="",
        p_value=1.0,
        p_adjusted=1.0,
    )
    more = exposure(
        "Sci-Fi",
        0.12,
        0.06,
        tier="context",
        scope="data",
        metric="interaction_share",
        direction="rated more",
        p_adjusted=1e-9,
    )
    rows = table(parity, more)
    bars = [t for t in charts.group_metric(rows, "ratings").data if t.type == "bar"]
    names = {t.name: list(t.x) for t in bars}
    assert names == {"rated more (above catalogue share)": ["Sci-Fi"],
                     "inside the band or not significant": ["Children's"]}  # fmt: skip
    assert not any("exposed" in line for line in data_context(rows, CONFIG))


def test_ratio_chart_draws_a_zero_ratio_at_its_edge_with_round_ticks():
    rows = table(exposure("never", 0.0, 0.02, severity=99.0), exposure("Drama", 0.6, 0.4),
                 exposure("Comedy", 0.3, 0.3, tier=""))  # fmt: skip
    fig = charts.disparity_overview(rows, CONFIG.band, "exposure")
    drawn = {y: x for t in fig.data for x, y in zip(t.x, t.y, strict=True)}
    assert drawn["exposure_share · genres = never"] == 0.05  # not dropped: at the edge
    axis = fig.layout.xaxis
    assert dict(zip(axis.tickvals, axis.ticktext, strict=True))[0.05] == "0"
    assert {0.8, 1, 1.25} <= set(axis.tickvals) and len(set(axis.tickvals)) == len(axis.tickvals)


def test_hints_by_group_says_each_groups_profile_differences_once():
    from engine.report.reading import hints_by_group

    said = ["they rated fewer items"]

    def hint(grouping, group, metric, sentences=said):
        return {"grouping": grouping, "group": group, "metric": metric, "tier": "notable",
                "sentences": sentences}  # fmt: skip

    hints = [
        hint("gender", "F", "rmse"), hint("age", "55+", "ndcg", ["they rate higher"]),
        hint("gender", "F", "mae"), hint("gender", "F", "rmse"),
    ]  # fmt: skip
    merged = hints_by_group(hints)
    assert [(h.grouping, h.group, h.metrics) for h in merged] == [
        ("gender", "F", ("rmse", "mae")), ("age", "55+", ("ndcg",))
    ]  # fmt: skip
    assert merged[0].sentences == tuple(said)


def test_cell_text_writes_every_kind_of_cell_by_the_conventions():
    from engine.report.numbers import cell_text

    assert [cell_text(v) for v in (None, math.nan, True, 1682, 1682.0, 0.0412345, "East")] == [
        "—", "—", "yes", "1,682", "1,682", "0.04123", "East"
    ]  # fmt: skip


def test_accuracy_fairness_chart_shows_the_gaps_from_zero():
    # two close gaps: an axis fitted to the points made 0.185 vs 0.192 look far apart
    models = {"model": ["SVD", "BaselineOnly"], "overall_rmse": [0.926, 0.944]}
    frame = pd.DataFrame({**models, "max_gap": [0.185, 0.192]})
    fig = charts.model_group_gaps(frame)
    assert fig.layout.yaxis.rangemode == "tozero"
    assert fig.data[0].cliponaxis is False  # the highest point's label was cut at the top
    assert list(fig.data[0].y) == [0.185, 0.192] and list(fig.data[0].x) == [0.926, 0.944]
    assert list(fig.data[0].text) == ["SVD", "BaselineOnly"]


def test_a_popularity_finding_on_a_propensity_group_is_read_against_its_own_ratings():
    """ARP is worse for blockbuster users, yet their lists are 35% less popular than what
    they rate (delta-GAP -0.35): the sentence says the model moves them away from popular
    items; a positive delta-GAP says it moves them toward them; no delta-GAP, no sentence."""
    arp = dict(family="popularity", metric="arp", grouping="popularity propensity")
    diverse = reference("arp", "popularity propensity", 150.0, family="popularity")
    metrics = table(
        diverse | {"group": "diverse"},
        row(**arp, group="blockbuster", value=162.0, ratio=1.08, tier="notable",
            direction="worse", reference_group="diverse"),
        reference("arp", "gender", 150.0, family="popularity"),
        row(family="popularity", metric="arp", group="F", value=170.0, ratio=1.13,
            tier="notable", direction="worse"),
    )  # fmt: skip
    gaps = pd.DataFrame({"group": ["niche", "diverse", "blockbuster"],
                         "delta_gap": [-0.04, -0.21, -0.35]})  # fmt: skip

    def details(delta_gap):
        items = executive_summary(metrics, NO_ACCURACY, CONFIG, 943, delta_gap=delta_gap)
        return {item.grouping: item.detail for item in items}

    read = details(gaps)
    checks = {i.grouping: i.check_next for i in
              executive_summary(metrics, NO_ACCURACY, CONFIG, 943, delta_gap=gaps)}  # fmt: skip
    assert checks["popularity propensity"] == TASTE_CHECK  # amplify or flatten: answered
    assert "amplify or flatten" in checks["gender"]
    assert read["popularity propensity"].endswith(
        " Against their own ratings, these users' lists are 35% less popular than the items "
        "they rated (delta-GAP -0.35; niche -0.04; diverse -0.21): the model moves their lists "
        "away from popular items, not toward them."
    )
    assert "delta-GAP" not in read["gender"]  # delta-GAP is by propensity group only
    amplified = details(gaps.assign(delta_gap=[0.1, 0.2, 0.5]))["popularity propensity"]
    assert "lists are 50% more popular than the items they rated (delta-GAP +0.50" in amplified
    assert amplified.endswith("toward popular items (it amplifies popularity).")
    for missing in (None, gaps.assign(delta_gap=np.nan)):
        assert "delta-GAP" not in details(missing)["popularity propensity"]


def test_metrics_of_one_family_pointing_opposite_ways_for_a_group_are_named_with_why():
    """NDCG worse and recall better for the same users: each item names the other and why
    they can disagree; a group whose metrics agree gets no such sentence."""
    utility = dict(family="top-N utility", better="higher", reference_group="M")
    metrics = table(
        reference("ndcg", value=0.07, **utility), reference("recall", value=0.045, **utility),
        row(metric="ndcg", value=0.046, ratio=0.65, tier="flagged", direction="worse", **utility),
        row(metric="recall", value=0.057, ratio=1.26, tier="flagged", direction="better",
            **utility),
        reference("ndcg", "age", 0.07, **utility),
        row(metric="ndcg", grouping="age", group="56+", value=0.05, ratio=0.7, tier="flagged",
            direction="worse", **utility),
    )  # fmt: skip
    items = executive_summary(metrics, NO_ACCURACY, CONFIG, 943, k=10)
    detail = {(i.grouping, i.direction): i.detail for i in items}
    assert (
        " In the same family the other way: Recall@10 is better (ratio 1.26, flagged). The "
        "metrics count a hit differently" in detail[("gender", "worse")]
    )
    assert "the other way: NDCG@10 is worse (ratio 0.65, flagged)." in detail[("gender", "better")]
    assert "other way" not in detail[("age", "worse")]
