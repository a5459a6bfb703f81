"""Explainable recommendation analytics engine (no UI code)."""

from engine import charts
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

__all__ = [
    "REJECT_REASONS",
    "ColumnMapping",
    "ConfigError",
    "DataError",
    "DataFile",
    "DatasetProfile",
    "EngineError",
    "LoadOptions",
    "LoadReport",
    "RatingData",
    "charts",
    "dataset_profile",
    "load_dataset",
]
