"""Explainable recommendation analytics engine (no UI code).

The main entry points, in the order data flows through them: ``load_dataset`` ->
``train`` / ``evaluate`` -> ``recommend`` -> ``explain_prediction`` -> ``run_audit``.

``charts``, ``ExplanationBundle`` and ``explain_prediction`` are imported on first use
(PEP 562 ``__getattr__``): they load shap (with scikit-learn and numba, about 1.8 s on
the development machine), which loading, training, evaluating and auditing do not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from engine.audit import AuditConfig, AuditResult, run_audit
from engine.data import (
    REJECT_REASONS,
    ColumnMapping,
    DataFile,
    DatasetProfile,
    LoadOptions,
    LoadReport,
    RatingData,
    dataset_profile,
    load_dataset,
)
from engine.errors import ConfigError, DataError, EngineError
from engine.evaluate import Evaluation, EvaluationConfig, evaluate
from engine.model import ModelConfig, TrainedModel, train
from engine.recommend import recommend, recommend_all

if TYPE_CHECKING:
    from engine import charts
    from engine.explain import ExplanationBundle, explain_prediction

#: Names imported on first use, and the module each comes from.
_LAZY: dict[str, str] = {
    "charts": "engine",
    "ExplanationBundle": "engine.explain",
    "explain_prediction": "engine.explain",
}

__all__ = [
    "REJECT_REASONS",
    "AuditConfig",
    "AuditResult",
    "ColumnMapping",
    "ConfigError",
    "DataError",
    "DataFile",
    "DatasetProfile",
    "EngineError",
    "Evaluation",
    "EvaluationConfig",
    "ExplanationBundle",
    "LoadOptions",
    "LoadReport",
    "ModelConfig",
    "RatingData",
    "TrainedModel",
    "charts",
    "dataset_profile",
    "evaluate",
    "explain_prediction",
    "load_dataset",
    "recommend",
    "recommend_all",
    "run_audit",
    "train",
]


def __getattr__(name: str) -> Any:
    """Import one of the ``_LAZY`` names on first use and keep it in the module."""
    if name not in _LAZY:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    source = _LAZY[name]
    value = (
        importlib.import_module(f"engine.{name}")
        if source == "engine"
        else getattr(importlib.import_module(source), name)
    )
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
