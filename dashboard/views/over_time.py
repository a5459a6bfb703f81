"""Over time page: data, model quality and fairness per calendar window, with drift flags."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption, run_with_progress
from engine import charts, monitor_charts
from engine.monitor import MonitorConfig, Monitoring, has_times, monitor
from engine.monitor_windows import WINDOW_KINDS
from engine.text import literal_markdown


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Over time")
    data = state.current_data()
    dataset_caption(data)
    if not has_times(data):
        st.info("These ratings have no timestamps, so they cannot be followed over time: "
                "load a timestamp column on the Data page.")  # fmt: skip
        st.stop()
    c1, c2 = st.columns([1, 3])
    window = c1.selectbox("Window", WINDOW_KINDS, index=1, key="monitor_window",
                          help="Calendar windows in UTC (weeks start on Monday).")  # fmt: skip
    c2.caption(
        "Each window is predicted by an SVD trained on every rating before it starts. Changes "
        "vs the previous window and vs the baseline (the first window whose test ratings "
        "are at most half cold start; see the note under the results) are "
        "flagged when the ratio leaves [0.8, 1.25] and is significant after Holm's "
        "correction (permutation test over users); windows with fewer than 100 ratings or "
        "30 active users are insufficient data."
    )
    if st.button("Run the monitoring", key="run_monitor", type="primary"):

        def work(progress) -> None:  # type: ignore[no-untyped-def]
            result = monitor(data, window, MonitorConfig(), progress=progress)
            state.keep_monitoring(data, window, result)  # the Report page includes it

        run_with_progress("Monitoring over time", work)
    result = state.monitoring(window)
    if result is None:
        st.info("Run the monitoring to see the data, model quality and fairness per window.")
        return
    _show(result)


def _show(result: Monitoring) -> None:
    baseline = result.windows["label"].iloc[result.baseline]
    small = result.windows.loc[result.windows["status"] != "ok", "label"].tolist()
    st.caption(
        f"{len(result.windows)} windows ({literal_markdown(result.window)}); baseline "
        f"{literal_markdown(baseline)}; insufficient data: "
        f"{literal_markdown(', '.join(small)) if small else 'none'}."
    )
    st.subheader("Flagged changes")
    if result.sentences:
        for sentence in result.sentences:
            st.markdown("- " + literal_markdown(sentence))
    else:
        st.success("No change between windows is flagged.")
    st.plotly_chart(charts.monitor_volume(result.data, result.windows), key="monitor_volume")
    groupings = ["all", *sorted(set(result.values["grouping"]) - {"all"})]
    grouping = st.selectbox("Group users by", groupings, key="monitor_grouping")
    for quantity in ("rating_mean", "rmse", "ndcg"):
        st.plotly_chart(charts.monitor_series(result.values, result.changes, quantity, grouping),
                        key=f"monitor_{quantity}")  # fmt: skip
    _providers(result)
    _gaps(result, grouping)
    with st.expander("Tables"):
        st.dataframe(result.quality, hide_index=True)
        st.dataframe(result.changes.drop(columns="sentence"), hide_index=True)
        st.dataframe(result.fairness.drop(columns="sentence"), hide_index=True)
        st.dataframe(result.gap_changes.drop(columns="sentence"), hide_index=True)
    for note in result.notes:
        st.caption(literal_markdown(note))
    st.caption("The Report page includes this monitoring as its **Over time** section (HTML, "
               "PDF and JSON) until the data changes or another window is run.")  # fmt: skip


def _providers(result: Monitoring) -> None:
    """Exposure share (vs catalogue share) and share of ratings per provider, flags marked."""
    shares = result.values[result.values["quantity"].isin(["exposure", "rating_share"])]
    if shares.empty:
        return
    st.subheader(f"Per {literal_markdown(shares['grouping'].iloc[0])}")
    st.caption(
        "Exposure share: the provider's share of the position-weighted exposure "
        "(1 / log2(1 + rank)) in the window's top-k lists; the dotted line is its share of the "
        "catalogue known to the model (served in proportion to the catalogue when they "
        "meet). Share of ratings: what the users rated that window. A change of either is "
        "flagged like the others (ratio outside the band and significant after Holm)."
    )
    for quantity in ("exposure", "rating_share"):
        if (shares["quantity"] == quantity).any():
            figure = monitor_charts.provider_shares(result.values, result.changes,
                                                    result.exposure, quantity)  # fmt: skip
            st.plotly_chart(figure, key=f"monitor_{quantity}")


def _gaps(result: Monitoring, grouping: str) -> None:
    """Fairness gaps per window for the chosen user grouping, and the flagged ones."""
    st.subheader("Fairness gaps per window")
    if result.gap_sentences:
        for sentence in result.gap_sentences:
            st.markdown("- " + literal_markdown(sentence))
    else:
        st.success("No gap between user groups is flagged in any window.")
    if grouping == "all":
        st.caption("Choose a user grouping above to see its gaps per window.")
        return
    st.caption(
        "Each group's RMSE and NDCG@k divided by the reference group's (the group with most "
        "users in that window), tested as the audit does: user bootstrap interval, "
        "permutation test, Holm over the windows and groups of one attribute."
    )
    for quantity in ("rmse", "ndcg"):
        figure = monitor_charts.fairness_gaps(result.fairness, quantity, grouping,
                                              result.config.band)  # fmt: skip
        st.plotly_chart(figure, key=f"monitor_gap_{quantity}")


render()
