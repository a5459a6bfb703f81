"""Data layer: load what the analyst has into a validated ``RatingData``."""

from engine.data.describe import delimiter_name, files_table, rejected_table
from engine.data.load import RatingsPreview, load_dataset, preview_ratings
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
    "RatingsPreview",
    "dataset_profile",
    "delimiter_name",
    "files_table",
    "load_dataset",
    "preview_ratings",
    "rejected_table",
]
