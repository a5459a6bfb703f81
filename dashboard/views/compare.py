"""Compare versions page: two analyses (e.g. before and after an update) on one window."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption
from engine import DataFile, EngineError, LoadOptions, load_dataset
from engine.audit import AuditConfig
from engine.compare import Comparison, compare_analyses
from engine.compare.text import INTERVAL_ONLY, display_rows
from engine.report.comparison import (
    compared_sentences,
    compared_table,
    describe_versions,
    render_comparison,
)
from engine.report.comparison_html import difference_chart
from engine.saved import SavedAnalysis, read_saved
from engine.text import literal_markdown

#: Where the last comparison of this session is kept (it dies with the session).
RESULT_KEY = "compare_result"
#: What the last comparison compared (``describe_versions``: A, B, the window).
COMPARED_KEY = "compare_compared"
#: The last comparison's report files (``{file name: bytes}``: HTML and JSON).
FILES_KEY = "compare_files"
SESSION_A = "This session's analysis"
#: file name -> (button label, media type) of the report downloads.
DOWNLOADS = {
    "comparison.html": ("Download the comparison report (HTML)", "text/html"),
    "comparison.json": ("Download the comparison report (JSON)", "application/json"),
}


def _opened(upload: object) -> SavedAnalysis:
    """Open an uploaded saved-analysis zip (checked by ``engine.saved``)."""
    with tempfile.TemporaryDirectory(prefix="compare-upload-") as folder:
        path = Path(folder) / "analysis.zip"
        path.write_bytes(upload.getvalue())
        return read_saved(path)


def _table(result: Comparison) -> pd.DataFrame:
    """Return the rows as the report shows them (``engine.compare.text.display_rows``).

    The project's number formats, readable headers, "—" where a group has no interval or
    test, and a note on each row whose interval excludes 0 but whose Holm-adjusted test is
    not significant.
    """
    return display_rows(result.rows, result.config.min_group_size)


def _chart_title(metric: str) -> str:
    if metric.startswith("exposure"):
        return f"{metric} share: B - A per item group (95% interval)"
    return f"{metric}: B - A per group (95% interval)"


def _show(result: Comparison, compared: dict | None) -> None:
    if compared is not None:
        st.subheader("What was compared")
        st.dataframe(compared_table(compared), hide_index=True, key="compare_compared")
        for sentence in compared_sentences(compared, result.counts):
            st.caption(literal_markdown(sentence))
    st.subheader("Summary")
    for sentence in result.sentences:
        st.markdown("- " + literal_markdown(sentence))
    counts = result.counts
    st.caption(
        f"NDCG over {counts['users_ndcg']:,} users with a relevant window item; exposure over "
        f"{counts['users_exposure']:,} users. The verdict is the Holm-adjusted paired "
        "permutation test; the 95% interval is per row and not adjusted, so a row whose "
        f"interval excludes 0 can show no significant change (noted '{INTERVAL_ONLY}')."
    )
    st.dataframe(_table(result), hide_index=True, key="compare_rows")
    metric = st.selectbox("Metric of the chart", list(pd.unique(result.rows["metric"])),
                          key="compare_metric")  # fmt: skip
    block = result.rows[result.rows["metric"] == metric]
    st.plotly_chart(difference_chart(block, _chart_title(metric)), key="compare_chart")
    st.caption(
        "Each point is a group's difference B - A with its 95% interval, coloured by verdict "
        "(after Holm's correction); groups with insufficient data are not drawn."
    )
    for note in result.notes:
        st.caption(literal_markdown(note))
    files = st.session_state.get(FILES_KEY) or {}
    cols = st.columns(len(DOWNLOADS))
    for col, (name, (label, media)) in zip(cols, DOWNLOADS.items(), strict=True):
        if name in files:
            col.download_button(label, files[name], file_name=name, mime=media,
                                key=f"download_{name}")  # fmt: skip


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Compare versions")
    dataset_caption(state.current_data())
    st.markdown(
        "Score two versions of the model (A, e.g. before an update, and B) on the same later "
        "ratings, as each would have served them (a user or item a version had not seen is "
        "predicted by its fallback, and counted): paired differences B - A in RMSE, NDCG@k "
        "and exposure, overall, per user "
        "group and (RMSE, exposure) per item group, with 95% bootstrap intervals and paired "
        "permutation tests (Holm within one metric and grouping). Download the comparison "
        "report (HTML, JSON) below the results."
    )
    source = st.radio("Version A", [SESSION_A, "Upload a saved analysis (.zip)"],
                      key="compare_a_source", horizontal=True)  # fmt: skip
    upload_a = None
    if source != SESSION_A:
        upload_a = st.file_uploader("Saved analysis A (.zip)", type=["zip"], key="compare_a")
    upload_b = st.file_uploader("Saved analysis B (.zip)", type=["zip"], key="compare_b")
    window = st.file_uploader("Window: ratings given after both versions' training data",
                              key="compare_window")  # fmt: skip
    cols = st.columns(4)
    k = cols[0].number_input("k", 1, 100, 10, key="compare_k")
    permutations = cols[1].number_input("Permutations", 0, 20000, 2000, key="compare_perm")
    bootstrap = cols[2].number_input("Bootstrap", 0, 5000, 200, key="compare_boot")
    min_size = cols[3].number_input("Minimum group size", 1, 10000, 30, key="compare_min")
    ready = upload_b is not None and window is not None and (source == SESSION_A or upload_a)
    if not ready:
        st.info("Upload version B and a window of later ratings to compare.")
    elif st.button("Compare", key="run_compare", type="primary"):
        try:
            with st.spinner("Scoring both versions on the window..."):
                saved_a = None if upload_a is None else _opened(upload_a)
                analysis_a = state.analysis() if saved_a is None else saved_a.analysis
                saved_b = _opened(upload_b)
                analysis_b = saved_b.analysis
                scale = analysis_a.data.scale
                ratings = load_dataset(
                    DataFile(window.name, window.getvalue()),
                    options=LoadOptions(scale=(scale.low, scale.high)), batch=True,
                )  # fmt: skip
                config = AuditConfig(
                    k=int(k),
                    permutations=int(permutations),
                    bootstrap=int(bootstrap),
                    min_group_size=int(min_size),
                )
                result = compare_analyses(analysis_a, analysis_b, ratings, config)
                names = (SESSION_A if upload_a is None else upload_a.name, upload_b.name)
                compared = describe_versions(analysis_a, analysis_b, ratings, names,
                                             saved_b.manifest.get("derived_from"))  # fmt: skip
                st.session_state[FILES_KEY] = render_comparison(result, compared, "html,json")
                st.session_state[RESULT_KEY] = result
                st.session_state[COMPARED_KEY] = compared
        except EngineError as error:
            st.session_state.pop(RESULT_KEY, None)
            st.session_state.pop(FILES_KEY, None)
            st.session_state.pop(COMPARED_KEY, None)
            st.error(literal_markdown(error))
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        _show(result, st.session_state.get(COMPARED_KEY))


render()
