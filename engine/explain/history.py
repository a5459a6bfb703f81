r"""Attribute a prediction to the user's own past ratings ("because you rated ...").

With the exact user refit (``engine.model.refit``) the prediction is linear in the
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

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import shap
from threadpoolctl import threadpool_limits

from engine.checks import check_count
from engine.explain.additive import additive_view
from engine.explain.titles import titles_for
from engine.model.svd import TrainedModel, UserVector

EXACT_MAX = 10
DEFAULT_PERMUTATIONS = 10
RESIDUAL_FEATURE = "not explained by ratings (SGD user vector vs exact refit)"


def check_permutations(permutations: object) -> int:
    """Return ``permutations`` if it is an integer >= 1, else raise ``ConfigError``."""
    return check_count("permutations", permutations, DEFAULT_PERMUTATIONS)


def _design(model: TrainedModel, items: np.ndarray, ratings: np.ndarray):
    X = np.empty((len(items), model.Q.shape[1] + 1))
    X[:, 0] = 1.0
    X[:, 1:] = model.Q[items]
    return X, ratings - model.mu - model.bi[items]


def _item_vector(model: TrainedModel, item: int) -> np.ndarray:
    return np.concatenate([[1.0], model.Q[item]])


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
    x_i = _item_vector(model, item)
    base = model.mu + model.bi[item]
    values = np.zeros(len(items))
    if len(items):
        X, y = _design(model, items, ratings)
        A = X.T @ X
        A[np.diag_indices_from(A)] += model.config.refit_lambda * len(items)
        values = (X @ np.linalg.solve(A, x_i)) * y
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
    ``m`` predictions, solving one ridge system per mask in whichever space is smaller:

    * feature space (``n >= k + 1``): ``(X_S^T X_S + lambda |S| I) theta = X_S^T y_S``.
      Consecutive masks that differ by one rating (as permutation and exact Shapley
      sampling produce) update ``X_S^T X_S`` and ``X_S^T y_S`` by a rank-one step (a
      running sum of precomputed outer products); any other mask is built directly.
    * sample space (``n < k + 1``), by the push-through identity
      ``x_i^T (X_S^T X_S + c I)^{-1} X_S^T y_S = k_S^T (K_SS + c I)^{-1} y_S`` with
      ``K = X X^T`` and ``k = X x_i``; unselected rows are set to the identity so every
      mask is one ``n x n`` system.

    Systems are solved in batches split over two threads (numpy's batched solve
    releases the GIL).
    """

    CHUNK = 256

    def __init__(self, model: TrainedModel, vector: UserVector, item: int):
        self.X, self.y = _design(model, vector.items, vector.ratings)
        self.x_i = _item_vector(model, item)
        self.base = float(model.mu + model.bi[item])
        self.lam = model.config.refit_lambda
        n, d = self.X.shape
        self.sample_space = n < d
        if self.sample_space:
            self.K = self.X @ self.X.T
            self.k = self.X @ self.x_i
        else:
            outer = np.einsum("na,nb->nab", self.X, self.X)
            self.xy = self.X * self.y[:, None]
            # [+outer; -outer; 0]: one gather gives each row's signed step (or nothing).
            self.signed_outer = np.concatenate([outer, -outer, np.zeros((1, d, d))])
            self.signed_xy = np.concatenate([self.xy, -self.xy, np.zeros((1, d))])
            self._last = (np.zeros(n, bool), np.zeros((d, d)), np.zeros(d))
        self.calls = 0

    def _grams(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prev_mask, prev_g, prev_b = self._last
        steps = np.vstack([prev_mask[None, :], block])
        changed = steps[1:] != steps[:-1]
        n_changed = changed.sum(axis=1)
        j = changed.argmax(axis=1)
        removed = ~block[np.arange(len(block)), j]
        # Row r of the signed tables: +outer product (added rating) or - (removed rating).
        n = len(self.xy)
        pick = np.where(n_changed == 1, j + removed * n, 2 * n)
        gram = self.signed_outer[pick]
        rhs = self.signed_xy[pick]
        for row in np.flatnonzero(n_changed > 1):  # not one step away: build it directly
            Xs, ys = self.X[block[row]], self.y[block[row]]
            gram[row] = Xs.T @ Xs - (prev_g + gram[:row].sum(axis=0))
            rhs[row] = Xs.T @ ys - (prev_b + rhs[:row].sum(axis=0))
        gram[0] += prev_g
        rhs[0] += prev_b
        np.cumsum(gram, axis=0, out=gram)
        np.cumsum(rhs, axis=0, out=rhs)
        self._last = (block[-1].copy(), gram[-1].copy(), rhs[-1].copy())
        sizes = block.sum(axis=1)
        shift = np.where(sizes > 0, self.lam * sizes, 1.0)  # empty masks: any solvable system
        diagonal = np.arange(gram.shape[1])
        gram[:, diagonal, diagonal] += shift[:, None]
        return gram, rhs

    def _masked_kernels(self, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        D = block.astype(float)
        systems = self.K[None] * D[:, :, None] * D[:, None, :]
        diagonal = np.where(block, self.lam * block.sum(axis=1)[:, None], 1.0)
        idx = np.arange(block.shape[1])
        systems[:, idx, idx] += diagonal
        return systems, D * self.y[None, :]

    @staticmethod
    def _solve(systems: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        half = len(systems) // 2
        if half < 16:
            return np.linalg.solve(systems, rhs[..., None])[..., 0]
        with ThreadPoolExecutor(max_workers=2) as pool:
            parts = pool.map(
                lambda sl: np.linalg.solve(systems[sl], rhs[sl][..., None])[..., 0],
                (slice(0, half), slice(half, None)),
            )
            return np.concatenate(list(parts))

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """Return ``v(mask)`` for each row of ``masks``."""
        masks = np.asarray(masks) > 0.5
        out = np.full(len(masks), self.base)
        for start in range(0, len(masks), self.CHUNK):
            block = masks[start : start + self.CHUNK]
            if self.sample_space:
                systems, rhs = self._masked_kernels(block)
                out[start : start + len(block)] += self._solve(systems, rhs) @ self.k
            else:
                systems, rhs = self._grams(block)
                solved = self._solve(systems, rhs) @ self.x_i
                out[start : start + len(block)] += np.where(block.any(axis=1), solved, 0.0)
        self.calls += len(masks)
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
    masker = shap.maskers.Independent(np.zeros((1, n)), max_samples=1)
    state = np.random.get_state()
    try:
        # One BLAS thread per solve: RefoldValue runs two solves side by side instead.
        with threadpool_limits(limits=1):
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
