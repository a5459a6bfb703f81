"""What-if edits of one user's ratings: what changed, and how the top-N moved.

The dashboard's editor hands back the user's rating table after the analyst added,
changed or removed rows. ``compare_ratings`` turns it into the rating list to fold in
(``TrainedModel.fold_in``) and says what changed; nothing is dropped silently: rows
without an item or a rating, and items entered twice, are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class WhatIf:
    """An edited rating list compared with the original.

    Attributes
    ----------
    item_ids, ratings
        The list to fold in: one rating per item (for an item entered twice, the last row).
    added, removed, changed
        Item ids rated only after the edit, only before it, or with a different rating.
    duplicates
        Item ids entered more than once; the last row of each was used.
    incomplete_rows
        Rows without an item id or a rating, ignored.
    """

    item_ids: np.ndarray
    ratings: np.ndarray
    added: list[str]
    removed: list[str]
    changed: list[str]
    duplicates: list[str]
    incomplete_rows: int

    @property
    def edited(self) -> bool:
        """Whether the list to fold in differs from the original."""
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> str:
        """One sentence, e.g. ``What-if: 1 added, 2 changed, 0 removed (12 ratings).``."""
        text = (
            f"What-if: {len(self.added)} added, {len(self.changed)} changed, "
            f"{len(self.removed)} removed ({len(self.item_ids)} ratings)."
        )
        if self.duplicates:
            text += f" Entered twice, last row used: {', '.join(self.duplicates)}."
        if self.incomplete_rows:
            text += f" {self.incomplete_rows} rows without an item or a rating were ignored."
        return text


def compare_ratings(before: pd.DataFrame, after: pd.DataFrame) -> WhatIf:
    """Compare two ``item_id, rating`` tables of one user (``after`` as edited)."""
    complete = after.dropna(subset=["item_id", "rating"])
    complete = complete[complete["item_id"].astype(str).str.strip() != ""]
    ids = complete["item_id"].astype(str).str.strip()
    counts = ids.value_counts()
    duplicates = sorted(counts[counts > 1].index)
    final = pd.Series(complete["rating"].astype(float).to_numpy(), index=ids.to_numpy())
    final = final[~final.index.duplicated(keep="last")]
    original = pd.Series(before["rating"].astype(float).to_numpy(),
                         index=before["item_id"].astype(str).to_numpy())  # fmt: skip
    common = final.index.intersection(original.index)
    changed = common[final[common].to_numpy() != original[common].to_numpy()]
    return WhatIf(
        item_ids=final.index.to_numpy(dtype=object),
        ratings=final.to_numpy(),
        added=sorted(final.index.difference(original.index)),
        removed=sorted(original.index.difference(final.index)),
        changed=sorted(changed),
        duplicates=duplicates,
        incomplete_rows=len(after) - len(complete),
    )


def with_previous_rank(after: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """Add ``rank_before`` (the item's rank in ``before``; missing = new in the list).

    Both are top-N tables with ``item_id`` and ``rank`` columns (``engine.recommend``).
    """
    previous = dict(zip(before["item_id"], before["rank"], strict=True))
    out = after.copy()
    out["rank_before"] = pd.array([previous.get(i) for i in out["item_id"]], dtype="Int64")
    return out
