"""Data page: the current dataset, uploads with column mapping, load report and profile."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import (
    dataset_caption,
    load_report_view,
    profile_view,
    reading_options,
)
from engine import (
    ColumnMapping,
    DataFile,
    EngineError,
    RatingData,
    load_dataset,
)
from engine.data import RatingsPreview, preview_ratings
from engine.external import heldout_from_file, load_lists, load_predictions
from engine.external.load import external_rejected_table, preview_external
from engine.saved.kept import is_kept
from engine.text import literal_markdown


def saved_analyses() -> None:
    """Open a saved analysis (zip), or download the session's analysis as one."""
    with st.expander("Saved analyses", expanded=False):
        st.markdown(
            "A saved analysis holds the data, the settings, the trained model, the evaluation, "
            "the audit and the report files (made here or by `python -m engine run`). Opening "
            "one needs no retraining; every file is checked first. A zip of the `--out` folder "
            "of `run --engine spark --keep-in-spark` (its `manifest.json` and `kept/`) opens "
            "as that run's read-only Data, Model, Bias audit and Report pages."
        )
        upload = st.file_uploader("Open a saved analysis (.zip)", type=["zip"],
                                  key="upload_analysis")  # fmt: skip
        if upload is not None and st.button("Open", key="open_analysis"):
            with tempfile.TemporaryDirectory(prefix="analysis-upload-") as folder:
                path = Path(folder) / "analysis.zip"
                path.write_bytes(upload.getvalue())
                try:
                    with st.spinner("Checking and opening the saved analysis..."):
                        if is_kept(path):  # a run kept in Spark: its read-only pages
                            state.open_kept_run(path, upload.name)
                            st.rerun()
                        opened = state.open_saved(path)
                except EngineError as error:
                    st.error(literal_markdown(f"{upload.name}: {error}"))
                else:
                    st.success(literal_markdown(
                        f"Opened {upload.name}: {', '.join(opened.computed()) or 'data only'}."
                    ))  # fmt: skip
                    st.rerun()
        done = state.analysis().computed()
        if st.toggle("Prepare this analysis for download", key="prepare_analysis"):
            st.download_button(
                f"analysis.zip ({', '.join(['data', *done])})", state.analysis_zip(),
                "analysis.zip", "application/zip", key="download_analysis", on_click="ignore",
            )  # fmt: skip


#: Fields of an external file, in the order of the mapping form (optional ones may be none).
EXTERNAL_FIELDS = {"lists": ("user", "item", "rank", "score", "system"),
                   "predictions": ("user", "item", "prediction", "system")}  # fmt: skip
OPTIONAL = ("rank", "score", "system")


def external_outputs(data: RatingData) -> None:
    """Upload an external system's lists or predictions, map columns, show the load report."""
    with st.expander("Audit your own recommender (top-N lists or predictions)", expanded=False):
        st.markdown(
            "Upload your system's **top-N lists** (`user, item, rank` or `user, item, score`) or "
            "its **rating predictions** (`user, item, prediction`); a `system` column holds "
            "several systems in one file. The Bias audit page then compares them with the "
            "built-in SVD and popularity on the ratings after a temporal cut (the last 20% of "
            "time) that the lists are taken not to have seen, or on a file of held-out ratings "
            "collected after the lists were made (below, once a system is added)."
        )
        kind = st.radio("The file holds", ["lists", "predictions"], horizontal=True,
                        key="external_kind")  # fmt: skip
        upload = st.file_uploader("Lists or predictions file", key="upload_external")
        name = st.text_input("System name (default: the file name)", key="external_name")
        mapping = None
        if upload is not None:
            file = DataFile(upload.name, upload.getvalue())
            try:
                columns, detected, head = preview_external(file, kind)
            except EngineError as error:
                st.error(literal_markdown(f"{upload.name}: {error}"))
                columns = None
            if columns is not None:
                st.dataframe(head, key="external_preview")
                cols = st.columns(len(EXTERNAL_FIELDS[kind]))
                mapping = {}
                for col, fld in zip(cols, EXTERNAL_FIELDS[kind], strict=True):
                    choices = ["(none)", *columns] if fld in OPTIONAL else columns
                    default = detected.get(fld, choices[0])
                    chosen = col.selectbox(fld, choices, index=choices.index(default),
                                           key=f"external_map_{fld}")  # fmt: skip
                    if chosen != "(none)":
                        mapping[fld] = chosen
            if columns is not None and st.button("Add system", key="add_external",
                                                 type="primary"):  # fmt: skip
                loader = load_lists if kind == "lists" else load_predictions
                extra = {"k": state.settings().ranking.k} if kind == "lists" else {}
                try:
                    systems = loader(file, data, name=name or None, mapping=mapping, **extra)
                    state.add_external(systems)
                except EngineError as error:
                    st.error(literal_markdown(f"{upload.name}: {error}"))
        systems = state.external_systems()
        if systems:
            st.markdown("**Systems added** (compared on the Bias audit page)")
        for system in systems:
            parts = [p for p, t in (("lists", system.lists), ("predictions", system.predictions))
                     if t is not None]  # fmt: skip
            st.markdown(literal_markdown(f"{system.name}: {' and '.join(parts)}"))
            for report in system.load_reports:
                st.caption(literal_markdown(report.summary()))
                if report.rejected:
                    st.dataframe(external_rejected_table(report), hide_index=True,
                                 key=f"external_rejected_{system.name}_{report.name}")  # fmt: skip
                for note in report.notes:
                    st.caption(literal_markdown(note))
        if systems:
            heldout_upload(data)
        if systems and st.button("Remove the systems", key="clear_external"):
            state.clear_external()
            st.rerun()


