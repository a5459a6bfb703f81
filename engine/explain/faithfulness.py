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
  same draw); that draw and ``RANDOM_SETS - 1`` more give the verdict: the share of random
  sets of ``k`` whose removal lowers the prediction at least as much as the top arm's
  (``Faithfulness.verdict``). One random set alone cannot tell a faithful explanation from
  a lucky draw.

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
#: Random sets of ``REMOVE`` ratings the top arm's drop is compared with.
RANDOM_SETS = 50
#: At most this share of random sets dropping as much: the top ratings hold it up.
FAITHFUL_SHARE = 0.1
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
    random_changes: tuple[float, ...] = ()

    def describe(self) -> str:
        """Say what removing the top ratings and random ratings does, then ``verdict``."""
        k, r = len(self.top.removed), len(self.random.removed)
        return (
            f"Removing the {k} most positively attributed rating{'s' * (k != 1)} and refolding "
            f"moves the prediction {self.prediction:.3f} -> {self.top.prediction:.3f} "
            f"({self.top.prediction - self.prediction:+.3f}) and the rank {self.rank} -> "
            f"{self.top.rank}; removing {r} random rating{'s' * (r != 1)} (seed {self.seed}) "
            f"moves it to {self.random.prediction:.3f} "
            f"({self.random.prediction - self.prediction:+.3f}), rank {self.random.rank}. "
            + self.verdict()
        )

    def verdict(self) -> str:
        """Say whether the top ratings hold the prediction up more than random ones do.

        From ``random_changes``: how many random sets lower the prediction at least as
        much as removing the top ratings; at most ``FAITHFUL_SHARE`` of them: faithful.
        """
        k, sets = len(self.top.removed), len(self.random_changes)
        if k == 0:
            return "No rating raises this prediction, so there is nothing to remove."
        if sets == 0:
            return ""
        drop = self.top.prediction - self.prediction
        as_much = int(np.sum(np.asarray(self.random_changes) <= drop + 1e-12))
        if as_much == 0:
            return (f"None of {sets} random sets of {k} lowers it as much: the explanation "
                    "picks out the ratings that hold this prediction up.")  # fmt: skip
        if as_much <= FAITHFUL_SHARE * sets:
            return (f"{as_much} of {sets} random sets of {k} lower it as much: the explanation "
                    "mostly picks out the ratings that hold this prediction up.")  # fmt: skip
        return (f"{as_much} of {sets} random sets of {k} lower it as much: for this prediction "
                "the most credited ratings are not what holds it up more than others (with "
                "few ratings, or many alike, any few can matter as much).")  # fmt: skip


def faithfulness_check(
    model: TrainedModel,
    vector: UserVector,
    item: int,
    contributions: np.ndarray,
    k: int = REMOVE,
    seed: int = SEED,
    sets: int = RANDOM_SETS,
) -> Faithfulness:
    """Refold without the ``k`` most positive contributions, and without ``k`` random ratings.

    ``contributions`` are the exact split's values aligned with ``vector.items``. The
    prediction is unclipped and refolded (for the refit it equals the model's). A user
    with no positive contribution gets an empty *top* arm (prediction and rank unchanged).
    ``sets`` random sets are drawn (the first is the *random* arm), all refolded in one
    batch; their changes of the prediction give ``Faithfulness.verdict``.
    """
    n = len(vector.items)
    values = np.asarray(contributions, float)[:n]
    order = np.argsort(-values, kind="stable")
    top = tuple(int(j) for j in order[:k] if values[j] > 0)
    rng = np.random.default_rng(seed)
    draws = [tuple(int(j) for j in np.sort(rng.choice(n, size=min(k, n), replace=False)))
             for _ in range(sets if n else 0)]  # fmt: skip
    rand = draws[0] if draws else ()
    ranks, scores = _RemovalRanks(model, vector, item)([(), top, *(draws or [()])])
    ids = model.interactions.item_ids[vector.items].astype(str)
    return Faithfulness(
        prediction=float(scores[0]),
        rank=int(ranks[0]),
        top=Removal([str(ids[j]) for j in top], float(scores[1]), int(ranks[1])),
        random=Removal([str(ids[j]) for j in rand], float(scores[2]), int(ranks[2])),
        seed=seed,
        random_changes=tuple(float(x) for x in scores[2:] - scores[0]) if draws else (),
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
