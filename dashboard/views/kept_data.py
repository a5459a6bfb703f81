"""Data page of a run kept in Spark: its data's profile and load report, read only."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import kept_page, load_report_view, profile_view
from engine.text import literal_markdown


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    run = kept_page("Data")
    if st.button("Close this run and open the sample or your own data", key="leave_kept"):
        state.leave_kept_run()
        st.rerun()
    profile = run.parts.profile
    evaluation = run.parts.evaluation
    profile_view(
        profile,
        f"Rating scale: {profile.scale}. In top-N metrics and the audit, "
        f"{evaluation['relevance_rule']}.",
    )
    load_report_view(run.parts.load)
    st.subheader("Attributes")
    for who, names in (("Users", profile.user_attributes), ("Items", profile.item_attributes)):
        st.markdown(f"**{who}**: {literal_markdown(', '.join(names)) or 'none'}")
    if run.users is None:
        st.caption("This run stored aggregates only (counts per user and item, the audit's "
                   "rows per group, the lists' items), never a rating and not the user or "
                   "item tables: an attribute's values appear only as the names of its "
                   "groups in the audit (and item titles in the lists).")  # fmt: skip
    else:
        side = run.users
        st.caption(
            "Besides the aggregates that the Data, Model, Bias audit and Report pages rest "
            f"on, this run stored the final fit ({len(side.user_ids):,} user and "
            f"{len(side.item_ids):,} item vectors of {side.config.n_factors} factors), the "
            f"user and item tables, and **a copy of its {int(side.item_counts.sum()):,} "
            "ratings** sorted by user (`user_side/`), from which the User profile and "
            "Recommendations pages read one user at a time, and Compare versions the users "
            "of a window. Where no copy of the ratings may be kept, run with "
            "`--no-user-side` (those three pages are then not available)."
        )


render()
