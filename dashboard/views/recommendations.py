"""Recommendations page: top-N with explanations, and a what-if editor (fold-in, no retraining).

The editor, the list and the explanations are one ``st.fragment``: an edit reruns only
them, never the user picker, the data or the model. The counterfactual search refolds
the user hundreds of times, so it runs only when the analyst asks for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption, kept_page, page_failed, pick_user
from engine import EngineError, RatingData, charts, explain_prediction
from engine.explain import Counterfactual, item_titles, titles_for
from engine.explain.faithfulness import describe_agreement, faithfulness_check, rank_agreement
from engine.explain.reading import coverage, history_reading, select_shown, surprising
from engine.explain.rollup import UNKNOWN, attribute_rollup, describe_group, rollup_attributes
from engine.external import (
    MIN_R2,
    SurrogateError,
    no_explanation_reason,
    surrogate_explanation,
)
from engine.model.svd import TrainedModel, UserVector
from engine.recommend import SOURCE_FALLBACK, clipping_note, recommend_for_vector
from engine.text import literal_markdown
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
#: Bars in the "because you rated" chart (plus any counterfactual rating beyond them).
TOP_BARS = 12
SHAPLEY_HOVER = (
    "Shapley value: the prediction's average change when this rating joins the others "
    "(each subset refolded)"
)


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    if state.kept_run() is not None:  # a run kept in Spark: one user read at a time
        kept_page(TITLE)
        user_id = pick_user(state.user_ids(), key="recs_user")
        n = st.slider("List length", 5, 30, 10, key="list_length")
        recommendations(user_id, n)
        return
    st.title(TITLE)
    data = state.current_data()
    dataset_caption(data)
    state.trained_model(data)  # trains here, in a full run, never in a fragment rerun
    user_id = pick_user(state.user_ids(), key="recs_user")
    n = st.slider("List length", 5, 30, 10, key="list_length")
    recommendations(user_id, n)
    external_view(data, user_id, n)


def external_view(data: RatingData, user_id: str, n: int) -> None:
    """Show the analyst's system's list for the user beside the SVD's, and explain it.

    The list is shown whenever the system has one for the user (or scores); the surrogate
    explanation only when the systems were compared, the system gave this user enough
    scores and the surrogate matches it (``engine.external.no_explanation_reason`` says why
    not, otherwise).
    """
    systems = state.external_systems()
    if not systems:
        return
    st.subheader("Your system's list beside the SVD's")
    names = [s.name for s in systems]
    name = st.selectbox("System", names, key="surrogate_system")
    system = next(s for s in systems if s.name == name)
    titles = item_titles(data)
    model = state.trained_model(data)
    user = int(model.interactions.user_index([user_id])[0])
    svd = recommend_for_vector(model, model.user_vector(user), n, user_id=user_id)
    left, right = st.columns(2)
    left.markdown("**SVD (built-in)**")
    left.dataframe(
        svd.assign(title=titles_for(svd["item_id"], titles))[["rank", "title", "prediction"]],
        hide_index=True, key="external_svd_list",
    )  # fmt: skip
    right.markdown(f"**{literal_markdown(name)}**")
    shown = system.top_for(user_id, n)
    shown = shown.assign(title=titles_for(shown["item_id"], titles))[
        ["rank", "title", "score", "item_id"]
    ]
    if shown.empty:
        right.caption(literal_markdown(f"{name} has no list and no score for this user."))
    else:
        right.dataframe(shown, hide_index=True, key="external_list")
    comparison = state.systems_comparison()
    if comparison is None:
        st.info("To explain this list through a surrogate, compare the systems on the Bias "
                "audit page (systems with scores only).")  # fmt: skip
        return
    surrogate = comparison.surrogates.get(name)
    reason = no_explanation_reason(system, surrogate, user_id)
    if reason is not None:
        st.warning(literal_markdown(reason))
        return
    st.caption(literal_markdown(
        f"The surrogate is the built-in SVD's ridge user side (trained on the ratings before "
        f"the cut) fitted to {name}'s scores for this user: it explains the surrogate, not "
        f"{name} itself, and only where it matches {name} (R^2 >= {MIN_R2:g}). Overall R^2 "
        f"= {surrogate.overall_r2:.2f}."
    ))  # fmt: skip
    st.success(literal_markdown(surrogate.label(user_id)))
    if shown.empty:
        return
    item = st.selectbox("Why this item (through the surrogate)?", shown["item_id"].tolist(),
                        format_func=lambda i: titles.get(i, i), key="surrogate_item")  # fmt: skip
    try:
        explanation, label = surrogate_explanation(surrogate, comparison.model, user_id, item)
    except SurrogateError as error:
        st.info(literal_markdown(error))
        return
    if explanation is not None:
        st.plotly_chart(charts.factor_waterfall(explanation), key="surrogate_waterfall")
        st.caption(literal_markdown(label))


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
    data, model = state.user_model(user_id)
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
    clipped = clipping_note(recs, (data.scale.low, data.scale.high), len(vector.items))
    if clipped:
        st.caption(clipped)
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
    item = int(model.interactions.item_index([choice])[0])
    gaps = max(bundle.fidelity.values())
    st.caption(f"Predicted {bundle.prediction:.3f} (shown {bundle.shown_prediction:.2f}); "
               f"every view below adds up to it (largest gap {gaps:.1e}).")  # fmt: skip
    charts_area = st.container()  # filled after the counterfactual, whose ratings it marks
    cf = _counterfactual(model, vector, (data.fingerprint, user_id, choice, n), titles)
    reading = history_reading(model, vector, item, titles)
    highlight = cf.removed if cf is not None and cf.found else []
    with charts_area:
        left, right = st.columns(2)
        left.plotly_chart(charts.factor_waterfall(bundle.factors), key="waterfall")
        right.plotly_chart(
            charts.history_bars(bundle.history, top=TOP_BARS, reading=reading,
                                highlight=highlight),
            key="history_bars",
        )  # fmt: skip
        shown = select_shown(
            reading["contribution"].to_numpy(), TOP_BARS,
            np.flatnonzero(reading["item_id"].isin(highlight)),
        )  # fmt: skip
        right.caption(coverage(reading["contribution"].to_numpy(), shown).describe())
        against = surprising(reading, shown)
        if against:
            right.caption(
                "Bars that push against their rating: "
                + " ".join(literal_markdown(line) for line in against)
            )
        st.caption(
            "Each bar is weight x residual: the residual is your rating minus what the model "
            "expects from an average user; the weight says whether, in your fitted taste, the "
            "rated item is like (+) or unlike (-) this one. Hover a bar for its reading."
        )
        st.caption(
            f"Two starting points, one prediction: the factor chart starts at the average "
            f"user's prediction for this item ({float(bundle.factors.base_values):.3f}), the "
            f"history chart at the prediction with no ratings at all "
            f"({float(bundle.history.base_values):.3f} = mu + b_i); both end at "
            f"{bundle.prediction:.3f}."
        )
        with st.expander("Read each bar (rating, expected, residual, weight, direction)"):
            st.dataframe(
                reading.iloc[shown][["title", "rating", "expected", "residual", "weight",
                                     "contribution", "direction"]],
                hide_index=True, key="explain_reading",
            )  # fmt: skip
        _rollup(data, reading)
        _faithfulness(model, vector, item, reading, titles)
        if bundle.shapley is not None:
            title = "What if you had not rated it (Shapley values of refolding)"
            shapley_reading = reading.assign(direction=SHAPLEY_HOVER)
            st.plotly_chart(
                charts.history_bars(bundle.shapley, TOP_BARS, title, reading=shapley_reading),
                key="shapley_bars",
            )
            rho = rank_agreement(reading["contribution"].to_numpy(), bundle.shapley.values)
            st.caption(describe_agreement(rho, len(reading)))
    a, b = st.columns(2)
    a.markdown("**Similar users who rated it**")
    a.dataframe(bundle.similar_users, hide_index=True, key="explain_users")
    b.markdown("**Your most similar rated items**")
    b.dataframe(bundle.similar_items, hide_index=True, key="explain_items")
    st.caption("Similarities: cosine of latent factors (1 = alike).")


def _rollup(data: RatingData, reading: pd.DataFrame) -> None:
    """Show the exact split summed by an item attribute the analyst picks."""
    attributes = rollup_attributes(data.items)
    if not attributes:
        return
    attribute = st.selectbox("Sum the history effect by", attributes, key="explain_rollup")
    table = attribute_rollup(reading["item_id"], reading["contribution"], data.items, attribute)
    if len(table):
        top = table.iloc[0]
        st.markdown(
            f"By {literal_markdown(attribute)}: {literal_markdown(describe_group(top, attribute))}"
            f" (of {reading['contribution'].sum():+.3f} in all; an item in several genres "
            "counts an equal share in each, items without the attribute are "
            f"'{literal_markdown(UNKNOWN)}')."
        )
    st.dataframe(table, hide_index=True, key="explain_rollup_table")


def _faithfulness(
    model: TrainedModel, vector: UserVector, item: int, reading: pd.DataFrame,
    titles: dict[str, str],
) -> None:  # fmt: skip
    """Remove the 3 most credited ratings (and 3 random ones), refold, show the change."""
    check = faithfulness_check(model, vector, item, reading["contribution"].to_numpy())
    removed = ", ".join(literal_markdown(titles.get(i, i)) for i in check.top.removed)
    st.markdown(
        f"**Faithfulness check:** {literal_markdown(check.describe())}"
        + (f" Removed: {removed}." if removed else "")
    )


def _counterfactual(
    model: TrainedModel, vector: UserVector, about: tuple, titles: dict[str, str]
) -> Counterfactual | None:
    """Offer the counterfactual search; show its result until the question changes.

    ``about`` is ``(dataset fingerprint, user id, item id, n)``; with the user's vector it
    identifies the question, so an edit or another item asks for a new search. Returns
    the result (``None`` until asked), so the history chart can mark its ratings.
    """
    question = (*about, vector.bu, vector.pu.tobytes())
    found = st.session_state.get("recs_counterfactual")
    if found is None or found[0] != question:
        slot = st.empty()
        if not slot.button("Find a counterfactual (which ratings, removed, drop it from the "
                           "list?)", key="find_counterfactual"):  # fmt: skip
            return None
        slot.empty()  # asked: the answer replaces the button
        with st.spinner("Refolding without sets of the most influential ratings..."):
            found = (question, counterfactual_for(model, vector, about[2], about[3]))
        st.session_state["recs_counterfactual"] = found
    cf: Counterfactual = found[1]
    if cf.found:
        removed = ", ".join(literal_markdown(titles.get(i, i)) for i in cf.removed)
        st.success(f"Counterfactual: {literal_markdown(cf.message)} Removed: {removed}. "
                   f"Search: {cf.method}. Marked ★ in the chart above.")  # fmt: skip
    else:
        st.info(f"Counterfactual: {literal_markdown(cf.message)}")
    return cf


render()
