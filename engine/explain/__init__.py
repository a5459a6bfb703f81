"""Explanations of predictions: latent factors, past ratings, neighbours, counterfactuals.

Every name is imported on first use (PEP 562 ``__getattr__``), so importing one module of
the package (``engine.explain.titles`` for the report) does not load shap with the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import lazy_exports

if TYPE_CHECKING:
    from engine.explain.bundle import (
        ExplanationBundle,
        UnknownItemError,
        explain_prediction,
        view_to_dict,
    )
    from engine.explain.counterfactual import Counterfactual, find_counterfactual
    from engine.explain.factors import factor_explanation
    from engine.explain.faithfulness import Faithfulness, faithfulness_check, rank_agreement
    from engine.explain.history import RefoldValue, linear_history, shapley_history
    from engine.explain.labels import factor_labels, rotate, varimax
    from engine.explain.neighbours import knn_split, similar_items, similar_users
    from engine.explain.reading import (
        Coverage,
        coverage,
        history_reading,
        select_shown,
        surprising,
    )
    from engine.explain.rollup import attribute_rollup, rollup_attributes
    from engine.explain.summary import reading_summary
    from engine.explain.titles import item_titles, titles_for

#: Each public name and the module (under ``engine.explain``) that defines it.
_SOURCES: dict[str, str] = {
    "Counterfactual": "counterfactual",
    "Coverage": "reading",
    "ExplanationBundle": "bundle",
    "Faithfulness": "faithfulness",
    "RefoldValue": "history",
    "UnknownItemError": "bundle",
    "attribute_rollup": "rollup",
    "coverage": "reading",
    "explain_prediction": "bundle",
    "factor_explanation": "factors",
    "factor_labels": "labels",
    "faithfulness_check": "faithfulness",
    "find_counterfactual": "counterfactual",
    "history_reading": "reading",
    "item_titles": "titles",
    "knn_split": "neighbours",
    "linear_history": "history",
    "rank_agreement": "faithfulness",
    "reading_summary": "summary",
    "rollup_attributes": "rollup",
    "rotate": "labels",
    "select_shown": "reading",
    "shapley_history": "history",
    "similar_items": "neighbours",
    "similar_users": "neighbours",
    "surprising": "reading",
    "titles_for": "titles",
    "varimax": "labels",
    "view_to_dict": "bundle",
}

__all__ = [
    "Counterfactual",
    "Coverage",
    "ExplanationBundle",
    "Faithfulness",
    "RefoldValue",
    "UnknownItemError",
    "attribute_rollup",
    "coverage",
    "explain_prediction",
    "factor_explanation",
    "factor_labels",
    "faithfulness_check",
    "find_counterfactual",
    "history_reading",
    "item_titles",
    "knn_split",
    "linear_history",
    "rank_agreement",
    "reading_summary",
    "rollup_attributes",
    "rotate",
    "select_shown",
    "shapley_history",
    "similar_items",
    "similar_users",
    "surprising",
    "titles_for",
    "varimax",
    "view_to_dict",
]


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
