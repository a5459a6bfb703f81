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
    from engine.explain.history import RefoldValue, linear_history, shapley_history
    from engine.explain.labels import factor_labels, rotate, varimax
    from engine.explain.neighbours import knn_split, similar_items, similar_users
    from engine.explain.titles import item_titles, titles_for

#: Each public name and the module (under ``engine.explain``) that defines it.
_SOURCES: dict[str, str] = {
    "Counterfactual": "counterfactual",
    "ExplanationBundle": "bundle",
    "RefoldValue": "history",
    "UnknownItemError": "bundle",
    "explain_prediction": "bundle",
    "factor_explanation": "factors",
    "factor_labels": "labels",
    "find_counterfactual": "counterfactual",
    "item_titles": "titles",
    "knn_split": "neighbours",
    "linear_history": "history",
    "rotate": "labels",
    "shapley_history": "history",
    "similar_items": "neighbours",
    "similar_users": "neighbours",
    "titles_for": "titles",
    "varimax": "labels",
    "view_to_dict": "bundle",
}

__all__ = [
    "Counterfactual",
    "ExplanationBundle",
    "RefoldValue",
    "UnknownItemError",
    "explain_prediction",
    "factor_explanation",
    "factor_labels",
    "find_counterfactual",
    "item_titles",
    "knn_split",
    "linear_history",
    "rotate",
    "shapley_history",
    "similar_items",
    "similar_users",
    "titles_for",
    "varimax",
    "view_to_dict",
]


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
