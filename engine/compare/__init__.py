"""Version comparison (offline A/B): two models scored on the same future window."""

from engine.compare.groups import KNOWN_TO, NEW_TO_A
from engine.compare.paired import paired_bootstrap_ci, paired_difference, paired_permutation_p
from engine.compare.rows import ROW_COLUMNS, VERDICTS
from engine.compare.run import (
    KNOWN_OVERALL,
    OVERALL,
    CompareError,
    Comparison,
    compare_models,
    compare_versions,
    fallback_sentence,
    population_sentence,
    summary_sentences,
)

__all__ = [
    "KNOWN_OVERALL", "KNOWN_TO", "NEW_TO_A", "OVERALL", "ROW_COLUMNS", "VERDICTS",
    "CompareError", "Comparison",
    "compare_models", "compare_versions", "fallback_sentence",
    "paired_bootstrap_ci",
    "paired_difference", "paired_permutation_p", "population_sentence",
    "summary_sentences",
]  # fmt: skip
