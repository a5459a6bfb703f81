r"""Attribute a prediction to the user's own past ratings ("because you rated ...").

With the exact user refit (``engine.model.ridge``) the prediction is linear in the
user's rating residuals :math:`y_j = r_{uj} - \mu - b_j`:

.. math::

    \hat r_{ui} = \underbrace{\mu + b_i}_{\text{base: no history}}
                + \sum_{j \in J_u} \underbrace{(x_i^\top A_u^{-1} x_j)\, y_j}_{c_j},
    \qquad x_j = [1, q_j],\; A_u = X^\top X + \lambda n_u I.

``linear_history`` returns this exact split (it sums to the unclipped prediction).
``shapley_history`` answers "what if you had not rated it": the game's value of a
subset :math:`S \subseteq J_u` is the prediction after refolding the user with only
:math:`S` (ridge strength :math:`\lambda |S|`), :math:`v(\emptyset) = \mu + b_i`, and the
values are Shapley values of that game (``shap.ExactExplainer`` for at most
``EXACT_MAX`` ratings, else ``shap.PermutationExplainer`` with a seed and a budget of
permutations). Both views are additive. They differ because presence also changes the
ridge strength and the bias estimate: a rating with zero residual has :math:`c_j = 0`
but can have a non-zero Shapley value.

For a model trained without the refit, the SGD user vector is not a function of the
ratings alone; the split is then over the fold-in solution and the difference
(SGD prediction minus fold-in prediction) is reported as its own term, never hidden.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.checks import check_count
from engine.explain.additive import additive_view
from engine.explain.titles import titles_for
from engine.model import ridge
from engine.model.svd import TrainedModel, UserVector

if TYPE_CHECKING:  # shap takes ~2 s to import: loaded where first used
    import shap

EXACT_MAX = 10
DEFAULT_PERMUTATIONS = 10
RESIDUAL_FEATURE = "not explained by ratings (SGD user vector vs exact refit)"


def check_permutations(permutations: object) -> int:
    """Return ``permutations`` if it is an integer >= 1, else raise ``ConfigError``."""
    return check_count("permutations", permutations, DEFAULT_PERMUTATIONS)


def linear_history(
    model: TrainedModel, vector: UserVector, item: int, titles: dict[str, str] | None = None
) -> shap.Explanation:
    """Exact split of the unclipped prediction over the user's ratings.

    Returns
    -------
    shap.Explanation
        ``base_values = mu + b_i``; one value ``c_j`` per rated item (``feature_names``
        are titles when given); ``data`` holds the user's ratings. For a model without
        the refit, a last feature ``RESIDUAL_FEATURE`` carries the SGD-vs-refit gap.
        ``values.sum() + base_values`` equals the prediction.
    """
    items, ratings = vector.items, vector.ratings
    base = model.mu + model.bi[item]
    weights = ridge.split_weights(
        ridge.design(model.Q, items), ridge.item_row(model.Q, item), model.config.refit_lambda
    )
    values = weights * ridge.residuals(model.mu, model.bi, items, ratings)
    names = titles_for(model.interactions.item_ids[items], titles)
    data = ratings.astype(float)
    actual = base + vector.bu + model.Q[item] @ vector.pu
    residual = actual - (base + values.sum())
    if not model.config.refit_users or abs(residual) > 1e-9:
        values = np.append(values, residual)
        names.append(RESIDUAL_FEATURE)
        data = np.append(data, np.nan)
    return additive_view(values, float(base), data, names)


class RefoldValue:
    """The presence/absence game: ``v(mask)`` = prediction after refolding rated subset.

    Called with a ``(m, n)`` array of 0/1 masks over the user's ``n`` ratings, it returns
    ``m`` predictions ``mu + b_i + x_i . theta_S`` (``mu + b_i`` for the empty mask),
    each ``theta_S`` the ridge solution on the selected ratings. The solves are
    ``engine.model.ridge.SubsetRidge``'s batches: feature space with rank-one steps
    between consecutive masks (as permutation and exact Shapley sampling produce), or
    the sample-space push-through form when the user has fewer ratings than
    ``k + 1``.
    """

    def __init__(self, model: TrainedModel, vector: UserVector, item: int):
        X = ridge.design(model.Q, vector.items)
        y = ridge.residuals(model.mu, model.bi, vector.items, vector.ratings)
        self.subsets = ridge.SubsetRidge(X, y, model.config.refit_lambda)
        self.x_i = ridge.item_row(model.Q, item)
        self.base = float(model.mu + model.bi[item])
        self.calls = 0

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """Return ``v(mask)`` for each row of ``masks``."""
        out = self.base + self.subsets.predictions(masks, self.x_i)
        self.calls += len(out)
        return out


def shapley_history(
    model: TrainedModel,
    vector: UserVector,
    item: int,
    titles: dict[str, str] | None = None,
    *,
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> shap.Explanation:
    """Shapley values of the user's ratings in the refold game (see module docstring).

    ``ExactExplainer`` for at most ``EXACT_MAX`` ratings; otherwise
    ``PermutationExplainer`` with ``permutations`` antithetic permutations
    (``max_evals = permutations * (2n + 1)``) seeded by ``seed``. numpy's global RNG,
    which shap reseeds, is restored afterwards. ``base_values + values.sum()`` equals
    the refolded prediction with all ratings.

    Raises
    ------
    ConfigError
        ``permutations`` is not an integer >= 1.
    """
    check_permutations(permutations)
    items, ratings = vector.items, vector.ratings
    game = RefoldValue(model, vector, item)
    n = len(items)
    names = titles_for(model.interactions.item_ids[items], titles)
    if n == 0:
        return additive_view(np.zeros(0), float(game.base), None, [])
    import shap

    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)
    state = np.random.get_state()
    try:
        # One BLAS thread per solve: the batched refolds run two solves side by side.
        with ridge.one_blas_thread():
            if n <= EXACT_MAX:
                result = shap.ExactExplainer(game, masker)(np.ones((1, n)))
            else:
                explainer = shap.PermutationExplainer(game, masker, seed=seed)
                budget = permutations * (2 * n + 1)
                result = explainer(np.ones((1, n)), max_evals=budget, silent=True)
    finally:
        np.random.set_state(state)
    return shap.Explanation(
        values=np.asarray(result.values[0], dtype=float),
        base_values=float(np.asarray(result.base_values).ravel()[0]),
        data=ratings.astype(float),
        feature_names=names,
    )
