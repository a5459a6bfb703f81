"""The Bias audit's reading, shared by the audit page and a kept run's (layout only).

``audit_reading_view`` lays out what a reader of one audit meets (``engine.report.read_audit``):
the executive summary, the flagged and notable rows, what the data shows, the rows by metric
and group, and the groups below the minimum size. ``ranking_by_group_view`` lays out each
model's NDCG@k by user group; ``catalogue_view`` the catalogue-level tables.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import AuditResult, charts
from engine.audit.run import NO_INTERVAL
from engine.report import display_rows
from engine.report.numbers import NOT_AVAILABLE, cell_text, missing
from engine.report.ranking_groups import (
    RANKING_BY_GROUP,
    grouping_view,
    has_intervals,
    ranking_definition,
)
from engine.report.reading import AuditReading, hints_by_group
from engine.report.summary import SUMMARY_RULE
from engine.text import literal_markdown, literal_plotly

#: Columns the lists of flagged, notable and data rows leave out (the tier says the status).
LISTED = ("status",)
#: Statuses shown in grey in the table by metric and group: no test says anything there.
UNTESTED = ("insufficient data", "not tested", "no recommendations", "no variation",
            "by definition")  # fmt: skip


def _numbers(bootstrap: int) -> dict:
    """Column formats of the audit tables (no interval: its cells are text, not numbers)."""
    numbers = {
        "value": st.column_config.NumberColumn(format="%.4g"),
        "ratio": st.column_config.NumberColumn(format="%.2f"),
        "ci_low": st.column_config.NumberColumn(format="%.4g"),
        "ci_high": st.column_config.NumberColumn(format="%.4g"),
        "severity": st.column_config.NumberColumn(format="%.1f"),
    }  # sizes come as text ("1,682", "—" where a size does not apply): display_rows
    if bootstrap == 0:  # no interval: say so instead of an empty cell
        for column in ("ci_low", "ci_high"):
            numbers[column] = st.column_config.TextColumn()
    return numbers


def audit_reading_view(result: AuditResult, reading: AuditReading) -> None:
    """Lay out the audit's reading, from its notes to the groups below the minimum size."""
    numbers = _numbers(result.config.bootstrap)
    for note in result.notes:
        st.caption(literal_markdown(note))

    st.subheader("Executive summary")
    st.caption(f"{SUMMARY_RULE} Every audit finding is in the tables below.")
    if not reading.summary:
        st.markdown("No disparity of the recommender is flagged or notable, and no baseline "
                    "ranks better than SVD.")  # fmt: skip
    for number, item in enumerate(reading.summary, start=1):
        with st.container(border=True, key=f"summary_item_{number}"):
            st.markdown(f"**{number}. {literal_markdown(item.headline)}** "
                        f"`{item.kind}`")  # fmt: skip
            st.caption(literal_markdown(item.detail))
            st.markdown(f"*Check next:* {literal_markdown(item.check_next)}.")

    low, high = result.config.band
    st.subheader(f"Flagged disparities ({len(reading.flagged)})")
    st.caption(
        f"Flagged = a row about the recommender whose ratio to the reference group is outside "
        f"[{low}, {high}] and significant after Holm's correction (alpha {result.config.alpha}), "
        "most severe first. The 0.8 rule is a flag, not a verdict."
    )
    st.dataframe(display_rows(reading.flagged, LISTED), hide_index=True, key="flagged_table",
                 column_config=numbers)  # fmt: skip
    st.subheader(f"Notable ({len(reading.notable)})")
    st.caption(f"Significant after correction but inside [{low}, {high}]: too small to flag, too "
               "consistent to ignore.")  # fmt: skip
    st.dataframe(display_rows(reading.notable, LISTED), hide_index=True, key="notable_table",
                 column_config=numbers)  # fmt: skip

    st.subheader("What the data shows")
    st.caption("Properties of the ratings themselves, before any model (who rated what): "
               "context for the findings above, never flagged.")  # fmt: skip
    for sentence in reading.context:
        st.markdown(f"- {literal_markdown(sentence)}")
    if result.hints:
        with st.expander("Profile differences of flagged user groups (root-cause hints)"):
            for hint in hints_by_group(result.hints):
                st.markdown(f"**{literal_markdown(hint.grouping)} = "
                            f"{literal_markdown(hint.group)}** "
                            f"({literal_markdown(', '.join(hint.metrics))}): "
                            + literal_markdown("; ".join(hint.sentences)))  # fmt: skip
    with st.expander(f"Data rows ({len(reading.data)})"):
        st.dataframe(display_rows(reading.data, LISTED), hide_index=True, key="data_table",
                     column_config=numbers)  # fmt: skip

    _by_metric_and_group(result, reading, numbers)

    st.subheader("Groups below the minimum size")
    st.caption(literal_markdown(reading.insufficient_note))
    if len(reading.insufficient):
        with st.expander(f"The {len(reading.insufficient):,} groups"):
            st.dataframe(reading.insufficient, hide_index=True, key="insufficient_table",
                         column_config=numbers)  # fmt: skip


