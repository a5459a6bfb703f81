"""Report page: choose sections, preview the HTML report, download HTML, PDF, JSON, CSV."""

from __future__ import annotations

import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption, kept_caption
from engine import EngineError, RatingData
from engine.monitor import Monitoring, has_times
from engine.report import SECTIONS, find_chromium
from engine.report.over_time import describe
from engine.report.pdf import INSTALL_HINT
from engine.report.write import FORMATS, MEDIA_TYPES
from engine.text import literal_markdown


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Report")
    run = state.kept_run()
    if run is not None:  # the report the run wrote, assembled again from its stored parts
        kept_caption(run)
        result, data = run.result, None
    else:
        data = state.current_data()
        dataset_caption(data)
        found = state.current_audit()
        if found is None:
            st.info("Run the audit on the Bias audit page first (with the current model and "
                    "audit settings); the report presents its results.")  # fmt: skip
            st.stop()
        result, data = found

    chosen = st.multiselect(
        "Sections of the HTML and PDF report", list(SECTIONS), default=list(SECTIONS),
        format_func=SECTIONS.get, key="report_sections",
        help="JSON and CSV always carry every metric row, the definitions and the provenance.",
    )  # fmt: skip
    if not chosen:
        st.warning("Choose at least one section.")
        st.stop()
    sections = tuple(s for s in SECTIONS if s in chosen)
    report = state.report(sections)
    files = state.report_files(sections, ("html", "json", "csv"))

    st.markdown(
        f"**{len(report.findings)} flagged and {len(report.notable)} notable findings about the "
        f"recommender; the executive summary opens the report with the {len(report.summary)} "
        "most severe.** " + literal_markdown(" ".join(report.headline[:2]))
        + " The report holds aggregates only: no user ids, no individual ratings; groups below "
        f"{result.config.min_group_size} users are listed without their values."
    )  # fmt: skip
    if report.update is not None:  # an update (the Model page, or python -m engine update)
        where = ("on the Model page" if state.last_update() is not None
                 else "by `python -m engine update`")  # fmt: skip
        kept = report.update.get("evaluated") == "source"
        st.info(
            f"The model was updated with new ratings {where}, not retrained: the report "
            "carries a **Model update** section (HTML, PDF and JSON)"
            + (", and its profile, accuracy and audit are those of the run before the batch. "
               if kept else ". ")
            + literal_markdown(report.update["reading"][0])
        )  # fmt: skip
    _over_time_notice(report.monitoring, data)
    c1, c2, c3, c4 = st.columns(4)
    for column, name in zip((c1, c2, c3), ("html", "json", "csv"), strict=True):
        file = FORMATS[name]
        column.download_button(file, files[file], file, MEDIA_TYPES[file], key=f"download_{name}",
                               on_click="ignore")  # fmt: skip

    built = state.rendered_report_files(sections, ("pdf",))
    pdf = built[FORMATS["pdf"]] if built else None
    if pdf is None:
        if find_chromium() is None:
            c4.button("report.pdf", disabled=True, key="build_pdf")
            st.caption(f"PDF needs Chromium: {INSTALL_HINT}.")
        elif c4.button("Build report.pdf", key="build_pdf"):
            with st.spinner("Printing the report with headless Chromium..."):
                try:
                    state.report_files(sections, ("pdf",))
                except EngineError as error:
                    st.error(str(error))
                else:
                    st.rerun()
    if pdf is not None:
        c4.download_button(FORMATS["pdf"], pdf, FORMATS["pdf"], MEDIA_TYPES[FORMATS["pdf"]],
                           key="download_pdf", on_click="ignore")  # fmt: skip

    archive = state.report_zip(sections, {**files, **(built or {})})
    label = "All four formats (zip)" if pdf else "HTML, JSON and CSV (zip; build the PDF to add it)"
    st.download_button(label, archive, "fairness-report.zip", "application/zip",
                       key="download_zip", on_click="ignore")  # fmt: skip

    if st.toggle("Preview the HTML report", key="preview_report"):
        st.iframe(files[FORMATS["html"]].decode("utf-8"), height=900)


def _over_time_notice(monitoring: Monitoring | None, data: RatingData | None) -> None:
    """Say whether the report has the Over time section, or how to add it.

    ``data``: ``None`` for a run kept in Spark, whose report is the one it wrote.
    """
    if data is None:
        updated = state.kept_run() is not None and state.kept_run().derived_from is not None
        wrote = ("This is the report of the run it was updated from, assembled again from its "
                 "stored parts, with the Model update section" if updated else
                 "This is the report the run wrote, assembled again from its stored parts "
                 "(byte for byte the same with the same version of the tool)")  # fmt: skip
        st.caption(f"{wrote}; it has no Over time section, which is computed in memory "
                   "from the held-out predictions by time window, and those stayed in "
                   "Spark.")  # fmt: skip
    elif monitoring is not None:  # run on the Over time page (state.monitoring)
        st.info(
            f"The report includes **Over time** ({literal_markdown(describe(monitoring))}), "
            "the monitoring run on the Over time page: in the HTML, PDF and JSON "
            "(`over_time`); the CSV keeps the audit rows only."
        )
    elif has_times(data):
        st.caption("To include an **Over time** section (data, model quality and fairness per "
                   "calendar window), run the monitoring on the Over time page first.")  # fmt: skip
    else:
        st.caption("These ratings have no timestamps, so the report has no Over time section.")


render()
