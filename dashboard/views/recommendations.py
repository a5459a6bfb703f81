"""Recommendations page: top-N with explanations, and a what-if editor (fold-in, no retraining).

The editor, the list and the explanations are one ``st.fragment``: an edit reruns only
them, never the user picker, the data or the model. The counterfactual search refolds
the user hundreds of times, so it runs only when the analyst asks for it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption, page_failed, pick_user
from engine import EngineError, RatingData, charts, explain_prediction
from engine.explain import Counterfactual, item_titles, titles_for
from engine.model.svd import TrainedModel, UserVector
from engine.recommend import SOURCE_FALLBACK, recommend_for_vector
from engine.whatif import (
    RankChange,
    WhatIf,
    compare_rankings,
    compare_ratings,
    counterfactual_for,
    full_ranking,
    known_items,
)

TITLE = "Recommendations"


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title(TITLE)
    data = state.current_data()
    dataset_caption(data)
    state.trained_model(data)  # trains here, in a full run, never in a fragment rerun
    user_id = pick_user(data, key="recs_user")
    n = st.slider("List length", 5, 30, 10, key="list_length")
    recommendations(user_id, n)


@st.fragment
def recommendations(user_id: str, n: int) -> None:
    """Show the what-if editor, the top-``n`` and its explanations (an edit reruns only these).

    Takes ids only: a fragment keeps its arguments until the next full run, and the data
    and model belong in the session's store (which the janitor can release).
    """
    try:
        _recommendations(user_id, n)
    except Exception as error:  # a fragment rerun does not pass through app.py's handler
        page_failed(TITLE, error)


def _recommendations(user_id: str, n: int) -> None:
    data = state.current_data()
    model = state.trained_model(data)
    titles = item_titles(data)
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
            history.assign(title=titles_for(history["item_id"], titles)),
            num_rows="dynamic", hide_index=True, key=f"whatif_{user_id}",
            column_config={"rating": st.column_config.NumberColumn(
                min_value=data.scale.low, max_value=data.scale.high, step=data.scale.step)},
            disabled=["title"],
        )  # fmt: skip
    change = compare_ratings(history, edited, known_items(model), (data.scale.low, data.scale.high))
    if change.edited:
        vector = model.fold_in(change.item_ids, change.ratings)
        before = state.ranking_before_edit(user_id)
        moved = compare_rankings(before, full_ranking(model, vector, user_id), n)
        recs = moved.top
    else:
        vector, moved = trained, None
        recs = recommend_for_vector(model, trained, n, user_id=user_id)
    _what_if_summary(change, model, moved, titles, n)

    columns = ["rank", "item_id", "title", "prediction", "raw_prediction"]
    if moved is not None:
        columns.insert(1, "rank_before")
    recs = recs.assign(title=titles_for(recs["item_id"], titles))
    if len(recs) and recs["source"].iat[0] == SOURCE_FALLBACK:
        st.warning("No usable rating history: these are the most popular items (a fallback), "
                   "not personal recommendations.")  # fmt: skip
    st.dataframe(recs[columns], hide_index=True, key="recs_table")
    if len(recs):
        _explanations(data, model, user_id, vector, recs, titles, n)


def _what_if_summary(
    change: WhatIf,
    model: TrainedModel,
    moved: RankChange | None,
    titles: dict[str, str],
    n: int,
) -> None:
    """Say what the edit changed, which rows were not used and which items left the list."""
    if change.edited:
        note = (
            " Recommendations and explanations below use the edited ratings; rank_before is "
            "each item's rank before the edit (empty only for an item that was rated before "
            "the edit)."
        )
        if not model.config.refit_users:
            note += (
                " The model keeps Surprise's SGD user vectors, so both ranks come from the "
                "exact refit of the ratings and differ only by the edit."
            )
        st.info(change.describe() + note)
    elif not change.not_used.empty:
        st.info(change.describe())
    if not change.not_used.empty:
        rows = len(change.not_used)
        st.warning(f"{rows} edited row{'s' * (rows > 1)} not used; the table says why "
                   "(row: position in the editor, 1 = first).")  # fmt: skip
        shown = change.not_used.assign(row=change.not_used["row"] + 1)
        st.dataframe(shown, hide_index=True, key="whatif_not_used")
    if moved is not None and not moved.dropped.empty:
        dropped = moved.dropped.assign(title=titles_for(moved.dropped["item_id"], titles))
        k = len(dropped)
        st.markdown(f"**{k} item{'s' * (k > 1)} left the top {n} after the edit:**")
        st.dataframe(
            dropped[["item_id", "title", "rank_before", "rank_after", "reason"]],
            hide_index=True, key="whatif_dropped",
        )  # fmt: skip


def _explanations(
    data: RatingData, model: TrainedModel, user_id: str, vector: UserVector, recs: pd.DataFrame,
    titles: dict[str, str], n: int,
) -> None:  # fmt: skip
    choice = st.selectbox(
        "Explain", recs["item_id"], key="explain_item",
        format_func=lambda i: f"{titles.get(i, i)} ({i})",
    )  # fmt: skip
    shapley = st.toggle("Also compute 'what if you had not rated it' (Shapley, slower)",
                        key="shapley")  # fmt: skip
    try:
        bundle = explain_prediction(
            model, user_id, choice, data=data, vector=vector, shapley=shapley, n=n,
            factor_labels=state.labels(data, model), counterfactual=False,
        )  # fmt: skip
    except EngineError as error:
        st.error(str(error))
        return
    for note in bundle.notes:
        st.info(note)
    if bundle.factors is None:
        return
    gaps = max(bundle.fidelity.values())
    st.caption(f"Predicted {bundle.prediction:.3f} (shown {bundle.shown_prediction:.2f}); "
               f"every view below adds up to it (largest gap {gaps:.1e}).")  # fmt: skip
    left, right = st.columns(2)
    left.plotly_chart(charts.factor_waterfall(bundle.factors), key="waterfall")
    right.plotly_chart(charts.history_bars(bundle.history), key="history_bars")
    if bundle.shapley is not None:
        title = "What if you had not rated it (Shapley values of refolding)"
        st.plotly_chart(charts.history_bars(bundle.shapley, title=title), key="shapley_bars")
    _counterfactual(model, vector, (data.fingerprint, user_id, choice, n), titles)
    a, b = st.columns(2)
    a.markdown("**Similar users who rated it**")
    a.dataframe(bundle.similar_users, hide_index=True, key="explain_users")
    b.markdown("**Your most similar rated items**")
    b.dataframe(bundle.similar_items, hide_index=True, key="explain_items")
    st.caption("Similarities: cosine of latent factors (1 = alike).")


def _counterfactual(
    model: TrainedModel, vector: UserVector, about: tuple, titles: dict[str, str]
) -> None:
    """Offer the counterfactual search; show its result until the question changes.

    ``about`` is ``(dataset fingerprint, user id, item id, n)``; with the user's vector it
    identifies the question, so an edit or another item asks for a new search.
    """
    question = (*about, vector.bu, vector.pu.tobytes())
    found = st.session_state.get("recs_counterfactual")
    if found is None or found[0] != question:
        slot = st.empty()
        if not slot.button("Find a counterfactual (which ratings, removed, drop it from the "
                           "list?)", key="find_counterfactual"):  # fmt: skip
            return
        slot.empty()  # asked: the answer replaces the button
        with st.spinner("Refolding without sets of the most influential ratings..."):
            found = (question, counterfactual_for(model, vector, about[2], about[3]))
        st.session_state["recs_counterfactual"] = found
    cf: Counterfactual = found[1]
    if cf.found:
        removed = ", ".join(titles.get(i, i) for i in cf.removed)
        st.success(f"Counterfactual: {cf.message} Removed: {removed} ({cf.method}).")
    else:
        st.info(f"Counterfactual: {cf.message}")


render()
