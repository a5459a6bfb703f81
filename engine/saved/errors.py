"""The one exception a saved analysis is refused with, and how its sentences are built."""

from __future__ import annotations

from engine.errors import EngineError

#: What to do about a saved analysis that is refused (the end of most refusals).
FIX = "open the original data, compute the analysis and save it again"


class SavedAnalysisError(EngineError):
    """A saved analysis that cannot be written or opened: missing, corrupted, tampered, newer."""


def refuse(file: object, problem: str, fix: str = FIX) -> SavedAnalysisError:
    """Return ``SavedAnalysisError("<file> <problem>: <fix>.")``."""
    return SavedAnalysisError(f"{file} {problem}: {fix}.")
