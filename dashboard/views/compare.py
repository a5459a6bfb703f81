"""Compare versions page: two versions (e.g. before and after an update) on one window.

A version is a saved analysis or a run kept in Spark with its user side
(``engine.compare.versions``). This session's analysis or kept run is A or B, or neither
(both uploaded); an updated one is B by default (the version it came from is A).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import shared_page
from engine import DataFile, EngineError, LoadOptions, load_dataset
from engine.audit import AuditConfig
from engine.compare import Comparison, compare_versions
from engine.compare.text import INTERVAL_ONLY, display_rows
from engine.compare.versions import (
    Version,
    analysis_version,
    kept_version,
    open_version_source,
    scale_of,
    version_of,
)
from engine.data.types import RatingData
from engine.report.comparison import (
    compared_sentences,
    compared_table,
    describe_versions,
    render_comparison,
)
from engine.report.comparison_html import CHART_CAPTION, difference_chart
from engine.saved import SavedAnalysis
from engine.saved.kept import SavedKeptRun
from engine.text import literal_markdown

#: Where the last comparison of this session is kept (it dies with the session).
RESULT_KEY = "compare_result"
#: What the last comparison compared (``describe_versions``: A, B, the window).
COMPARED_KEY = "compare_compared"
#: The last comparison's report files (``{file name: bytes}``: HTML and JSON).
FILES_KEY = "compare_files"
#: This session's version's name: its analysis, or the run kept in Spark it reads.
THIS_SESSION = "This session's analysis"
THIS_KEPT = "This kept run"
#: What an upload may be.
UPLOAD_KINDS = "a saved analysis, or a run kept in Spark with its user side"
#: The table's columns on the page: the verdict and difference first (the report keeps
#: ``display_rows``' order).
TABLE_ORDER = ("Grouping", "Group", "Verdict", "B - A", "95% interval of B - A", "p (Holm)",
               "A", "B", "Users", "Ratings", "Catalogue share", "p", "Note")  # fmt: skip
TABLE_WIDTHS = {
    name: st.column_config.TextColumn(width=width)
    for name, width in (("Grouping", "medium"), ("Group", "medium"), ("Verdict", "medium"),
                        ("Note", "large"))
}  # fmt: skip
#: file name -> (button label, media type) of the report downloads.
DOWNLOADS = {
    "comparison.html": ("Download the comparison report (HTML)", "text/html"),
    "comparison.json": ("Download the comparison report (JSON)", "application/json"),
}


@contextmanager
def _opened(upload: object) -> Iterator[SavedAnalysis | SavedKeptRun]:
    """Open an uploaded zip (``engine.compare.versions.open_version_source``).

    The zip stays on disk until the block ends: a kept run reads its user side from it.
    """
    with tempfile.TemporaryDirectory(prefix="compare-upload-") as folder:
        path = Path(folder) / "version.zip"
        path.write_bytes(upload.getvalue())
        yield open_version_source(path)


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
    metric = st.selectbox("Metric", list(pd.unique(result.rows["metric"])),
                          key="compare_metric")  # fmt: skip
    block = result.rows[result.rows["metric"] == metric]
    columns = [c for c in TABLE_ORDER if c != "Catalogue share" or metric.startswith("exposure")]
    st.dataframe(_table(result).loc[block.index], hide_index=True, key="compare_rows",
                 column_order=columns, column_config=TABLE_WIDTHS)  # fmt: skip
    st.caption(f"The rows of {literal_markdown(metric)}; every metric's rows are in the "
               "comparison report (HTML, JSON) below.")  # fmt: skip
    st.plotly_chart(difference_chart(block, _chart_title(metric)), key="compare_chart")
    st.caption(CHART_CAPTION)
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
    run = shared_page("Compare versions")
    st.markdown(
        "Score two versions of the model (A, e.g. before an update, and B) on the same later "
        "ratings, as each would have served them (a user or item a version had not seen is "
        "predicted by its fallback, and counted): paired differences B - A in RMSE, NDCG@k "
        "and exposure, overall, per user "
        "group and (RMSE, exposure) per item group, with 95% bootstrap intervals and paired "
        "permutation tests (Holm within one metric and grouping). A version is "
        f"{UPLOAD_KINDS} (its `--out` folder, zipped). Download the comparison report "
        "(HTML, JSON) below the results."
    )
    this = THIS_SESSION if run is None else THIS_KEPT
    updated = (run.derived_from if run is not None else state.last_update()) is not None
    places = [f"{this} is A", f"{this} is B", "Upload both"]
    place = st.radio(
        "Versions", places, index=1 if updated else 0, key="compare_this", horizontal=True,
        help="Differences are B - A: put the version before an update as A and the updated "
        "one as B (an updated model is B by default).",
    )  # fmt: skip
    upload_a = upload_b = None
    if place != places[0]:
        upload_a = st.file_uploader("Version A (.zip)", type=["zip"], key="compare_a",
                                    help=f"Either {UPLOAD_KINDS}.")  # fmt: skip
    if place != places[1]:
        upload_b = st.file_uploader("Version B (.zip)", type=["zip"], key="compare_b",
                                    help=f"Either {UPLOAD_KINDS}.")  # fmt: skip
    window = st.file_uploader("Window: ratings given after both versions' training data",
                              key="compare_window")  # fmt: skip
    cols = st.columns(4)
    k = cols[0].number_input("k", 1, 100, 10, key="compare_k")
    permutations = cols[1].number_input("Permutations", 0, 20000, 2000, key="compare_perm")
    bootstrap = cols[2].number_input("Bootstrap", 0, 5000, 200, key="compare_boot")
    min_size = cols[3].number_input("Minimum group size", 1, 10000, 30, key="compare_min")
    ready = window is not None and (place == places[0] or upload_a is not None) and (
        place == places[1] or upload_b is not None)  # fmt: skip
    if not ready:
        slots = (("version A", upload_a, places[0]), ("version B", upload_b, places[1]))
        missing = [name for name, upload, mine in slots if upload is None and place != mine]
        st.info(f"Upload {' and '.join([*missing, 'a window of later ratings'])} to compare.")
    elif st.button("Compare", key="run_compare", type="primary"):
        config = AuditConfig(k=int(k), permutations=int(permutations),
                             bootstrap=int(bootstrap), min_group_size=int(min_size))  # fmt: skip
        try:
            with st.spinner("Scoring both versions on the window..."):
                _compare(run, upload_a, upload_b, window, config)
        except EngineError as error:
            st.session_state.pop(RESULT_KEY, None)
            st.session_state.pop(FILES_KEY, None)
            st.session_state.pop(COMPARED_KEY, None)
            st.error(literal_markdown(error))
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        _show(result, st.session_state.get(COMPARED_KEY))


def _compare(
    run: SavedKeptRun | None, upload_a: object, upload_b: object, window: object,
    config: AuditConfig,
) -> None:  # fmt: skip
    """Compare versions A and B on ``window``; keep the results in the session.

    A and B are the uploads, or this session's kept run or analysis where one is ``None``.
    The window is read on A's rating scale. The session keeps the comparison, what was
    compared and the report files.
    """
    with ExitStack() as stack:
        source_a = stack.enter_context(_opened(upload_a)) if upload_a is not None else None
        source_b = stack.enter_context(_opened(upload_b)) if upload_b is not None else None
        if source_a is not None:
            scale = scale_of(source_a)
        elif run is not None:
            scale = scale_of(run)
        else:
            data_scale = state.analysis().data.scale
            scale = (data_scale.low, data_scale.high)
        ratings = _window(window, scale)
        users = ratings.ratings["user_id"]
        version_a, version_b = (
            version_of(source, upload.name, users) if source is not None
            else _this_version(run, users)
            for source, upload in ((source_a, upload_a), (source_b, upload_b))
        )  # fmt: skip
    result = compare_versions(version_a, version_b, ratings, config)
    compared = describe_versions(version_a, version_b, ratings)
    st.session_state[FILES_KEY] = render_comparison(result, compared, "html,json")
    st.session_state[RESULT_KEY] = result
    st.session_state[COMPARED_KEY] = compared


def _this_version(run: SavedKeptRun | None, users: pd.Series) -> Version:
    """Return this session's kept run (its window users' model) or analysis as a version."""
    if run is not None:
        return kept_version(run, THIS_KEPT, users)
    return analysis_version(state.analysis(), THIS_SESSION, state.session_update_origin())


def _window(upload: object, scale: tuple[float, float]) -> RatingData:
    """Load the window's ratings, checked against A's rating scale."""
    return load_dataset(DataFile(upload.name, upload.getvalue()),
                        options=LoadOptions(scale=scale), batch=True)  # fmt: skip


render()
