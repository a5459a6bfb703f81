"""Over time page of a run kept in Spark: its data per calendar window, read from its ratings."""

from __future__ import annotations

import streamlit as st

from dashboard.components import kept_page
from engine import EngineError, monitor_charts
from engine.monitor import MonitorConfig
from engine.monitor_windows import WINDOW_KINDS
from engine.saved.kept_over_time import data_over_time, distribution_table, time_span
from engine.text import literal_markdown

#: Where the session keeps what it read: ``{(run key, window): DataOverTime}``.
RESULT_KEY = "kept_over_time"


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    run = kept_page("Over time")
    st.markdown(
        "The data per calendar window (UTC): ratings, active and new users, new items, the "
        "mean rating, how concentrated the ratings are on few items, and the rating "
        "distribution, read from the ratings this run stored (`user_side/`), one part at a "
        "time. **Model quality and fairness per window are not shown**: they need a model "
        "retrained on the ratings before each window, and a run kept in Spark trains one "
        "model on all of them. For those, run the analysis without `--keep-in-spark` (on "
        "this data, or a sample of it) and open its Over time page."
    )
    if time_span(run)[0] is None:
        st.info("These ratings have no timestamps, so they cannot be followed over time.")
        st.stop()
    window = st.selectbox("Window", WINDOW_KINDS, index=1, key="kept_monitor_window",
                          help="Calendar windows in UTC (weeks start on Monday).")  # fmt: skip
    kept = st.session_state.setdefault(RESULT_KEY, {})
    if st.button("Read the data per window", key="run_kept_monitor", type="primary"):
        try:
            with st.spinner("Reading the ratings part by part..."):
                kept[(run.key, window)] = data_over_time(run, window)
        except EngineError as error:
            st.error(literal_markdown(error))
    result = kept.get((run.key, window))
    if result is None:
        st.info("Read the data per window to see it (every ratings part is read once).")
        return
    names = result.window_names()
    small = [n for n, s in zip(names, result.windows["status"], strict=True) if s != "ok"]
    config = MonitorConfig()  # data_over_time's rule for "insufficient data"
    st.caption(
        f"{len(result.windows)} windows ({literal_markdown(result.window)}); insufficient "
        f"data (fewer than {config.min_ratings} ratings or {config.min_group_size} active "
        "users): "
        f"{literal_markdown(', '.join(small)) if small else 'none'}."
    )
    st.plotly_chart(monitor_charts.volume(result.data, result.windows), key="kept_volume")
    st.subheader("Data per window")
    st.caption("Gini: of the window's ratings per item rated in it (0 = every item equally "
               "often, higher = more concentrated). Short head share: the share of those items "
               "that hold 80% of the window's ratings (lower = more concentrated).")  # fmt: skip
    st.dataframe(result.data.assign(label=names), hide_index=True)
    st.subheader("Rating distribution per window (% of the window's ratings)")
    st.dataframe(distribution_table(result), hide_index=True)
    for note in result.notes:
        st.caption(literal_markdown(note))


render()
