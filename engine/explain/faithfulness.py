r"""Per-prediction faithfulness: remove what the explanation credits, refold, look again.

An attribution is faithful for *this* prediction when removing the ratings it credits
most moves the prediction (and the item's rank) much more than removing as many ratings
at random. ``faithfulness_check`` does both, each with one exact refold of the user's
ridge problem without those ratings (``engine.model.ridge.SubsetRidge``, the same
solves as ``TrainedModel.fold_in``; no retraining):

- *top*: the ``k`` ratings with the largest positive contribution :math:`c_j` of the exact
  split (fewer when fewer are positive);
- *random*: ``k`` ratings drawn uniformly without replacement by
  ``numpy.random.default_rng(seed)`` (seed 0 by default, so the page and the CLI show the
  same draw).

Ranks are 1-based among the items the user has not rated (every original rating stays
excluded, removed or not: the user has seen those items) and the model knows, ties by
item index: the page's ranking (``engine.recommend``, ``engine.whatif.full_ranking``).
This is the per-prediction form of the deletion test (DEL@k, AOPC: Samek et al. 2017,
"Evaluating the visualization of what a deep neural network has learned").

``rank_agreement`` sets the Shapley view beside the exact split: Spearman's rank
correlation of the two attributions over the user's ratings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.explain.counterfactual import _RemovalRanks
from engine.model.svd import TrainedModel, UserVector

#: Ratings removed in each arm of the check, and the random arm's seed.
REMOVE = 3
SEED = 0
#: Why the Shapley values and the exact split differ (shown beside their agreement).
WHY_THEY_DIFFER = (
    "The exact split holds the ridge strength fixed at your whole history (lambda x n_u) "
    "and splits the prediction as it is; Shapley values remove ratings, which also weakens "
    "the ridge strength (lambda x |S|) and re-estimates your bias, so the two attribute "
    "differently."
)


@dataclass(frozen=True)
class Removal:
    """One arm: the ``removed`` item ids and the refolded ``prediction`` and ``rank``."""

    removed: list[str]
    prediction: float
    rank: int


@dataclass(frozen=True)
class Faithfulness:
    """Result of ``faithfulness_check``: the prediction and rank before, and each arm."""

    prediction: float
    rank: int
    top: Removal
    random: Removal
    seed: int

    def describe(self) -> str:
        """Two sentences: what removing the top ratings and random ratings does."""
        k, r = len(self.top.removed), len(self.random.removed)
        return (
            f"Removing the {k} most positively attributed rating{'s' * (k != 1)} and refolding "
            f"moves the prediction {self.prediction:.3f} -> {self.top.prediction:.3f} "
            f"({self.top.prediction - self.prediction:+.3f}) and the rank {self.rank} -> "
            f"{self.top.rank}; removing {r} random rating{'s' * (r != 1)} (seed {self.seed}) "
            f"moves it to {self.random.prediction:.3f} "
            f"({self.random.prediction - self.prediction:+.3f}), rank {self.random.rank}."
        )


def faithfulness_check(
    model: TrainedModel,
    vector: UserVector,
    item: int,
    contributions: np.ndarray,
    k: int = REMOVE,
    seed: int = SEED,
) -> Faithfulness:
    """Refold without the ``k`` most positive contributions, and without ``k`` random ratings.

    ``contributions`` are the exact split's values aligned with ``vector.items``. The
    prediction is unclipped and refolded (for the refit it equals the model's). A user
    with no positive contribution gets an empty *top* arm (prediction and rank unchanged).
    """
    n = len(vector.items)
    values = np.asarray(contributions, float)[:n]
    order = np.argsort(-values, kind="stable")
    top = tuple(int(j) for j in order[:k] if values[j] > 0)
    draw = np.random.default_rng(seed).choice(n, size=min(k, n), replace=False)
    rand = tuple(int(j) for j in np.sort(draw))
    ranks, scores = _RemovalRanks(model, vector, item)([(), top, rand])
    ids = model.interactions.item_ids[vector.items].astype(str)
    return Faithfulness(
        prediction=float(scores[0]),
        rank=int(ranks[0]),
        top=Removal([str(ids[j]) for j in top], float(scores[1]), int(ranks[1])),
        random=Removal([str(ids[j]) for j in rand], float(scores[2]), int(ranks[2])),
        seed=seed,
    )


def rank_agreement(exact: np.ndarray, shapley: np.ndarray) -> float:
    """Spearman's rank correlation of two attributions of the same ratings, in [-1, 1].

    1 = the two rank the ratings identically. ``nan`` when fewer than 2 ratings or either
    attribution is constant (no ranking to compare).
    """
    from scipy.stats import spearmanr

    exact, shapley = np.asarray(exact, float), np.asarray(shapley, float)
    n = min(len(exact), len(shapley))
    if n < 2 or np.ptp(exact[:n]) == 0 or np.ptp(shapley[:n]) == 0:
        return float("nan")
    return float(spearmanr(exact[:n], shapley[:n]).statistic)


def describe_agreement(rho: float, n: int) -> str:
    """``WHY_THEY_DIFFER`` plus the measured agreement over ``n`` ratings."""
    if rho != rho:
        return f"{WHY_THEY_DIFFER} (Too few varying ratings to compare their rankings.)"
    return (
        f"{WHY_THEY_DIFFER} Their agreement over your {n:,} ratings: Spearman rank "
        f"correlation {rho:.2f} (1 = same order)."
    )
