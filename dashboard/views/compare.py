"""Compare versions page: two analyses (e.g. before and after an update) on one window."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption
from engine import DataFile, EngineError, LoadOptions, charts, load_dataset
from engine.audit import AuditConfig
from engine.audit.stats import format_p_value
from engine.compare import Comparison, compare_analyses
from engine.report.comparison import describe_versions, render_comparison
from engine.saved import SavedAnalysis, read_saved
from engine.text import literal_markdown

#: Where the last comparison of this session is kept (it dies with the session).
RESULT_KEY = "compare_result"
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


def _table(rows: pd.DataFrame) -> pd.DataFrame:
    """Return the rows as shown: p-values by ``format_p_value``, numbers rounded."""
    shown = rows[["metric", "grouping", "group", "n_users", "value_a", "value_b", "difference",
                  "ci_low", "ci_high", "verdict"]].copy()  # fmt: skip
    shown["p"] = [format_p_value(p, bool(b)) for p, b in zip(rows["p_value"], rows["p_is_bound"],
                                                            strict=True)]  # fmt: skip
    shown["p (Holm)"] = [format_p_value(p) for p in rows["p_adjusted"]]
    return shown.round(4)


def _show(result: Comparison) -> None:
    st.subheader("Summary")
    for sentence in result.sentences:
        st.markdown("- " + literal_markdown(sentence))
    counts = result.counts
    excluded = [f"{n:,} {reason}" for reason, n in counts["pairs_excluded"].items() if n]
    st.caption(
        f"{counts['pairs_used']:,} of {counts['window_ratings']:,} window ratings scored by both "
        f"versions ({counts['users_rmse']:,} users); by its fallback (user or item it had not "
        f"seen), A predicted {counts['n_fallback_a']:,} and B {counts['n_fallback_b']:,}; NDCG "
        f"over {counts['users_ndcg']:,} users with a relevant window item; excluded: "
        + literal_markdown(", ".join(excluded) or "none")
    )
    st.dataframe(_table(result.rows), hide_index=True, key="compare_rows")
    metric = st.selectbox("Metric of the chart", list(pd.unique(result.rows["metric"])),
                          key="compare_metric")  # fmt: skip
    st.plotly_chart(charts.version_differences(result.rows, metric), key="compare_chart")
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
        except EngineError as error:
            st.session_state.pop(RESULT_KEY, None)
            st.session_state.pop(FILES_KEY, None)
            st.error(literal_markdown(error))
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        _show(result)


render()
