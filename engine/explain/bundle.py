"""One call that explains a (user, item) prediction in every view, as plain objects.

Each additive view is a ``shap.Explanation`` whose ``base_values + values.sum()`` equals
the same unclipped prediction; ``fidelity`` records the gap of each (should be ~1e-15).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.data.types import RatingData
from engine.errors import EngineError
from engine.explain.counterfactual import Counterfactual, check_list_length, find_counterfactual
from engine.explain.factors import factor_explanation
from engine.explain.history import (
    DEFAULT_PERMUTATIONS,
    check_permutations,
    linear_history,
    shapley_history,
)
from engine.explain.neighbours import NO_KNN_NEIGHBOUR, knn_split, similar_items, similar_users
from engine.explain.titles import item_titles
from engine.model.comparators import KNNBaselineModel
from engine.model.svd import TrainedModel, UserVector, clip_to_scale
from engine.recommend import SOURCE_FALLBACK, UnknownUserError

if TYPE_CHECKING:  # shap takes ~2 s to import: loaded where first used
    import shap


class UnknownItemError(EngineError):
    """An item id the model was not trained on."""


@dataclass(frozen=True)
class ExplanationBundle:
    """Every view of one prediction.

    Attributes
    ----------
    prediction
        Unclipped prediction every additive view sums to.
    shown_prediction
        The prediction clipped to the rating scale (what a user is shown).
    factors, history
        Latent-factor SHAP view and exact split over the user's ratings.
    shapley
        Presence/absence Shapley values of the ratings, when requested.
    knn
        ``KNNBaseline``'s exact split, when a KNN model is given (possibly with no terms:
        then ``knn_reason`` says why and the prediction is the baseline ``b_ui``).
    similar_users, similar_items
        Neighbour tables (see ``engine.explain.neighbours``).
    notes
        Sentences the analyst must see (already rated, fallback, no refit, a KNN split
        without neighbours...).
    knn_reason
        Why the ``knn`` view has no neighbour term, else ``None``.
    """

    user_id: str
    item_id: str
    title: str | None
    prediction: float
    shown_prediction: float
    factors: shap.Explanation | None
    history: shap.Explanation | None
    shapley: shap.Explanation | None
    knn: shap.Explanation | None
    similar_users: pd.DataFrame
    similar_items: pd.DataFrame
    counterfactual: Counterfactual | None
    notes: list[str] = field(default_factory=list)
    fidelity: dict[str, float] = field(default_factory=dict)
    source: str = "model"
    knn_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: each additive view as ``{base_value, values, prediction}``.

        The ``knn`` view also carries ``reason`` (``None`` unless it has no terms).
        """
        views = {
            name: view_to_dict(view)
            for name, view in (("factors", self.factors), ("history", self.history),
                               ("shapley", self.shapley), ("knn", self.knn))
            if view is not None
        }  # fmt: skip
        if "knn" in views:
            views["knn"]["reason"] = self.knn_reason
        return {
            "user_id": self.user_id,
            "item_id": self.item_id,
            "title": self.title,
            "source": self.source,
            "prediction": self.prediction,
            "shown_prediction": self.shown_prediction,
            **views,
            "similar_users": self.similar_users.to_dict(orient="records"),
            "similar_items": self.similar_items.to_dict(orient="records"),
            "counterfactual": None if self.counterfactual is None else self.counterfactual.__dict__,
            "fidelity": self.fidelity,
            "notes": self.notes,
        }


def view_to_dict(view: shap.Explanation) -> dict[str, Any]:
    """``{base_value, values: [{feature, value, data}], prediction}`` of an additive view."""
    data = view.data if view.data is not None else [None] * len(view.values)
    return {
        "base_value": float(view.base_values),
        "values": [
            {
                "feature": str(f),
                "value": float(v),
                "data": None if d is None or d != d else float(d),
            }
            for f, v, d in zip(view.feature_names, view.values, data, strict=True)
        ],
        "prediction": float(view.base_values + np.sum(view.values)),
    }


