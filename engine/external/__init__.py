"""Audit the recommender the analyst already runs: its top-N lists and rating predictions.

``load_lists`` / ``load_predictions`` read the system's outputs with a load report
(``engine.external.load``); ``temporal_heldout`` / ``heldout_from_file`` say which ratings
judge them (``engine.external.heldout``); ``audit_system`` audits one system with the
built-in audit (``engine.external.audit``); ``compare_systems`` puts every system (external,
built-in SVD, popularity) side by side on the same users and held-out ratings
(``engine.external.systems``); ``compare_pair`` is the paired comparison of two of them per
user group (``engine.external.paired``); ``fit_surrogate`` explains a system through a
surrogate in the SVD's item-factor space, with its fidelity (``engine.external.surrogate``).
"""

from engine.external.audit import SystemAudit, audit_system
from engine.external.heldout import HeldOut, heldout_from_file, temporal_heldout
from engine.external.load import load_lists, load_predictions, merge_systems
from engine.external.paired import compare_pair, pair_sentences, paired_display, with_pairs
from engine.external.surrogate import (
    MIN_R2,
    Surrogate,
    SurrogateError,
    fit_surrogate,
    no_explanation_reason,
    surrogate_explanation,
)
from engine.external.systems import (
    BUILT_IN_POPULARITY,
    BUILT_IN_SVD,
    SystemsComparison,
    compare_systems,
)
from engine.external.types import EXTERNAL_REJECT_REASONS, ExternalLoadReport, ExternalSystem

__all__ = [
    "BUILT_IN_POPULARITY",
    "BUILT_IN_SVD",
    "EXTERNAL_REJECT_REASONS",
    "MIN_R2",
    "ExternalLoadReport",
    "ExternalSystem",
    "HeldOut",
    "Surrogate",
    "SurrogateError",
    "SystemAudit",
    "SystemsComparison",
    "audit_system",
    "compare_pair",
    "compare_systems",
    "fit_surrogate",
    "heldout_from_file",
    "load_lists",
    "load_predictions",
    "merge_systems",
    "no_explanation_reason",
    "pair_sentences",
    "paired_display",
    "surrogate_explanation",
    "temporal_heldout",
    "with_pairs",
]