def heldout_upload(data: RatingData) -> None:
    """Offer an optional held-out ratings file for the systems (the CLI's ``--heldout``)."""
    held = state.heldout_file()
    upload = st.file_uploader(
        "Held-out ratings (optional: ratings collected after the lists were made; default: "
        "the temporal split)", key="upload_heldout",
    )  # fmt: skip
    if upload is not None and st.button("Judge the systems on these ratings", key="use_heldout"):
        try:
            held = heldout_from_file(data, DataFile(upload.name, upload.getvalue()))
            state.set_heldout(held)
        except EngineError as error:
            st.error(literal_markdown(f"{upload.name}: {error}"))
    if held is None:
        st.caption("Judged on the temporal split of the ratings (the last 20% of time).")
        return
    st.caption(literal_markdown(held.describe()))
    for note in held.notes:
        st.caption(literal_markdown(note))
    if st.button("Use the temporal split instead", key="clear_heldout"):
        state.set_heldout(None)
        st.rerun()


def _preview_caption(uploaded: str, preview: RatingsPreview) -> str:
    """Which file the preview shows: the upload, or the ratings member of an uploaded zip."""
    if preview.archive:
        return f"{uploaded}: a MovieLens archive; its layout fixes the columns. Load reads it."
    where = uploaded if preview.name == uploaded else f"{preview.name} in {uploaded}"
    shape = f"the first {len(preview.head)} rows of {len(preview.columns)} columns"
    return f"Preview of {where}: {shape}."


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """Multi-valued (tuple) columns joined with `` | `` for display."""
    tuples = [c for c in table.columns if table[c].map(lambda v: isinstance(v, tuple)).any()]
    return table.assign(**{c: table[c].map(lambda v: " | ".join(v)) for c in tuples})


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Data")
    data = state.current_data()
    dataset_caption(data)

    with st.expander("Load your own rating data", expanded=False):
        st.markdown(
            "A ratings file (CSV, TSV, `;`, `|` or `::` separated, Parquet, Excel `.xlsx`, "
            "JSON or JSON lines, gzip) or a zip archive (MovieLens 100K/1M/latest, or a zip "
            "with `ratings.*`, `users.*`, `items.*`). User and item attribute files are optional."
        )
        options = reading_options("read")
        ratings_file = st.file_uploader("Ratings", key="upload_ratings")
        users_file = st.file_uploader("User attributes (optional)", key="upload_users")
        items_file = st.file_uploader("Item attributes (optional)", key="upload_items")
        if ratings_file is not None and options is not None:
            upload = DataFile(ratings_file.name, ratings_file.getvalue())
            try:
                preview = preview_ratings(upload, options)
            except EngineError as error:
                st.error(literal_markdown(error))
                preview = None
            mapping = None
            if preview is not None:
                st.caption(literal_markdown(_preview_caption(upload.name, preview)))
            if preview is not None and not preview.archive:
                st.dataframe(preview.head, key="upload_preview")
                st.markdown("**Columns** (detected choice pre-selected)")
                cols = st.columns(4)
                chosen = {}
                for col, field in zip(cols, ("user", "item", "rating", "timestamp"), strict=True):
                    choices = (
                        ["(none)", *preview.columns] if field == "timestamp" else preview.columns
                    )
                    default = preview.detected.get(field, choices[0])
                    chosen[field] = col.selectbox(
                        field, choices, index=choices.index(default), key=f"map_{field}"
                    )
                mapping = ColumnMapping(**{f: c for f, c in chosen.items() if c != "(none)"})
            if preview is not None and st.button("Load", key="load_upload", type="primary"):
                extras = {
                    role: DataFile(f.name, f.getvalue())
                    for role, f in (("users", users_file), ("items", items_file))
                    if f is not None
                }
                try:
                    with st.spinner("Loading and validating..."):
                        if preview.archive:
                            loaded = load_dataset(upload, options=options, **extras)
                        else:
                            loaded = load_dataset(
                                ratings=upload, mapping=mapping, options=options, **extras
                            )
                except EngineError as error:
                    st.error(literal_markdown(error))
                else:
                    state.set_data(loaded)
                    loaded_text = f"Loaded {loaded.name}: {loaded.report.summary()}."
                    st.success(literal_markdown(loaded_text))
                    st.rerun()
        if state.has_upload() and st.button("Back to the sample", key="reset"):
            state.set_data(None)
            st.rerun()
    saved_analyses()
    external_outputs(data)

    profile = state.profile(data)
    profile_view(
        profile,
        f"Rating scale: {data.scale.describe()}; a rating >= "
        f"{data.scale.relevance_threshold():g} counts as relevant in top-N metrics and the "
        "audit unless set otherwise (three quarters of the way up the scale).",
    )
    load_report_view(data.report)

    st.subheader("Attributes")
    a, b = st.columns(2)
    with a:
        names = literal_markdown(", ".join(profile.user_attributes))
        st.markdown(f"**Users**: {names or 'none'}")
        if data.users is not None:
            st.dataframe(_shown(data.users.head(20)), key="users_preview")
    with b:
        names = literal_markdown(", ".join(profile.item_attributes))
        st.markdown(f"**Items**: {names or 'none'}")
        if data.items is not None:
            st.dataframe(_shown(data.items.head(20)), key="items_preview")


render()