def explain_prediction(
    model: TrainedModel,
    user_id: str,
    item_id: str,
    *,
    data: RatingData | None = None,
    vector: UserVector | None = None,
    knn: KNNBaselineModel | None = None,
    shapley: bool = False,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
    factor_labels: list[str] | None = None,
    n: int = 10,
    counterfactual: bool = True,
) -> ExplanationBundle:
    """Explain the model's prediction for ``(user_id, item_id)``.

    ``vector`` explains a folded-in (what-if or new) user instead of the trained one;
    ``data`` supplies titles; ``knn`` adds the comparator's split; ``shapley`` adds the
    presence/absence view (slower: see ``engine.explain.history``); ``counterfactual``
    searches the ratings whose removal drops the item out of the top-``n``.

    Raises
    ------
    UnknownUserError, UnknownItemError
        Ids the model was not trained on (and no ``vector`` given for the user).
    ConfigError
        ``permutations`` or ``n`` is not an integer >= 1 (checked whether or not the
        Shapley view or the counterfactual is asked for).
    """
    permutations = check_permutations(permutations)
    n = check_list_length(n)
    inter = model.interactions
    item = int(inter.item_index([item_id])[0])
    if item < 0 or inter.counts_per_item()[item] == 0:
        raise UnknownItemError(
            f"Item {item_id!r} is not in the training data: the model has no factors for it, "
            "so there is nothing to explain; check the id."
        )
    user = int(inter.user_index([user_id])[0])
    if vector is None:
        if user < 0:
            raise UnknownUserError(
                f"User {user_id!r} is not in the training data: check the id, or fold the "
                "user's ratings in to explain a new user."
            )
        vector = model.user_vector(user)
    titles = item_titles(data)
    prediction = float(model.mu + vector.bu + model.bi[item] + model.Q[item] @ vector.pu)
    shown = float(clip_to_scale(np.array([prediction]), model.scale)[0])
    notes: list[str] = []
    common = {
        "user_id": user_id, "item_id": item_id, "title": titles.get(item_id),
        "prediction": prediction, "shown_prediction": shown,
    }  # fmt: skip
    if not vector.has_history:
        notes.append(
            "This user has no rating the model knows, so recommendations are the most "
            "popular items (a fallback) and there is nothing personal to attribute."
        )
        return ExplanationBundle(
            **common, factors=None, history=None, shapley=None, knn=None,
            similar_users=pd.DataFrame(), similar_items=pd.DataFrame(), counterfactual=None,
            notes=notes, source=SOURCE_FALLBACK,
        )  # fmt: skip
    if item in set(vector.items.tolist()):
        rated = vector.ratings[vector.items == item][0]
        notes.append(
            f"The user already rated this item ({rated:g}); this explains the model's fitted "
            "value, which is never recommended."
        )
    if not model.config.refit_users:
        notes.append(
            "The model keeps Surprise's SGD user vectors (no exact refit): the history view "
            "splits the refit solution and shows the gap to the SGD prediction as its own term."
        )
    if shown != prediction:
        notes.append(f"The prediction {prediction:.3f} is shown clipped to {shown:g}.")
    factors = factor_explanation(model, vector, item, factor_labels)
    history = linear_history(model, vector, item, titles)
    values = shapley_history(model, vector, item, titles, permutations=permutations, seed=seed) \
        if shapley else None  # fmt: skip
    knn_view = knn_split(knn, user, item, titles) if knn is not None and user >= 0 else None
    knn_reason = None
    if knn_view is not None and len(knn_view.values) == 0:
        knn_reason = NO_KNN_NEIGHBOUR
        notes.append(f"KNNBaseline: {NO_KNN_NEIGHBOUR} (b_ui = {knn_view.base_values:.3f}).")
    contributions = history.values[: len(vector.items)]
    fidelity = {
        "factors_gap": abs(factors.base_values + factors.values.sum() - prediction),
        "history_gap": abs(history.base_values + history.values.sum() - prediction),
    }
    if values is not None:
        refolded = model.fold_in(inter.item_ids[vector.items], vector.ratings)
        refolded_prediction = model.mu + refolded.bu + model.bi[item] + model.Q[item] @ refolded.pu
        fidelity["shapley_gap"] = abs(
            values.base_values + values.values.sum() - refolded_prediction
        )
    if knn_view is not None:
        knn_prediction = knn.predict_pairs(np.array([user]), np.array([item]))[0]
        fidelity["knn_gap"] = abs(knn_view.base_values + knn_view.values.sum() - knn_prediction)
    return ExplanationBundle(
        **common,
        factors=factors,
        history=history,
        shapley=values,
        knn=knn_view,
        similar_users=similar_users(model, vector, item, exclude_user=user if user >= 0 else None),
        similar_items=similar_items(model, vector, item, titles),
        counterfactual=find_counterfactual(model, vector, item, contributions, n)
        if counterfactual
        else None,
        notes=notes,
        fidelity={k: float(v) for k, v in fidelity.items()},
        knn_reason=knn_reason,
    )
