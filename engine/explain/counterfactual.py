"""Counterfactual: which of the user's ratings, if removed, drop the item out of the top-N.

"Removed" means the user is refolded without those ratings (``TrainedModel.fold_in``,
no retraining). The removed items stay out of the list (the user has seen them), so the
counterfactual is about the target's own score falling below the competitors', not
about a removed item taking its slot.
The search looks for the smallest such set of at most ``MAX_SIZE`` ratings:

1. every set of 1 to ``EXHAUSTIVE_SIZE`` ratings among the ``CANDIDATES`` with the largest
   positive contribution in the exact history split (smallest sets first);
2. if none works, greedily removing ratings in that order until the item leaves the
   list or ``MAX_SIZE`` is reached.

So a set found in step 1 is the smallest among those candidates; a set from step 2 is a
valid counterfactual but not proven minimal. ``method`` says which (cf. ACCENT,
Tran et al., SIGIR 2021, which also searches guided by influence).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from engine.checks import check_count
from engine.model import ridge
from engine.model.svd import TrainedModel, UserVector

MAX_SIZE = 10
EXHAUSTIVE_SIZE = 3
CANDIDATES = 12


@dataclass(frozen=True)
class Counterfactual:
    """Result of ``find_counterfactual``.

    ``removed`` are item ids (in removal order) and ``new_rank`` the item's rank
    (1-based) without them; ``found`` is False with ``message`` saying why otherwise.
    """

    found: bool
    message: str
    removed: list[str] = field(default_factory=list)
    new_rank: int | None = None
    new_prediction: float | None = None
    method: str = ""
    refolds: int = 0


def check_list_length(n: object) -> int:
    """Return the top-N length ``n`` if it is an integer >= 1, else raise ``ConfigError``."""
    return check_count("n", n, 10, what="the top-N list length n")


def rank_of(
    model: TrainedModel, vector: UserVector, item: int, seen: np.ndarray | None = None
) -> tuple[int, float]:
    """Rank (1-based, ties by item index) of ``item`` among items not in ``seen``.

    ``seen`` defaults to the vector's rated items.
    """
    scores = model.score_vector(vector)
    eligible = np.ones(len(scores), bool)
    eligible[vector.items if seen is None else seen] = False
    eligible &= model.interactions.counts_per_item() > 0
    target = scores[item]
    ahead = eligible & ((scores > target) | ((scores == target) & (np.arange(len(scores)) < item)))
    return int(ahead.sum()) + 1, float(target)


def find_counterfactual(
    model: TrainedModel,
    vector: UserVector,
    item: int,
    contributions: np.ndarray,
    n: int = 10,
) -> Counterfactual:
    """Search the smallest set of ratings whose removal drops ``item`` out of the top-``n``.

    ``contributions`` are the exact history split's values, aligned with
    ``vector.items`` (they order the candidates).

    Raises
    ------
    ConfigError
        ``n`` is not an integer >= 1.
    """
    n = check_list_length(n)
    rank, _ = rank_of(model, vector, item)
    if item in set(vector.items.tolist()):
        return Counterfactual(False, "The user already rated this item; it is not recommended.")
    if rank > n:
        return Counterfactual(False, f"The item is ranked {rank}, not in the top {n}.")
    order = np.argsort(-contributions[: len(vector.items)], kind="stable")
    positive = [j for j in order if contributions[j] > 0]
    if not positive:
        return Counterfactual(
            False, "No rating pushes this prediction up, so removing ratings cannot help."
        )
    ids = model.interactions.item_ids
    evaluate = _RemovalRanks(model, vector, item)
    candidates = positive[:CANDIDATES]
    for size in range(1, min(EXHAUSTIVE_SIZE, len(candidates)) + 1):
        drops = list(itertools.combinations(candidates, size))
        ranks, scores = evaluate(drops)
        hit = np.flatnonzero(ranks > n)
        if len(hit):
            best = hit[np.argmax(ranks[hit])]  # of the smallest sets, the one that moves it most
            return Counterfactual(
                True, f"Without these {size} rating(s) the item drops to rank {ranks[best]}.",
                [str(ids[vector.items[j]]) for j in drops[best]], int(ranks[best]),
                float(scores[best]),
                f"exhaustive over the {len(candidates)} most positive contributions",
                evaluate.refolds,
            )  # fmt: skip
    greedy = [
        tuple(positive[:size])
        for size in range(EXHAUSTIVE_SIZE + 1, min(MAX_SIZE, len(positive)) + 1)
    ]
    if greedy:
        ranks, scores = evaluate(greedy)
        hit = np.flatnonzero(ranks > n)
        if len(hit):
            first = hit[0]
            return Counterfactual(
                True, f"Without these {len(greedy[first])} ratings the item drops to rank "
                f"{ranks[first]}.",
                [str(ids[vector.items[j]]) for j in greedy[first]], int(ranks[first]),
                float(scores[first]), "greedy by contribution (not proven minimal)",
                evaluate.refolds,
            )  # fmt: skip
    return Counterfactual(
        False,
        f"The search (every set of up to {EXHAUSTIVE_SIZE} of the {CANDIDATES} most positive "
        f"ratings, then the top {EXHAUSTIVE_SIZE + 1} to {MAX_SIZE} together) found no set "
        f"that removes the item from the top {n}: the recommendation does not hinge on its "
        "few most credited ratings.",
        refolds=evaluate.refolds,
    )


class _RemovalRanks:
    """Rank and score of the target after removing each of many rating sets, in one batch.

    For a drop set ``D`` the refold is ``theta`` of the ridge problem on the remaining
    ratings (``engine.model.ridge.SubsetRidge`` on the masks "all but ``D``"), exactly
    ``TrainedModel.fold_in`` on them; removing every rating gives ``theta = 0``.
    """

    def __init__(self, model: TrainedModel, vector: UserVector, item: int):
        self.model, self.vector, self.item = model, vector, item
        X = ridge.design(model.Q, vector.items)
        y = ridge.residuals(model.mu, model.bi, vector.items, vector.ratings)
        self.subsets = ridge.SubsetRidge(X, y, model.config.refit_lambda)
        eligible = model.interactions.counts_per_item() > 0
        eligible[vector.items] = False
        self.eligible = eligible
        self.refolds = 0

    def __call__(self, drops: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
        model = self.model
        keep = np.ones((len(drops), len(self.vector.items)), bool)
        for row, drop in enumerate(drops):
            keep[row, list(drop)] = False
        theta = self.subsets.thetas(keep)
        scores = model.mu + theta[:, :1] + model.bi[None, :] + theta[:, 1:] @ model.Q.T
        target = scores[:, self.item]
        index = np.arange(scores.shape[1])
        ahead = (scores > target[:, None]) | (
            (scores == target[:, None]) & (index[None, :] < self.item)
        )
        self.refolds += len(drops)
        return (ahead & self.eligible[None, :]).sum(axis=1) + 1, target
