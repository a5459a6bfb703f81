"""Explanations of predictions: latent factors, past ratings, neighbours, counterfactuals."""

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
