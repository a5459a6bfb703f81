"""Model page of a run kept in Spark: its settings, held-out accuracy and most-listed items."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import COVERAGE_COLUMN, kept_caption
from engine.metrics import RANKING_METRICS
from engine.report.html import accuracy_table, relevance_sentence
from engine.text import literal_markdown

#: The held-out metrics shown, in the Model page's order.
COLUMNS = ["rmse", "mae", *RANKING_METRICS, "coverage"]


def _mean_std(accuracy: pd.DataFrame) -> pd.DataFrame:
    """``model x metric`` cells as ``mean ± std`` over the folds (``n/a``: not measured)."""
    text = accuracy.assign(cell=[
        f"{m:.4f} ± {s:.4f}" if pd.notna(s) else f"{m:.4f} ± n/a"
        for m, s in zip(accuracy["mean"], accuracy["std"], strict=True)
    ])  # fmt: skip
    wide = text.pivot(index="model", columns="metric", values="cell")
    order = list(dict.fromkeys(accuracy["model"]))
    return wide.reindex(index=order, columns=COLUMNS).fillna("n/a")


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Model")
    run = state.kept_run()
    if run is None:
        st.rerun()
    kept_caption(run)
    parts = run.parts
    evaluation = parts.evaluation
    st.subheader("Settings")
    fields = parts.model.settings_in_use()  # as the report lists them
    settings = pd.DataFrame({"setting": list(fields), "value": [str(v) for v in fields.values()]})
    st.dataframe(settings, hide_index=True, key="kept_settings")
    st.caption("The settings the run trained with; a run kept in Spark is read here, not "
               "retrained: run it again to change them.")  # fmt: skip

    st.subheader("Held-out metrics, every model on the same folds")
    st.dataframe(
        _mean_std(parts.accuracy), key="metrics_table",
        column_config={"coverage": COVERAGE_COLUMN},
    )  # fmt: skip
    st.caption(literal_markdown(
        f"{evaluation['protocol']} Top-N metrics at k = {evaluation['k']}, "
        f"{relevance_sentence(evaluation)}. Mean ± standard deviation over the folds; "
        "coverage is of the held-out lists."
    ))  # fmt: skip
    _, reasons = accuracy_table(parts.accuracy)
    for sentence in [*reasons, *evaluation.get("notes", [])]:
        st.warning(literal_markdown(sentence))
    for model, reason in evaluation.get("skipped", {}).items():
        st.warning(literal_markdown(f"{model} was skipped: {reason}."))

    st.subheader("Most recommended items")
    st.caption(f"The items most often in the final model's top-{evaluation['k']} lists of "
               "every user (the lists the audit audits), with their share of all list slots "
               "and their number of ratings.")  # fmt: skip
    st.dataframe(parts.top_items, hide_index=True, key="top_items_table")


render()
