"""Model page: settings, training with progress, accuracy and ranking metrics vs comparators."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import (
    COVERAGE_COLUMN,
    dataset_caption,
    mean_std_table,
    reading_options,
    run_with_progress,
    settings_caption,
)
from engine import (
    ColumnMapping,
    DataFile,
    EngineError,
    LoadOptions,
    ModelConfig,
    RatingData,
    load_dataset,
)
from engine.data import REJECT_REASONS, preview_ratings
from engine.evaluate import MODEL_NAMES, EvaluationConfig
from engine.evaluation_reading import comparator_wins
from engine.explain.titles import item_titles, titles_for
from engine.metrics import RANKING_METRICS
from engine.model import PRESETS
from engine.protocols import SPLIT_NAMES, SPLITS, require_times
from engine.text import literal_markdown
from engine.update import UpdateRecord, update_analysis


def render() -> None:
    """Lay out the page; its objects die with the run (see ``dashboard.janitor``)."""
    st.title("Model")
    data = state.current_data()
    dataset_caption(data)

    settings = state.settings()
    current = settings.model
    preset = st.radio(
        "Preset", [*PRESETS, "custom"], horizontal=True, key="preset",
        index=[*PRESETS, "custom"].index(current.preset if current.preset in PRESETS else "custom"),
        help="default: Surprise's SVD defaults + exact refit; tuned: grid-searched on ml-100k.",
    )  # fmt: skip
    base = PRESETS.get(preset, current)
    with st.expander("Advanced settings", expanded=preset == "custom"):
        c1, c2, c3 = st.columns(3)
        fields = {
            "n_factors": c1.number_input("Factors", 1, 500, base.n_factors, key="n_factors"),
            "n_epochs": c2.number_input("Epochs", 1, 500, base.n_epochs, key="n_epochs"),
            "lr_all": c3.number_input("Learning rate", 0.0001, 1.0, base.lr_all, format="%.4f",
                                      key="lr_all"),
            "reg_all": c1.number_input("Regularisation", 0.0, 10.0, base.reg_all, format="%.3f",
                                       key="reg_all"),
            "refit_users": c2.checkbox("Exact user refit", base.refit_users, key="refit_users"),
            "refit_lambda": c3.number_input("Refit lambda", 0.001, 10.0, base.refit_lambda,
                                            format="%.3f", key="refit_lambda"),
            "seed": c1.number_input("Seed", 0, 2**31 - 1, base.seed, key="seed"),
        }  # fmt: skip
    try:
        config = ModelConfig.from_preset(preset if preset in PRESETS else "default", **fields)
    except EngineError as error:
        st.error(literal_markdown(error))
        st.stop()
    comparators = st.multiselect(
        "Compared with", [m for m in MODEL_NAMES if m != "SVD"],
        default=[m for m in settings.evaluation.models if m != "SVD"], key="comparators",
        help="Evaluated on the same folds as the SVD. KNNBaseline is off by default: its "
        "item-item similarity and all-items top-N scoring take the longest.",
    )  # fmt: skip
    models = ("SVD", *comparators)
    protocol = _protocol_choice(settings.evaluation)
    try:
        require_times(data.ratings, protocol["split"], data.name)
        evaluation = replace(settings.evaluation, models=models, **protocol)
    except EngineError as error:
        st.error(literal_markdown(error))
        st.stop()
    new = replace(settings, model=config, evaluation=evaluation)
    state.set_settings(new)
    st.caption(settings_caption(new))

    if st.button(f"Train and evaluate ({evaluation.label()}, SVD and comparators)", key="train",
                 type="primary"):  # fmt: skip
        run_with_progress(
            "Training and evaluating...",
            lambda progress: (state.trained_model(), state.evaluation(progress=progress)),
        )

    if state.has_evaluation():
        _evaluation_section()
    else:
        st.info("Train the model to see its accuracy next to the comparators.")
    _update_section(data)


def _evaluation_section() -> None:
    """Show the held-out metrics of every model, the protocol and the comparators' wins."""
    result = state.evaluation()
    columns = ["rmse", "mae", *RANKING_METRICS, "coverage", "fit_seconds"]
    tidy = result.summary().stack(level=0, future_stack=True).reset_index()
    table = mean_std_table(tidy, columns)
    st.subheader(f"Held-out metrics, {result.evaluation.label()}, paired")
    st.dataframe(
        table, key="metrics_table",
        column_config={"coverage": COVERAGE_COLUMN},
    )  # fmt: skip
    st.caption(literal_markdown(result.protocol))
    for sentence in comparator_wins(result.fold_metrics, result.evaluation.k):
        st.info(literal_markdown(sentence))
    st.caption(
        f"Accuracy on clipped held-out predictions (each rating predicted by a model that did "
        f"not train on it); top-N metrics at k = {result.evaluation.k} with "
        f"{result.relevance_rule}, over every item the user did not rate in the training part. "
        "Popularity ranks only (no RMSE). Coverage here is of the held-out lists (users with "
        "a relevant test rating), not the Bias audit's coverage of every user's final list. "
        "Definitions: engine/metrics.py."
    )
    for note in result.notes:
        st.warning(literal_markdown(note))
    if result.skipped:
        for model, reason in result.skipped.items():
            st.warning(literal_markdown(f"{model} was skipped: {reason}."))


