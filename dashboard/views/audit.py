"""Bias audit page: choose groupings, run the audit, read flags, definitions and hints."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption, run_with_progress
from engine import AuditConfig, charts
from engine.audit.groups import user_attribute_groups
from engine.audit.run import NO_INTERVAL, accuracy_by_model


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Bias audit")
    data = state.current_data()
    dataset_caption(data)

    user_attrs = list(data.users.columns) if data.users is not None else []
    item_attrs = [c for c in (data.items.columns if data.items is not None else []) if c != "title"]
    c1, c2, c3 = st.columns([2, 2, 1])
    chosen_users = c1.multiselect(
        "User attributes", user_attrs, default=user_attrs, key="audit_users"
    )
    chosen_items = c2.multiselect(
        "Item attributes", item_attrs, default=item_attrs, key="audit_items"
    )
    min_size = c3.number_input("Minimum group size", 2, 10_000, 30, key="min_group")
    # Every attribute chosen = the default (None: every suitable one), as the CLI sends it.
    config = AuditConfig(
        user_attributes=None if chosen_users == user_attrs else tuple(chosen_users),
        item_attributes=None if chosen_items == item_attrs else tuple(chosen_items),
        min_group_size=int(min_size),
    )
    NUMBERS = {
        "value": st.column_config.NumberColumn(format="%.4f"),
        "ratio": st.column_config.NumberColumn(format="%.3f"),
        "ci_low": st.column_config.NumberColumn(format="%.4f"),
        "ci_high": st.column_config.NumberColumn(format="%.4f"),
        "p_value": st.column_config.NumberColumn(format="%.2e"),
        "p_adjusted": st.column_config.NumberColumn(format="%.2e"),
    }
    st.caption("Also audited: activity (top 5% vs rest), popularity propensity (niche / diverse / "
               "blockbuster) and item popularity (short head / long tail).")  # fmt: skip

    if st.button("Run the audit", key="run_audit", type="primary"):
        state.audit_settings(config)
        run_with_progress(
            "Auditing (training and 5-fold evaluation first if needed)...",
            lambda progress: state.audit(progress=progress),
        )

    found = state.current_audit()
    if found is None:
        st.info("Run the audit to see disparities by group (for the current model settings).")
        st.stop()
    result, _ = found
    for note in result.notes:
        st.caption(note)
    if result.config.bootstrap == 0:  # no interval: say so instead of an empty cell
        for column in ("ci_low", "ci_high"):
            NUMBERS[column] = st.column_config.TextColumn()

    flagged = result.flagged()
    st.subheader(f"Flagged disparities ({len(flagged)})")
    st.caption(
        "Flagged = ratio to the reference group outside [0.8, 1.25] and significant after Holm's "
        "correction (alpha 0.05). The 0.8 rule is a flag, not a verdict."
    )
    st.dataframe(
        flagged[["family", "metric", "grouping", "group", "direction", "value", "ratio",
                 "p_adjusted", "n_users"]],
        hide_index=True, key="flagged_table", column_config=NUMBERS,
    )  # fmt: skip
    if result.hints:
        with st.expander("Root-cause hints for flagged user groups"):
            for hint in result.hints:
                st.markdown(f"**{hint['grouping']} = {hint['group']}** ({hint['metric']}): "
                            + "; ".join(hint["sentences"]))  # fmt: skip

    st.subheader("By metric and group")
    metrics = result.metrics
    family = st.selectbox("Family", sorted(metrics["family"].unique()), key="audit_family")
    rows = metrics[metrics["family"] == family]
    metric = st.selectbox("Metric", sorted(rows["metric"].unique()), key="audit_metric")
    grouping = st.selectbox("Grouping", sorted(rows["grouping"].unique()), key="audit_grouping")
    selected = rows[(rows["metric"] == metric) & (rows["grouping"] == grouping)]
    st.plotly_chart(charts.group_metric(selected, f"{metric} by {grouping}"), key="group_chart")

    def grey_untested(row):
        grey = row["status"] in ("insufficient data", "not tested", "no recommendations")
        return ["color: #999999" if grey else "" for _ in row]

    shown = selected[["group", "n_users", "n_ratings", "value", "ci_low", "ci_high", "ratio",
                      "p_value", "p_adjusted", "status", "direction"]]  # fmt: skip
    if result.config.bootstrap == 0:
        shown = shown.astype({"ci_low": object, "ci_high": object})
        shown.loc[:, ["ci_low", "ci_high"]] = NO_INTERVAL
    st.dataframe(
        shown.style.apply(grey_untested, axis=1),
        hide_index=True, key="group_table", column_config=NUMBERS,
    )  # fmt: skip
    with st.expander(f"Definition of {metric}"):
        st.markdown(result.registry[metric].help_text())  # the metric's declaration
        st.markdown("Confidence intervals: bootstrap over users; p-values: permutation of group "
                    "labels vs the reference group; Holm-corrected over the whole audit. Status "
                    "'not tested': no p-value (tests or bootstrap off, or a reference value of "
                    "0).")  # fmt: skip

    st.subheader("Accuracy vs fairness across models")
    if data.users is not None and chosen_users:
        attribute = st.selectbox("Compare models by", chosen_users, key="fairness_attr")
        groups, _ = user_attribute_groups(data.users, data.ratings["user_id"].unique(),
                                          [attribute], config.max_groups)  # fmt: skip
        comparison = accuracy_by_model(state.evaluation(), groups[attribute], config.min_group_size)
        st.plotly_chart(charts.model_group_gaps(comparison), key="fairness_chart")
        st.dataframe(comparison, hide_index=True, key="fairness_table")
    else:
        st.caption("Load user attributes to compare models across user groups.")

    with st.expander("Catalogue-level measures, Yao & Huang unfairness, delta-GAP"):
        st.dataframe(result.catalogue, hide_index=True, key="catalogue_table")
        st.dataframe(result.yao, hide_index=True, key="yao_table")
        st.dataframe(result.delta_gap, hide_index=True, key="delta_gap_table")


render()
