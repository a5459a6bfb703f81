"""Model page of a run kept in Spark: its settings, held-out accuracy and most-listed items."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.components import COVERAGE_COLUMN, kept_page, mean_std_table
from engine.metrics import RANKING_METRICS
from engine.report.html import accuracy_table, relevance_sentence
from engine.text import literal_markdown

#: The held-out metrics shown, in the Model page's order.
COLUMNS = ["rmse", "mae", *RANKING_METRICS, "coverage"]


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    run = kept_page("Model")
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
        mean_std_table(parts.accuracy, COLUMNS), key="metrics_table",
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
