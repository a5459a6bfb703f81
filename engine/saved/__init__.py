"""Saved analyses: an ``Analysis`` written to a folder (or zip) and opened again, verified.

``save_analysis`` writes every computed stage with a ``manifest.json`` (schema version,
tool and package versions, settings and their digest, the stage chain, every file's
SHA-256 and size); ``open_analysis`` refuses anything that does not check out, with one
``SavedAnalysisError`` sentence; ``zip_analysis`` packs a saved folder for download.
Nothing is ever unpickled: arrays are ``.npy`` read with ``allow_pickle=False``, tables
Parquet read through pyarrow against a recorded schema, the rest strict JSON.
"""

from engine.saved.errors import SavedAnalysisError
from engine.saved.manifest import SCHEMA_VERSION
from engine.saved.store import (
    MAX_BYTES,
    SavedAnalysis,
    open_analysis,
    read_saved,
    save_analysis,
    zip_analysis,
)

__all__ = [
    "MAX_BYTES",
    "SCHEMA_VERSION",
    "SavedAnalysis",
    "SavedAnalysisError",
    "open_analysis",
    "read_saved",
    "save_analysis",
    "zip_analysis",
]
