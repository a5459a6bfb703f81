"""Recommendations page: top-N with explanations, and a what-if editor (fold-in, no retraining)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption, pick_user
from engine import EngineError, charts, explain_prediction
from engine.explain import item_titles, titles_for
from engine.recommend import SOURCE_FALLBACK, recommend_for_vector
from engine.whatif import compare_ratings, with_previous_rank


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Recommendations")
    data = state.current_data()
    dataset_caption(data)
    model = state.trained_model(data)
    titles = item_titles(data)
    user_id = pick_user(data, key="recs_user")
    n = st.slider("List length", 5, 30, 10, key="list_length")

    user = int(model.interactions.user_index([user_id])[0])
    trained = model.user_vector(user)
    history = pd.DataFrame(
        {"item_id": model.interactions.item_ids[trained.items], "rating": trained.ratings}
    )
    with st.expander("What-if editor: add, change or remove this user's ratings", expanded=False):
        st.caption(
            "Edits are folded in instantly (exact refit of the user's vector, no retraining)."
        )
        edited = st.data_editor(
            history.assign(title=history["item_id"].map(titles)),
            num_rows="dynamic", hide_index=True, key=f"whatif_{user_id}",
            column_config={"rating": st.column_config.NumberColumn(
                min_value=data.scale.low, max_value=data.scale.high, step=data.scale.step)},
            disabled=["title"],
        )  # fmt: skip
    change = compare_ratings(history, edited)
    vector = model.fold_in(change.item_ids, change.ratings) if change.edited else trained
    if change.edited:
        st.info(change.describe() + " Recommendations and explanations below use the edited "
                "ratings; rank_before is each item's rank before the edit.")  # fmt: skip
    elif change.duplicates or change.incomplete_rows:
        st.info(change.describe())
        if vector.unknown_items:
            st.warning("Not known to the model, so not used: " + ", ".join(vector.unknown_items))

    recs = recommend_for_vector(model, vector, n, user_id=user_id)
    columns = ["rank", "item_id", "title", "prediction", "raw_prediction"]
    if change.edited:
        recs = with_previous_rank(recs, recommend_for_vector(model, trained, n, user_id=user_id))
        columns.insert(1, "rank_before")
    recs["title"] = titles_for(recs["item_id"], titles)
    if len(recs) and recs["source"].iat[0] == SOURCE_FALLBACK:
        st.warning("No usable rating history: these are the most popular items (a fallback), "
                   "not personal recommendations.")  # fmt: skip
    st.dataframe(recs[columns], hide_index=True, key="recs_table")

    if len(recs):
        choice = st.selectbox(
            "Explain", recs["item_id"], key="explain_item",
            format_func=lambda i: f"{titles.get(i, i)} ({i})",
        )  # fmt: skip
        shapley = st.toggle("Also compute 'what if you had not rated it' (Shapley, slower)",
                            key="shapley")  # fmt: skip
        try:
            bundle = explain_prediction(
                model, user_id, choice, data=data, vector=vector, shapley=shapley, n=n,
                factor_labels=state.labels(data, model),
            )  # fmt: skip
        except EngineError as error:
            st.error(str(error))
            st.stop()
        for note in bundle.notes:
            st.info(note)
        if bundle.factors is not None:
            gaps = max(bundle.fidelity.values())
            st.caption(f"Predicted {bundle.prediction:.3f} (shown {bundle.shown_prediction:.2f}); "
                       f"every view below adds up to it (largest gap {gaps:.1e}).")  # fmt: skip
            left, right = st.columns(2)
            left.plotly_chart(charts.factor_waterfall(bundle.factors), key="waterfall")
            right.plotly_chart(charts.history_bars(bundle.history), key="history_bars")
            if bundle.shapley is not None:
                title = "What if you had not rated it (Shapley values of refolding)"
                st.plotly_chart(
                    charts.history_bars(bundle.shapley, title=title), key="shapley_bars"
                )
            cf = bundle.counterfactual
            if cf is not None:
                if cf.found:
                    removed = ", ".join(titles.get(i, i) for i in cf.removed)
                    st.success(f"Counterfactual: {cf.message} Removed: {removed} ({cf.method}).")
                else:
                    st.info(f"Counterfactual: {cf.message}")
            a, b = st.columns(2)
            a.markdown("**Similar users who rated it**")
            a.dataframe(bundle.similar_users, hide_index=True, key="explain_users")
            b.markdown("**Your most similar rated items**")
            b.dataframe(bundle.similar_items, hide_index=True, key="explain_items")
            st.caption("Similarities: cosine of latent factors (1 = alike).")


render()
