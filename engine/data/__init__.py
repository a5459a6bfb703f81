"""Data layer: load what the analyst has into a validated ``RatingData``."""

from engine.data.load import load_dataset
from engine.data.profile import DatasetProfile, dataset_profile
from engine.data.types import (
    REJECT_REASONS,
    ColumnMapping,
    DataFile,
    FileReport,
    LoadOptions,
    LoadReport,
    RatingData,
    RatingScale,
)

__all__ = [
    "REJECT_REASONS",
    "ColumnMapping",
    "DataFile",
    "DatasetProfile",
    "FileReport",
    "LoadOptions",
    "LoadReport",
    "RatingData",
    "RatingScale",
    "dataset_profile",
    "load_dataset",
]
