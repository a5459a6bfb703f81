"""Model page: settings, training with progress, accuracy and ranking metrics vs comparators."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.components import dataset_caption, run_with_progress, settings_caption
from engine import EngineError, ModelConfig
from engine.evaluate import MODEL_NAMES, EvaluationConfig
from engine.evaluation_reading import comparator_wins
from engine.metrics import RANKING_METRICS
from engine.model import PRESETS
from engine.protocols import SPLIT_NAMES, SPLITS, require_times
from engine.text import literal_markdown


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

    if not state.has_evaluation():
        st.info("Train the model to see its accuracy next to the comparators.")
        st.stop()

    result = state.evaluation()
    summary = result.summary()
    columns = ["rmse", "mae", *RANKING_METRICS, "coverage", "fit_seconds"]
    table = pd.DataFrame(
        {metric: [_mean_std(summary, m, metric) for m in summary.index] for metric in columns},
        index=summary.index,
    )
    st.subheader(f"Held-out metrics ({result.evaluation.label()}, paired)")
    st.dataframe(table, key="metrics_table")
    st.caption(literal_markdown(result.protocol))
    for sentence in comparator_wins(result.fold_metrics, result.evaluation.k):
        st.info(literal_markdown(sentence))
    st.caption(
        f"Accuracy on clipped held-out predictions (each rating predicted by a model that did "
        f"not train on it); top-N metrics at k = {result.evaluation.k} with "
        f"{result.relevance_rule}, over every item the user did not rate in the training part. "
        "Popularity ranks only (no RMSE). Definitions: engine/metrics.py."
    )
    for note in result.notes:
        st.warning(literal_markdown(note))
    if result.skipped:
        for model, reason in result.skipped.items():
            st.warning(literal_markdown(f"{model} was skipped: {reason}."))


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


def _mean_std(summary: pd.DataFrame, model: str, metric: str) -> str:
    """``mean ± std`` over folds; ``n/a`` where undefined (the page's notes say why).

    Metrics with 4 decimals, ``fit_seconds`` with 2.
    """
    if (metric, "mean") not in summary.columns or pd.isna(summary.loc[model, (metric, "mean")]):
        return "n/a"
    mean, std = summary.loc[model, (metric, "mean")], summary.loc[model, (metric, "std")]
    digits = 2 if metric == "fit_seconds" else 4
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if pd.notna(std) else f"{mean:.{digits}f} ± n/a"


render()
