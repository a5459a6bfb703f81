"""Over time page: data, model quality and fairness per calendar window, with drift flags."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption, run_with_progress
from engine import monitor_charts
from engine.monitor import MonitorConfig, Monitoring, baseline_choices, has_times, monitor
from engine.monitor_windows import WINDOW_KINDS
from engine.text import literal_markdown

#: The page's baseline control and its default choice (the engine's rule).
BASELINE_CONTROL = "Baseline window"
AUTOMATIC = "automatic (first mostly warm window)"


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Over time")
    data = state.current_data()
    dataset_caption(data)
    if not has_times(data):
        st.info("These ratings have no timestamps, so they cannot be followed over time: "
                "load a timestamp column on the Data page.")  # fmt: skip
        st.stop()
    c1, c2, c3 = st.columns([1, 1, 2])
    window = c1.selectbox("Window", WINDOW_KINDS, index=1, key="monitor_window",
                          help="Calendar windows in UTC (weeks start on Monday).")  # fmt: skip
    chosen = c2.selectbox(
        BASELINE_CONTROL, [AUTOMATIC, *baseline_choices(data, window)], key="monitor_baseline",
        help="The window every later window is also compared with. Automatic: the first "
        "window whose test ratings are at most half cold start (the engine's rule).",
    )  # fmt: skip
    c3.caption(
        "Each window is predicted by an SVD trained on every rating before it starts. Changes "
        "vs the previous window and vs the baseline (the window right after the baseline "
        "only vs the previous one: the same comparison) are "
        "flagged when the ratio leaves [0.8, 1.25] and is significant after Holm's "
        "correction (permutation test over users); windows with fewer than 100 ratings or "
        "30 active users are insufficient data."
    )
    if st.button("Run the monitoring", key="run_monitor", type="primary"):
        config = MonitorConfig(baseline=None if chosen == AUTOMATIC else chosen)

        def work(progress) -> None:  # type: ignore[no-untyped-def]
            result = monitor(data, window, config, progress=progress)
            state.keep_monitoring(data, window, result)  # the Report page includes it

        run_with_progress("Monitoring over time", work)
    result = state.monitoring(window)
    if result is None:
        st.info("Run the monitoring to see the data, model quality and fairness per window.")
        return
    _show(result)


def _show(result: Monitoring) -> None:
    names = result.window_names()
    baseline = names[result.baseline]
    small = [n for n, s in zip(names, result.windows["status"], strict=True) if s != "ok"]
    st.caption(
        f"{len(result.windows)} windows ({literal_markdown(result.window)}); baseline "
        f"{literal_markdown(baseline)}; insufficient data: "
        f"{literal_markdown(', '.join(small)) if small else 'none'}."
    )
    st.subheader("Flagged changes")
    if result.sentences:
        st.caption("Exposure shares are of each window's retrained model's lists; read a "
                   "change next to the same group's share of ratings (what users rated) to "
                   "tell a change of the model from a change of the data.")  # fmt: skip
        _flags(result.flag_summary(), result.sentences, "flagged changes")
    else:
        st.success("No change between windows is flagged.")
    st.plotly_chart(monitor_charts.volume(result.data, result.windows), key="monitor_volume")
    with st.expander("Data per window"):
        st.dataframe(result.data.assign(label=names), hide_index=True)
    item_grouping = set(result.values.loc[result.values["quantity"].isin(
        ["exposure", "rating_share"]), "grouping"])  # fmt: skip
    users = set(result.values["grouping"]) - {"all"} - item_grouping
    grouping = st.selectbox("Group users by", ["all", *sorted(users)], key="monitor_grouping")
    size = result.config.min_group_size
    for quantity in ("rating_mean", "rmse", "ndcg"):
        figure = monitor_charts.series(result.values, result.changes, quantity, grouping, size,
                                       result.windows)  # fmt: skip
        st.plotly_chart(figure, key=f"monitor_{quantity}")
    _providers(result)
    _gaps(result, grouping)
    with st.expander("Tables"):
        st.dataframe(result.quality, hide_index=True)
        st.dataframe(result.changes.drop(columns="sentence"), hide_index=True)
        st.dataframe(result.fairness.drop(columns="sentence"), hide_index=True)
        st.dataframe(result.gap_changes.drop(columns="sentence"), hide_index=True)
    for note in result.notes:
        st.caption(literal_markdown(note))
        if note.startswith(f"Baseline window {result.windows['label'].iloc[result.baseline]} "):
            st.caption(f"Choose another in **{BASELINE_CONTROL}** above and run again.")
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
            figure = monitor_charts.provider_shares(
                result.values, result.changes, result.exposure, quantity,
                result.config.min_group_size, result.windows,
            )  # fmt: skip
            st.plotly_chart(figure, key=f"monitor_{quantity}")


def _gaps(result: Monitoring, grouping: str) -> None:
    """Fairness gaps per window for the chosen user grouping, and the flagged ones."""
    st.subheader("Fairness gaps per window")
    for sentence in result.gap_summary():
        st.markdown(literal_markdown(sentence))
    if result.gap_sentences:
        _flags(result.gap_flag_summary(), result.gap_sentences, "flagged gaps")
    if grouping == "all":
        st.caption("Choose a user grouping above to see its gaps per window.")
        return
    st.caption(
        "Each group's RMSE and NDCG@k divided by the reference group's (the group with most "
        "users in that window), tested as the audit does: user bootstrap interval, "
        "permutation test, Holm over the windows and groups of one attribute."
    )
    for quantity in ("rmse", "ndcg"):
        if not monitor_charts.has_gaps(result.fairness, quantity, grouping):
            what = {"rmse": "RMSE", "ndcg": "NDCG@k"}[quantity]
            st.caption(f"No {what} gap by {literal_markdown(grouping)} could be tested in any "
                       "window: no chart (see the sentence above).")  # fmt: skip
            continue
        figure = monitor_charts.fairness_gaps(result.fairness, quantity, grouping,
                                              result.config.band, result.windows)  # fmt: skip
        st.plotly_chart(figure, key=f"monitor_gap_{quantity}")


def _flags(lines: list[str], sentences: list[str], what: str) -> None:
    """One line per (quantity, group), then every sentence behind an expander."""
    for line in lines:
        st.markdown("- " + literal_markdown(line))
    with st.expander(f"All {len(sentences)} {what}, one by one"):
        for sentence in sentences:
            st.markdown("- " + literal_markdown(sentence))


render()