def _update_section(data: RatingData) -> None:
    """Add a batch of new ratings to the session's model without retraining (engine.update)."""
    st.subheader("Update with new ratings")
    st.markdown(
        "Add a batch of new ratings without retraining (as `python -m engine update`): every "
        "user with a new rating is refit exactly on their whole history, new users are folded "
        "in, and a rating of a pair already rated replaces the old one. The item side is kept "
        "as trained unless touched items are refreshed. The file is read like an upload on the "
        f"Data page and checked against this dataset's scale ({data.scale.describe()})."
    )
    record = state.last_update()
    if record is not None:
        _update_record(record, data)
    chosen = _batch_upload(data)
    refresh = st.checkbox(
        "Refresh touched items", key="update_refresh_items",
        help="Give every item with a new rating a new bias and factors (ridge step with the "
        "users fixed), then refit their users once more. Slower, usually more accurate.",
    )  # fmt: skip
    if chosen is None or not st.button("Update the model", key="run_update", type="primary"):
        return
    upload, mapping, options = chosen
    try:
        with st.spinner("Loading and validating the new ratings..."):
            batch = load_dataset(ratings=upload, mapping=mapping, options=options, batch=True)
    except EngineError as error:
        st.error(literal_markdown(error))
        return

    def work(progress) -> None:
        progress(0.0, "training the model on the current data (once)")
        state.trained_model()
        progress(0.5, "merging the batch and refitting touched users")
        updated, update = update_analysis(state.analysis(), batch, refresh_items=refresh)
        state.adopt_update(updated, update)

    run_with_progress("Updating the model with the new ratings...", work)
    st.rerun()


def _batch_upload(data: RatingData) -> tuple[DataFile, ColumnMapping | None, LoadOptions] | None:
    """Upload and map a batch of new ratings; return what to load it with, else ``None``."""
    options = reading_options("update", scale=(data.scale.low, data.scale.high))
    file = st.file_uploader("New ratings", key="update_ratings")
    if file is None or options is None:
        return None
    upload = DataFile(file.name, file.getvalue())
    try:
        preview = preview_ratings(upload, options)
    except EngineError as error:
        st.error(literal_markdown(error))
        return None
    mapping = None
    if not preview.archive:
        st.markdown("**Columns** (detected choice pre-selected)")
        chosen = {}
        for col, name in zip(st.columns(4), ("user", "item", "rating", "timestamp"), strict=True):
            choices = ["(none)", *preview.columns] if name == "timestamp" else preview.columns
            default = preview.detected.get(name, choices[0])
            chosen[name] = col.selectbox(
                name, choices, index=choices.index(default), key=f"update_map_{name}"
            )
        mapping = ColumnMapping(**{f: c for f, c in chosen.items() if c != "(none)"})
    return upload, mapping, options


