"""Bias audit page of a run kept in Spark: the audit it ran, read as the audit page reads one."""

from __future__ import annotations

import streamlit as st

from dashboard.audit_panels import (
    accuracy_gaps_view,
    audit_reading_view,
    catalogue_view,
    ranking_by_group_view,
)
from dashboard.components import kept_page
from engine.report.reading import read_audit_parts
from engine.report.update_section import KEPT_SUMMARY_LEAD
from engine.text import literal_markdown


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    run = kept_page("Bias audit")
    parts, result = run.parts, run.result
    config = result.config
    groupings = list(dict.fromkeys(result.metrics["grouping"]))
    st.caption(literal_markdown(
        f"The audit the run made: groupings {', '.join(groupings)}; minimum group size "
        f"{config.min_group_size}; band [{config.band[0]}, {config.band[1]}]; alpha "
        f"{config.alpha}; {config.bootstrap} bootstrap resamples and {config.permutations} "
        "permutations. A run kept in Spark is read here, not audited again: run it again to "
        "change them."
    ))  # fmt: skip
    if run.derived_from:  # an updated run: its audit is the source run's
        st.info(KEPT_SUMMARY_LEAD, icon=":material/history:")
    reading = read_audit_parts(result, parts.accuracy, parts.evaluation, parts.profile.n_users)
    audit_reading_view(result, reading)

    st.subheader("Accuracy vs fairness across models")
    tradeoff = parts.tradeoff
    if len(tradeoff):
        grouping = st.selectbox("Compare models by", list(dict.fromkeys(tradeoff["grouping"])),
                                key="fairness_attr")  # fmt: skip
        rows = tradeoff[tradeoff["grouping"] == grouping].drop(columns="grouping")
        accuracy_gaps_view(rows, grouping, config.min_group_size)
    else:
        st.caption("The run had no user attributes, so models are not compared across user "
                   "groups.")  # fmt: skip
    ranking_by_group_view(parts.ranking_by_group, int(parts.evaluation["k"]),
                          config.min_group_size)  # fmt: skip
    catalogue_view(result, reading)


render()
