"""Bias audit page: run the audit, read its executive summary, tiers, data context and tables."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.audit_panels import (
    accuracy_gaps_view,
    audit_reading_view,
    catalogue_view,
    ranking_by_group_view,
)
from dashboard.components import dataset_caption, run_with_progress
from engine import AuditConfig, EngineError
from engine.audit.groups import user_attribute_groups
from engine.audit.run import accuracy_by_model
from engine.external import compare_pair, pair_sentences, paired_display
from engine.external.systems import system_summaries
from engine.report import display_rows, read_audit
from engine.report.numbers import cell_text
from engine.report.systems import shown_table
from engine.text import literal_markdown

#: The side-by-side columns shown first: (header, help); the rest are behind an expander.
MAIN_COLUMNS = {
    "system": ("system", None),
    "n_users": ("users listed", "users with an audited list"),
    "n_users_ranked": ("users scored", "the users NDCG@k and Recall@k average over: listed "
                       "users with a relevant held-out rating"),
    "ndcg": ("NDCG@k", "higher is better"),
    "recall": ("Recall@k", "higher is better"),
    "rmse": ("RMSE", "lower is better"),
    "long_tail_exposure": ("long tail", "long-tail exposure: higher = less popularity bias"),
    "coverage": ("coverage", "share of the catalogue listed"),
    "flagged": ("flagged", "flagged audit rows"),
}  # fmt: skip
MORE_COLUMNS = {
    "system": ("system", None),
    "kind": ("kind", None),
    "n_pairs": ("pairs predicted", "held-out pairs predicted (accuracy)"),
    "mae": ("MAE", "lower is better"),
    "aplt": ("APLT", "long-tail share of lists: higher = less popularity bias"),
    "arp": ("ARP", "mean popularity of listed items: lower = less popularity bias"),
    "gini_exposure": ("Gini", "Gini of exposure: 0 = equal"),
    "miscalibration": ("miscalibration", "lower is better"),
    "surrogate_r2": ("surrogate R^2", "leave-one-out R^2 of the surrogate"),
    "n_listed": ("listed items", "audited (user, listed item) pairs"),
    "n_hits": ("held out", "listed items that are a held-out rating of that user"),
    "n_relevant_hits": ("held out, relevant", "listed items that are a relevant held-out "
                        "rating of that user"),
}  # fmt: skip


def _side_table(table, columns: dict, key: str) -> None:
    """Every cell as text (a missing value reads "—"), short headers with their meaning."""
    shown = table[list(columns)].astype(object)
    shown = shown.apply(lambda column: column.map(cell_text))
    config = {c: st.column_config.TextColumn(label, help=help_text,
                                             width="medium" if c == "system" else "small")
              for c, (label, help_text) in columns.items()}  # fmt: skip
    st.dataframe(shown, hide_index=True, key=key, column_config=config)


def systems_side_by_side() -> None:
    """Show the analyst's own systems beside the built-in SVD and popularity."""
    systems = state.external_systems()
    if not systems:
        st.caption("Audit your own recommender too: add its top-N lists or predictions on the "
                   "Data page.")  # fmt: skip
        return
    st.subheader("Systems side by side")
    names = ", ".join(s.name for s in systems)
    st.markdown(literal_markdown(
        f"Your systems: {names}. Each is audited with the same families, statistics, tiers "
        "and minimum group sizes as the built-in audit, beside the built-in SVD and popularity, "
        "on the same users and the held-out ratings after a temporal cut."
    ))  # fmt: skip
    if st.button("Compare the systems", key="run_systems", type="primary"):
        with st.spinner("Training the SVD on the ratings before the cut, auditing each system..."):
            try:
                state.systems_comparison(compute=True)
            except EngineError as error:
                st.error(literal_markdown(error))
    comparison = state.systems_comparison()
    if comparison is None:
        st.info("Compare the systems to see them side by side (for the current settings).")
        return
    for warning in comparison.warnings.values():
        st.warning(literal_markdown(warning))
    for summary in system_summaries(comparison).values():
        st.markdown(f"- {literal_markdown(summary)}")
    st.caption(literal_markdown(comparison.heldout.describe()))
    shown = shown_table(comparison)
    _side_table(shown, MAIN_COLUMNS, "systems_table")
    st.caption(
        "NDCG@k and Recall@k: higher is better, averaged over the users with a relevant "
        "held-out rating (not every user with a list); RMSE: lower is better; long-tail "
        "exposure and coverage: higher = less popularity bias. Flagged rows: the built-in "
        "audit's tier, per system."
    )
    with st.expander("More columns: accuracy, popularity, calibration, the utility check"):
        _side_table(shown, MORE_COLUMNS, "systems_table_more")
        st.caption("ARP, Gini and miscalibration: lower is better. Listed items held out: "
                   "(user, listed item) pairs that are a held-out rating of that user; with "
                   "none, a system cannot score on utility.")  # fmt: skip
    for name, audit in comparison.audits.items():
        flagged = audit.result.flagged()
        with st.expander(literal_markdown(f"{name}: {len(flagged)} flagged rows"),
                         expanded=False):  # fmt: skip
            st.dataframe(display_rows(flagged), hide_index=True, key=f"systems_flagged_{name}")
    left, right = st.columns(2)
    a = left.selectbox("Reference system", comparison.names, index=0, key="systems_a")
    b = right.selectbox("Compared with it", comparison.names, index=len(comparison.names) - 1,
                        key="systems_b")  # fmt: skip
    if a != b:
        rows = compare_pair(comparison, a, b)
        for sentence in pair_sentences(rows, a, b):
            st.markdown(literal_markdown(sentence))
        st.caption(literal_markdown(
            f"Paired per user (the same users under {a} and {b}): bootstrap interval and "
            "sign-flip permutation p, Holm-adjusted within metric x grouping."
        ))  # fmt: skip
        st.dataframe(paired_display(rows, a, b), hide_index=True, key="systems_pairs")
    for note in comparison.notes:
        st.caption(literal_markdown(note))


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
    st.caption("Also audited: activity (top 5% vs rest), popularity propensity (niche / diverse / "
               "blockbuster) and item popularity (short head / long tail).")  # fmt: skip

    if st.button("Run the audit", key="run_audit", type="primary"):
        state.audit_settings(config)
        run_with_progress(
            "Auditing (training and 5-fold evaluation first if needed)...",
            lambda progress: state.audit(progress=progress),
        )

    systems_side_by_side()
    found = state.current_audit()
    if found is None:
        st.info("Run the audit to see disparities by group (for the current model settings).")
        st.stop()
    result, _ = found
    reading = read_audit(result, state.evaluation(), data.n_users)
    audit_reading_view(result, reading)

    st.subheader("Accuracy vs fairness across models")
    if data.users is not None and chosen_users:
        attribute = st.selectbox("Compare models by", chosen_users, key="fairness_attr")
        groups, _ = user_attribute_groups(data.users, data.ratings["user_id"].unique(),
                                          [attribute], config.max_groups)  # fmt: skip
        comparison = accuracy_by_model(state.evaluation(), groups[attribute], config.min_group_size)
        accuracy_gaps_view(comparison, attribute, config.min_group_size)
    else:
        st.caption("Load user attributes to compare models across user groups.")

    ranking_by_group_view(
        state.ranking_by_group(), state.evaluation().evaluation.k, config.min_group_size
    )  # the report's table: the same numbers
    catalogue_view(result, reading)


render()