def _update_record(record: UpdateRecord, data: RatingData) -> None:
    """Show what the last update changed: counts, rejected rows, largest prediction changes."""
    refreshed = "touched items refreshed" if record.refresh_items else "item side kept"
    st.success(literal_markdown(
        f"Updated with {record.batch['name']} ({refreshed}, {record.seconds['total']:.2f} s, "
        "no retraining): every page now uses the updated model."
    ))  # fmt: skip
    counts = {
        "Ratings added": record.ratings_added,
        "Ratings replaced": record.ratings_replaced,
        "Rows rejected": record.ratings_rejected,
        "Users refit": record.users_refit,
        "New users": record.new_users,
        "Users refit for refreshed items": record.users_refit_for_items,
        "Items refreshed": record.items_refreshed,
        "New items without an item side": record.new_items_without_item_side,
    }
    for col, (label, value) in zip(st.columns(4) + st.columns(4), counts.items(), strict=True):
        col.metric(label, f"{value:,}")
    st.caption(
        f"{record.ratings_replaced_changed:,} of the replaced ratings changed value; "
        f"{record.items_touched:,} items have a new rating, {record.new_items:,} of them new "
        "to the model."
    )
    if record.batch["rejected"]:
        st.dataframe(
            pd.DataFrame({"reason": [REJECT_REASONS[r] for r in record.batch["rejected"]],
                          "rows": list(record.batch["rejected"].values())}),
            hide_index=True, key="update_rejected",
        )  # fmt: skip
    st.info(
        "The evaluation and the audit are not carried over: they rest on the old data, and "
        "are recomputed on demand for the new data (Train and evaluate above, Run the audit "
        "on the Bias audit page). The evaluation is then a K-fold retrain on the merged data: "
        "it measures the method, not this updated model."
    )
    if record.largest_changes:
        changes = pd.DataFrame(record.largest_changes)
        changes.insert(2, "title", titles_for(changes["item_id"], item_titles(data)))
        st.markdown("**Largest prediction changes** (one row per touched existing user)")
        st.dataframe(changes, hide_index=True, key="update_changes")
        st.caption(
            f"Unclipped predictions before and after, over the items the old model knew; the "
            f"largest change is {record.max_abs_change:.3f}, the median of each user's largest "
            f"{record.median_abs_change:.3f}."
        )
    for note in record.notes:
        st.caption(literal_markdown(note))


def _protocol_choice(current: EvaluationConfig) -> dict[str, object]:
    """Lay out the protocol selector and its parameters; return them for ``EvaluationConfig``."""
    c1, c2 = st.columns(2)
    split = c1.selectbox(
        "Evaluation protocol", SPLITS, index=SPLITS.index(current.split), key="split",
        format_func=SPLIT_NAMES.__getitem__,
        help="K-fold ignores time; the others never train on a rating later than their cut "
        "and need timestamps. Definitions: engine/protocols.py.",
    )  # fmt: skip
    chosen: dict[str, object] = {"split": split}
    if split in ("temporal", "rolling"):
        chosen["test_share"] = c2.slider(
            "Share of the time span tested", 0.05, 0.5, float(current.test_share), step=0.05,
            key="test_share",
        )  # fmt: skip
    if split == "last-n":
        chosen["last_n"] = int(c2.number_input(
            "Latest ratings tested per user", 1, 100, current.last_n, key="last_n"
        ))  # fmt: skip
    if split == "rolling":
        chosen["windows"] = int(
            c2.number_input("Windows", 1, 20, current.windows, key="windows")
        )  # fmt: skip
    return chosen


render()