def _by_metric_and_group(result: AuditResult, reading: AuditReading, numbers: dict) -> None:
    """One metric's rows and chart for one grouping, chosen by family, metric and grouping."""
    st.subheader("By metric and group")
    metrics = reading.metrics
    family = st.selectbox("Family", sorted(metrics["family"].unique()), key="audit_family")
    rows = metrics[metrics["family"] == family]
    metric = st.selectbox("Metric", sorted(rows["metric"].unique()), key="audit_metric")
    grouping = st.selectbox("Grouping", sorted(rows["grouping"].unique()), key="audit_grouping")
    selected = rows[(rows["metric"] == metric) & (rows["grouping"] == grouping)]
    interaction = metrics[(metrics["scope"] == "data") & (metrics["grouping"] == grouping)]
    shares = reading.catalogue.get(grouping) if grouping in reading.catalogue.index else None
    title = literal_plotly(f"{metric} by {grouping}")
    st.plotly_chart(
        charts.group_metric(selected, title, shares, interaction if metric != "interaction_share"
                            and len(interaction) else None),
        key="group_chart",
    )  # fmt: skip

    def grey_untested(row):
        return ["color: #999999" if row["status"] in UNTESTED else "" for _ in row]

    shown = display_rows(selected)
    if result.config.bootstrap == 0:
        shown = shown.astype({"ci_low": object, "ci_high": object})
        shown.loc[:, ["ci_low", "ci_high"]] = NO_INTERVAL
    st.dataframe(
        shown.style.apply(grey_untested, axis=1),
        hide_index=True, key="group_table", column_config=numbers,
    )  # fmt: skip
    if (selected["status"] == "insufficient data").any():
        st.caption(f"Groups below the minimum size of {result.config.min_group_size} (status "
                   "'insufficient data') have no value or interval: withheld, as in the "
                   "report.")  # fmt: skip
    with st.expander(f"Definition of {literal_markdown(metric)}"):
        st.markdown(result.registry[metric].help_text())  # the metric's declaration
        st.markdown("Confidence intervals: bootstrap over users; p-values: permutation of group "
                    "labels vs the reference group (item groups: normal approximation around the "
                    "catalogue share); Holm-corrected within each metric and grouping. Status "
                    "'not tested': no p-value (tests or bootstrap off, or a reference value of "
                    "0); 'no variation': every resample gave the same value, so there is no "
                    "interval or p-value (except an item group no list reaches: its share is 0 "
                    "in every resample, so the bootstrap gives p < 1/(B+1)); 'by definition': "
                    "true by construction (the long tail's share of ratings).")  # fmt: skip


def accuracy_gaps_view(comparison: pd.DataFrame, attribute: str, min_group_size: int) -> None:
    """Each rating model's overall RMSE against its largest RMSE gap between groups.

    ``comparison``: ``model, overall_rmse, max_gap, groups_compared`` of one user attribute
    (``engine.audit.tables.accuracy_of_error_sums``; the report's trade-off rows).
    """
    if comparison["max_gap"].isna().all():
        st.caption(
            f"Fewer than two groups of {literal_markdown(attribute)} have at least "
            f"{min_group_size} users with a held-out rating: no accuracy gap to compare."
        )
    else:
        st.plotly_chart(charts.model_group_gaps(comparison), key="fairness_chart")
    shown = comparison.assign(max_gap=comparison["max_gap"].map(cell_text))  # NaN: "—"
    st.dataframe(shown, hide_index=True, key="fairness_table")
    st.caption(
        "overall_rmse pools every held-out rating of the model; max_gap is the largest minus "
        "the smallest group RMSE among the groups_compared groups with at least "
        f"{min_group_size} users (lower = fairer). The more groups, the wider that range tends "
        "to be: compare models within one attribute, not the gaps of two attributes."
    )


def ranking_by_group_view(ranking: pd.DataFrame, k: int, min_group_size: int) -> None:
    """Each ranking model's NDCG@``k`` per group of a chosen grouping (the report's table)."""
    st.subheader(RANKING_BY_GROUP)
    metric = f"NDCG@{k}"
    if not len(ranking):
        st.caption(
            f"Only one model ranked items, so its {metric} by group is the audit table's: "
            "evaluate BaselineOnly or Popularity too (Model page) to compare."
        )
        return
    groupings = list(dict.fromkeys(ranking["grouping"]))
    grouping = st.selectbox("Compare rankings by", groupings, key="ranking_grouping")
    rows = ranking[ranking["grouping"] == grouping]
    sentence, fig, wide = grouping_view(rows, metric, min_group_size)
    st.markdown(literal_markdown(sentence))
    if fig is not None:
        st.plotly_chart(fig, key="ranking_chart")
    shown = wide.astype(object).map(lambda v: NOT_AVAILABLE if missing(v) else cell_text(v))
    st.dataframe(shown, hide_index=True, key="ranking_table")  # "n/a", as defined below
    defined = ranking_definition(metric, min_group_size, has_intervals(ranking))
    st.caption(literal_markdown(defined))


def catalogue_view(result: AuditResult, reading: AuditReading) -> None:
    """Catalogue-level measures, Yao & Huang unfairness and delta-GAP, behind an expander.

    The reading's Yao and delta-GAP tables: groups below the minimum size withheld.
    """
    with st.expander("Catalogue-level measures, Yao & Huang unfairness, delta-GAP"):
        st.dataframe(result.catalogue, hide_index=True, key="catalogue_table")
        st.dataframe(reading.yao, hide_index=True, key="yao_table")
        st.dataframe(reading.delta_gap, hide_index=True, key="delta_gap_table")
        st.caption(f"Groups with fewer than {result.config.min_group_size} users have no "
                   "value: withheld, as in the report.")  # fmt: skip
