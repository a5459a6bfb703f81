"""Data page: the current dataset, uploads with column mapping, load report and profile."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption
from engine import REJECT_REASONS, ColumnMapping, DataFile, EngineError, charts, load_dataset
from engine.data import preview_ratings


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Data")
    data = state.current_data()
    dataset_caption(data)

    with st.expander("Load your own rating data", expanded=False):
        st.markdown(
            "A ratings file (CSV, TSV, `;`, `|` or `::` separated, Parquet, gzip) or a zip "
            "archive (MovieLens 100K/1M/latest, or a zip with `ratings.*`, `users.*`, `items.*`). "
            "User and item attribute files are optional."
        )
        ratings_file = st.file_uploader("Ratings", key="upload_ratings")
        users_file = st.file_uploader("User attributes (optional)", key="upload_users")
        items_file = st.file_uploader("Item attributes (optional)", key="upload_items")
        if ratings_file is not None:
            upload = DataFile(ratings_file.name, ratings_file.getvalue())
            try:
                preview = preview_ratings(upload)
            except EngineError as error:
                st.error(str(error))
                preview = None
            mapping = None
            if preview is not None and not preview.archive:
                st.dataframe(preview.head, key="upload_preview")
                st.markdown("**Columns** (detected choice pre-selected)")
                cols = st.columns(4)
                chosen = {}
                for col, field in zip(cols, ("user", "item", "rating", "timestamp"), strict=True):
                    options = (
                        ["(none)", *preview.columns] if field == "timestamp" else preview.columns
                    )
                    default = preview.detected.get(field, options[0])
                    chosen[field] = col.selectbox(
                        field, options, index=options.index(default), key=f"map_{field}"
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
                            loaded = load_dataset(upload, **extras)
                        else:
                            loaded = load_dataset(ratings=upload, mapping=mapping, **extras)
                except EngineError as error:
                    st.error(str(error))
                else:
                    state.set_data(loaded)
                    st.success(f"Loaded {loaded.name}: {loaded.report.summary()}.")
                    st.rerun()
        if state.has_upload() and st.button("Back to the sample", key="reset"):
            state.set_data(None)
            st.rerun()

    profile = state.profile(data)
    cols = st.columns(5)
    cols[0].metric("Users", f"{profile.n_users:,}")
    cols[1].metric("Items", f"{profile.n_items:,}")
    cols[2].metric("Ratings", f"{profile.n_ratings:,}")
    cols[3].metric("Density", f"{profile.density:.2%}")
    cols[4].metric("Mean rating", f"{profile.rating_mean:.2f}")

    left, right = st.columns(2)
    left.plotly_chart(charts.rating_histogram(profile), key="rating_histogram")
    right.plotly_chart(charts.activity_distribution(profile), key="activity_distribution")
    st.plotly_chart(charts.long_tail_curve(profile), key="long_tail_curve")
    st.markdown(
        f"The **short head** is {profile.short_head_items:,} items "
        f"({1 - profile.long_tail_item_share:.1%} of the catalogue) holding 80% of all ratings; "
        f"the other {profile.long_tail_item_share:.1%} of items form the long tail. "
        f"Rating scale: {data.scale.describe()}."
    )

    st.subheader("Load report")
    report = data.report
    st.write(report.summary())
    if report.rejected:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "reason": REJECT_REASONS[r],
                        "rows": n,
                        "examples": str(report.examples.get(r, [])),
                    }
                    for r, n in report.rejected.items()
                ]
            ),
            hide_index=True,
            key="rejected_table",
        )
    for sentence in report.warnings:
        st.warning(sentence)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "role": f.role,
                    "file": f.name,
                    "format": f.format,
                    "encoding": f.encoding,
                    "delimiter": repr(f.delimiter) if f.delimiter else None,
                    "header": f.header,
                    "columns": ", ".join(f"{k}={v}" for k, v in f.columns.items()),
                }
                for f in report.files
            ]
        ),
        hide_index=True,
        key="files_table",
    )
    if report.attribute_coverage:
        st.caption(
            "Attribute coverage: "
            + ", ".join(
                f"{k.replace('_', ' ')}: {v:,}" for k, v in report.attribute_coverage.items()
            )
        )

    st.subheader("Attributes")
    a, b = st.columns(2)
    with a:
        st.markdown("**Users**: " + (", ".join(profile.user_attributes) or "none"))
        if data.users is not None:
            st.dataframe(data.users.head(20), key="users_preview")
    with b:
        st.markdown("**Items**: " + (", ".join(profile.item_attributes) or "none"))
        if data.items is not None:
            items = data.items.head(20)
            if "genres" in items:
                items = items.assign(genres=items["genres"].map(" | ".join))
            st.dataframe(items, key="items_preview")


render()
