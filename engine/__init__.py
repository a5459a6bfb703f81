"""Explainable recommendation analytics engine (no UI code).

The main entry points, in the order data flows through them: ``load_dataset`` ->
``train`` / ``evaluate`` -> ``recommend`` -> ``explain_prediction`` -> ``run_audit``.
"""

from engine import charts
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
from engine.explain import ExplanationBundle, explain_prediction
from engine.model import ModelConfig, TrainedModel, train
from engine.recommend import recommend, recommend_all

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
