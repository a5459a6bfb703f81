"""What-if edits of one user's ratings: what changed, what was not used, how the top-N moved.

The dashboard's editor hands back the user's rating table after the analyst added,
changed or removed rows. ``compare_ratings`` turns it into the rating list to fold in
(``TrainedModel.fold_in``) and says what changed; nothing is dropped silently: every row
that is not used (no item or rating, an earlier row of an item entered twice, an item
the model does not know, a rating outside the scale) is listed with its reason.

``compare_rankings`` then sets the list after the edit beside the list before it. Both
sides must be *full* rankings (every item the user has not rated, ``full_ranking``) of
vectors solved the same way (``before_vector``): with only the top-N before the edit,
an item moving up from rank N+1 would have no previous rank, and with the trained SGD
vector on one side and the fold-in on the other, the lists would differ even for an
unchanged rating list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.explain import (
    Counterfactual,
    UnknownItemError,
    find_counterfactual,
    linear_history,
)
from engine.model.svd import TrainedModel, UserVector
from engine.recommend import recommend_for_vector

#: Reasons of the rows in ``WhatIf.not_used`` (tests and the dashboard match on them).
INCOMPLETE = "no item id or no rating"
DUPLICATE = "item entered again further down: the last row was used"
UNKNOWN_ITEM = "item not known to the model (no training ratings), so it cannot inform the fit"
OUT_OF_SCALE = "rating outside the scale {low:g} to {high:g}"
#: Reasons of the rows in ``RankChange.dropped``.
NOW_RATED = "rated in the edit (rated items are never recommended)"
MOVED_DOWN = "moved down"
NOT_USED_COLUMNS = ["row", "item_id", "rating", "reason"]
DROPPED_COLUMNS = ["item_id", "rank_before", "rank_after", "reason"]


@dataclass(frozen=True)
class WhatIf:
    """An edited rating list compared with the original.

    Attributes
    ----------
    item_ids, ratings
        The list to fold in: one rating per known item (for an item entered twice, the
        last row).
    added, removed, changed
        Known item ids rated only after the edit, only before it, or with a different
        rating.
    not_used
        One row per edited row that is not in the list to fold in. Columns ``row``
        (0-based position in the edited table), ``item_id`` (stripped; ``None`` when
        missing), ``rating`` (float, NaN when missing) and ``reason`` (one of
        ``INCOMPLETE``, ``DUPLICATE``, ``UNKNOWN_ITEM``, ``OUT_OF_SCALE``).
    """

    item_ids: np.ndarray
    ratings: np.ndarray
    added: list[str]
    removed: list[str]
    changed: list[str]
    not_used: pd.DataFrame

    @property
    def edited(self) -> bool:
        """Whether the list to fold in differs from the original."""
        return bool(self.added or self.removed or self.changed)

    @property
    def duplicates(self) -> list[str]:
        """Item ids entered more than once (the last row of each was used)."""
        rows = self.not_used[self.not_used["reason"] == DUPLICATE]
        return sorted(set(rows["item_id"]))

    @property
    def unknown_items(self) -> list[str]:
        """Item ids not known to the model, whose ratings were therefore not used."""
        rows = self.not_used[self.not_used["reason"] == UNKNOWN_ITEM]
        return sorted(set(rows["item_id"]))

    @property
    def incomplete_rows(self) -> int:
        """How many rows had no item id or no rating."""
        return int((self.not_used["reason"] == INCOMPLETE).sum())

    def describe(self) -> str:
        """One sentence, e.g. ``What-if: 1 added, 2 changed, 0 removed (12 ratings used).``.

        Rows that were not used are summarised after it, by reason.
        """
        text = (
            f"What-if: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed ({len(self.item_ids)} ratings used)."
        )
        if self.duplicates:
            text += f" Entered twice, last row used: {', '.join(self.duplicates)}."
        if self.unknown_items:
            text += f" Not known to the model, not used: {', '.join(self.unknown_items)}."
        outside = OUT_OF_SCALE.partition("{")[0]
        out_of_scale = int(self.not_used["reason"].str.startswith(outside).sum())
        if out_of_scale:
            text += f" {out_of_scale} ratings outside the scale were not used."
        if self.incomplete_rows:
            text += f" {self.incomplete_rows} rows without an item or a rating were ignored."
        return text


def compare_ratings(
    before: pd.DataFrame,
    after: pd.DataFrame,
    known_items: pd.Index | np.ndarray | list[str] | None = None,
    scale: tuple[float, float] | None = None,
) -> WhatIf:
    """Compare two ``item_id, rating`` tables of one user (``after`` as edited).

    Parameters
    ----------
    before, after
        The user's ratings before and after the edit; ``before`` holds known items only.
    known_items
        Item ids the model can use (``known_items(model)``); ``None`` treats every item
        as known.
    scale
        ``(low, high)``: ratings outside it are not used; ``None`` accepts any rating.
    """
    after = after.reset_index(drop=True)
    ids = pd.Series(
        [None if pd.isna(i) or str(i).strip() == "" else str(i).strip() for i in after["item_id"]],
        index=after.index,
        dtype=object,
    )
    rating = pd.to_numeric(after["rating"], errors="coerce").astype(float)
    reasons = pd.Series(None, index=after.index, dtype=object)
    reasons[ids.isna() | rating.isna()] = INCOMPLETE
    if scale is not None:
        low, high = scale
        outside = reasons.isna() & ((rating < low) | (rating > high))
        reasons[outside] = OUT_OF_SCALE.format(low=low, high=high)
    if known_items is not None:
        unknown = reasons.isna() & ~ids.isin(pd.Index(known_items).astype(str))
        reasons[unknown] = UNKNOWN_ITEM
    usable = reasons.isna()
    reasons[usable & ids.where(usable).duplicated(keep="last")] = DUPLICATE  # a later row wins
    kept = reasons.isna()
    final = pd.Series(rating[kept].to_numpy(), index=ids[kept].to_numpy())
    original = pd.Series(before["rating"].astype(float).to_numpy(),
                         index=before["item_id"].astype(str).to_numpy())  # fmt: skip
    common = final.index.intersection(original.index)
    changed = common[final[common].to_numpy() != original[common].to_numpy()]
    positions = np.flatnonzero(~kept.to_numpy())
    not_used = pd.DataFrame(
        {
            "row": positions,
            "item_id": ids.to_numpy()[positions],
            "rating": rating.to_numpy()[positions],
            "reason": reasons.to_numpy()[positions],
        },
        columns=NOT_USED_COLUMNS,
    )
    return WhatIf(
        item_ids=final.index.to_numpy(dtype=object),
        ratings=final.to_numpy(),
        added=sorted(final.index.difference(original.index)),
        removed=sorted(original.index.difference(final.index)),
        changed=sorted(changed),
        not_used=not_used,
    )


def known_items(model: TrainedModel) -> pd.Index:
    """Item ids with training ratings: the only ones a fold-in can learn from."""
    inter = model.interactions
    return pd.Index(inter.item_ids[inter.counts_per_item() > 0]).astype(str)


def before_vector(model: TrainedModel, user: int) -> UserVector:
    """Return the user's own ratings folded in exactly as an edited list is (``fold_in``).

    With ``config.refit_users`` (the default) this equals the trained vector; without it
    the trained SGD vector is not a function of the ratings, so comparing it with a
    fold-in would show a change for an unchanged list.
    """
    items, ratings = model.interactions.history(user)
    return model.fold_in(model.interactions.item_ids[items], ratings)


def full_ranking(model: TrainedModel, vector: UserVector, user_id: str) -> pd.DataFrame:
    """Every item the user has not rated, best first (``engine.recommend`` columns)."""
    return recommend_for_vector(model, vector, model.interactions.n_items, user_id=user_id)


def with_previous_rank(after: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """Add ``rank_before``: the item's rank in ``before`` (``<NA>``: not in ``before``).

    Both are rankings with ``item_id`` and ``rank`` columns (``engine.recommend``).
    ``before`` must be the *full* ranking before the edit (``full_ranking``); then
    ``<NA>`` means only that the user had rated the item before the edit.
    """
    out = after.copy()
    out["rank_before"] = _rank_in(before, out["item_id"])
    return out


def _rank_in(ranking: pd.DataFrame, item_ids: pd.Series) -> pd.arrays.IntegerArray:
    """Rank of each of ``item_ids`` in ``ranking`` (``<NA>`` where it is not ranked)."""
    position = pd.Index(ranking["item_id"]).get_indexer(item_ids)
    found = position >= 0
    ranks = np.zeros(len(position), dtype=np.int64)
    ranks[found] = ranking["rank"].to_numpy()[position[found]]
    return pd.arrays.IntegerArray(ranks, ~found)


@dataclass(frozen=True)
class RankChange:
    """How the top-N moved with an edit.

    Attributes
    ----------
    top
        The top-N after the edit (``engine.recommend`` columns) plus ``rank_before``
        (Int64): the item's rank before the edit, ``<NA>`` only for an item the user had
        rated before the edit (its rating was removed).
    dropped
        Items of the top-N before the edit that left it, by their rank before. Columns
        ``item_id``, ``rank_before`` (Int64), ``rank_after`` (Int64, ``<NA>`` when the
        item was rated in the edit) and ``reason`` (``NOW_RATED`` or ``MOVED_DOWN``).
    """

    top: pd.DataFrame
    dropped: pd.DataFrame


def compare_rankings(before: pd.DataFrame, after: pd.DataFrame, n: int) -> RankChange:
    """Compare the full rankings ``before`` and ``after`` an edit on their top-``n``.

    Both are full rankings (``full_ranking``): ``item_id`` and ``rank`` (1 = best) of
    every item the user has not rated, sorted by rank.
    """
    top_before = before[before["rank"] <= n]
    top = with_previous_rank(after[after["rank"] <= n].reset_index(drop=True), before)
    left = top_before[~top_before["item_id"].isin(top["item_id"])]
    rank_after = _rank_in(after, left["item_id"])
    dropped = pd.DataFrame(
        {
            "item_id": left["item_id"].to_numpy(),
            "rank_before": pd.array(left["rank"].to_numpy(), dtype="Int64"),
            "rank_after": rank_after,
            "reason": [NOW_RATED if pd.isna(r) else MOVED_DOWN for r in rank_after],
        },
        columns=DROPPED_COLUMNS,
    )
    return RankChange(top=top, dropped=dropped)


def counterfactual_for(
    model: TrainedModel, vector: UserVector, item_id: str, n: int
) -> Counterfactual:
    """Search the ratings of ``vector`` whose removal drops ``item_id`` out of the top-``n``.

    ``engine.explain.find_counterfactual`` ordered by the exact history split of the
    prediction (``linear_history``); run on demand, as the search refolds the user
    hundreds of times.

    Raises
    ------
    UnknownItemError
        The model has no factors for ``item_id``.
    """
    item = int(model.interactions.item_index([item_id])[0])
    if item < 0 or model.interactions.counts_per_item()[item] == 0:
        raise UnknownItemError(
            f"Item {item_id!r} is not in the training data: the model has no factors for it, "
            "so there is no counterfactual to search; check the id."
        )
    contributions = linear_history(model, vector, item).values[: len(vector.items)]
    return find_counterfactual(model, vector, item, contributions, n)
