"""Per-session data, models and results (no layout, no maths).

Everything an analyst loads or computes lives in the session's ``SessionStore`` (in
``st.session_state``), keyed by the dataset fingerprint and the configuration, so one
browser session never sees another's upload (``st.cache_*`` would share results across
sessions). Only the bundled synthetic sample, which holds no user data, is cached for all
sessions. ``dashboard.janitor`` releases the stores of closed sessions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from dashboard import janitor
from engine import (
    AuditConfig,
    AuditResult,
    DatasetProfile,
    Evaluation,
    EvaluationConfig,
    ModelConfig,
    RatingData,
    TrainedModel,
    dataset_profile,
    evaluate,
    load_dataset,
    run_audit,
    train,
)
from engine.explain import factor_labels, item_titles
from engine.report import Report, build_report, render
from engine.report.write import zip_files

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
T = TypeVar("T")


@st.cache_resource(show_spinner="Loading the sample dataset...")
def sample_dataset() -> RatingData:
    """Load the bundled synthetic sample (shared by all sessions: it holds no user data)."""
    return load_dataset(SAMPLE_DIR)


@dataclass
class SessionStore:
    """What one browser session loaded (``data``; ``None`` = the sample) and computed."""

    data: RatingData | None = None
    results: dict[tuple, Any] = field(default_factory=dict)

    def release(self) -> None:
        """Drop the upload and every result (the janitor calls this for closed sessions)."""
        self.data, self.results = None, {}


def _store() -> SessionStore:
    store = st.session_state.get("store")
    if store is None:
        store = st.session_state["store"] = SessionStore()
    janitor.track(store)
    return store


def current_data() -> RatingData:
    """Return the session's dataset: the analyst's upload, else the sample."""
    return _store().data or sample_dataset()


def has_upload() -> bool:
    """Whether the session works on an upload rather than the sample."""
    return _store().data is not None


def set_data(data: RatingData | None) -> None:
    """Make ``data`` (``None``: the sample) the session's dataset; drop earlier results."""
    store = _store()
    store.data, store.results = data, {}


def _memo(key: tuple, compute: Callable[[], T]) -> T:
    results = _store().results
    if key not in results:
        results[key] = compute()
    return results[key]


def model_config() -> ModelConfig:
    """Return the session's model settings (the Model page changes them)."""
    return st.session_state.get("model_config", ModelConfig())


def trained_model(data: RatingData, config: ModelConfig | None = None) -> TrainedModel:
    """Return the SVD trained on ``data`` with ``config`` (trained once per session)."""
    config = config or model_config()
    return _memo(("model", data.fingerprint, config), lambda: train(data, config))


def evaluation(
    data: RatingData,
    config: ModelConfig | None = None,
    settings: EvaluationConfig | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Evaluation:
    """Return the K-fold evaluation of SVD and the comparators (once per session)."""
    config, settings = config or model_config(), settings or EvaluationConfig()
    return _memo(
        _evaluation_key(data, config, settings),
        lambda: evaluate(data, config, settings, progress=progress),
    )


def has_evaluation(data: RatingData) -> bool:
    """Whether this session already evaluated the current model settings."""
    key = _evaluation_key(data, model_config(), EvaluationConfig())
    return key in _store().results


def _evaluation_key(data: RatingData, config: ModelConfig, settings: EvaluationConfig) -> tuple:
    return ("evaluation", data.fingerprint, config, settings)


def audit(
    data: RatingData, config: AuditConfig, progress: Callable[[float, str], None] | None = None
) -> AuditResult:
    """Return the audit of the session's model with ``config`` (once per session)."""
    model = trained_model(data)
    result = evaluation(data, progress=progress)
    return _memo(
        ("audit", data.fingerprint, model_config(), config),
        lambda: run_audit(data, model, result, config, progress=progress),
    )


def last_audit() -> tuple[AuditResult, RatingData] | None:
    """Return the most recent audit of the current dataset in this session, if any."""
    data = current_data()
    for key, value in reversed(_store().results.items()):
        if key[0] == "audit" and key[1] == data.fingerprint:
            return value, data
    return None


def report(data: RatingData, result: AuditResult, sections: tuple[str, ...]) -> Report:
    """Return the fairness report of ``result`` showing ``sections`` (once per session)."""
    model, evaluated = trained_model(data), evaluation(data)
    return _memo(
        ("report", data.fingerprint, model_config(), result.config, sections),
        lambda: build_report(data, model, evaluated, result, sections),
    )


def report_files(
    data: RatingData, result: AuditResult, sections: tuple[str, ...], formats: tuple[str, ...]
) -> dict[str, bytes]:
    """Return ``{file name: bytes}`` of the report in ``formats`` (rendered once per session)."""
    key = _report_files_key(data, result, sections, formats)
    return _memo(key, lambda: render(report(data, result, sections), formats))


def report_zip(
    data: RatingData, result: AuditResult, sections: tuple[str, ...], files: dict[str, bytes]
) -> bytes:
    """Return the zip of the rendered ``files`` (built once per session and file set)."""
    key = ("report zip", data.fingerprint, model_config(), result.config, sections, tuple(files))
    return _memo(key, lambda: zip_files(files))


def rendered_report_files(
    data: RatingData, result: AuditResult, sections: tuple[str, ...], formats: tuple[str, ...]
) -> dict[str, bytes] | None:
    """Return what ``report_files`` already rendered for these arguments, else ``None``."""
    key = _report_files_key(data, result, sections, formats)
    return _store().results.get(key)


def _report_files_key(
    data: RatingData, result: AuditResult, sections: tuple[str, ...], formats: tuple[str, ...]
) -> tuple:
    return ("report files", data.fingerprint, model_config(), result.config, sections, formats)


def profile(data: RatingData) -> DatasetProfile:
    """Return the dataset profile (once per session and dataset)."""
    return _memo(("profile", data.fingerprint), lambda: dataset_profile(data))


def labels(data: RatingData, model: TrainedModel) -> list[str]:
    """Return the factor labels of the session's model."""
    return _memo(
        ("labels", data.fingerprint, model.config),
        lambda: list(factor_labels(model, data.items, item_titles(data))["label"]),
    )
