"""A batch of new ratings merged into a dataset, every row accounted for.

Used by ``engine.update`` (``python -m engine update``). Conventions:

* the batch is read with the dataset's rating scale (``LoadOptions(scale=...)``,
  ``load_dataset(..., batch=True)``), so its rows are checked and rejected by the same
  rules and counted in its own load report;
* a (user, item) pair that the dataset already holds is **replaced** by the batch's
  rating (the batch is the newer feedback; timestamps are not compared). The replaced
  rating is counted as a ``duplicate`` rejection in the merged load report, so that
  ``rows_kept + rows_rejected == rows_read`` still holds over both files;
* user and item attributes are the dataset's; ids new in the batch have none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engine.data.attributes import attribute_coverage
from engine.data.load import fingerprint_of
from engine.data.types import MAX_EXAMPLES, LoadReport, RatingData, RatingScale
from engine.errors import DataError

_PAIR = ["user_id", "item_id"]


@dataclass(frozen=True)
class MergedRatings:
    """The dataset with a batch merged in, and what the batch changed.

    Attributes
    ----------
    data
        The merged ``RatingData`` (canonical: sorted, one row per pair, new fingerprint).
    added
        Batch ratings of pairs the dataset did not hold.
    replaced
        Batch ratings that replaced the dataset's rating of the same pair;
        ``replaced_changed`` of them with a different value.
    touched_users, touched_items
        Raw ids (sorted) with at least one rating in the batch.
    new_users, new_items
        The touched ids the dataset did not hold at all.
    """

    data: RatingData
    added: int
    replaced: int
    replaced_changed: int
    touched_users: np.ndarray
    touched_items: np.ndarray
    new_users: np.ndarray
    new_items: np.ndarray


def check_batch(
    batch: RatingData, name: str, scale: RatingScale, old_users: pd.Index, old_items: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """Check ``batch`` against the data ``name`` it is merged into; return its ids.

    Returns the batch's user and item ids (sorted, unique). ``old_users`` / ``old_items``:
    the ids of the data ``name``, on the rating scale ``scale``.

    Raises
    ------
    DataError
        A rating outside ``scale`` (load the batch with that scale, so it is rejected and
        counted), or no user and no item id in common with the data (ids of another kind,
        e.g. ``"u1"`` against ``"196"``: nothing in the batch could be related to a model).
    """
    values = batch.ratings["rating"].to_numpy()
    low, high = scale.low, scale.high
    if len(values) and (values.min() < low - 1e-9 or values.max() > high + 1e-9):
        raise DataError(
            f"{batch.name} holds ratings outside the saved scale {low:g}-{high:g}: load it "
            f"with that scale (LoadOptions(scale=({low:g}, {high:g}))) so they are rejected "
            "and counted."
        )
    touched_users = np.sort(batch.ratings["user_id"].unique().astype(object))
    touched_items = np.sort(batch.ratings["item_id"].unique().astype(object))
    if old_users.isin(touched_users).sum() == 0 and old_items.isin(touched_items).sum() == 0:
        raise DataError(
            f"None of the {len(touched_users):,} users and {len(touched_items):,} items of "
            f"{batch.name} is in {name} (e.g. user {touched_users[0]!r}, item "
            f"{touched_items[0]!r}; the saved data has e.g. user {old_users[0]!r}, item "
            f"{old_items[0]!r}): check that the batch uses the same kind of ids."
        )
    return touched_users, touched_items


def merge_batch(old: RatingData, batch: RatingData) -> MergedRatings:
    """Merge ``batch`` into ``old`` (see the module docstring for the conventions).

    Raises
    ------
    DataError
        The batch holds a rating outside ``old``'s scale (load it with that scale), or
        shares no user and no item id with ``old`` (ids of another kind, e.g. ``"u1"``
        against ``"196"``: nothing in it could be related to the model).
    """
    new = batch.ratings
    old_users = pd.Index(old.ratings["user_id"].unique())
    old_items = pd.Index(old.ratings["item_id"].unique())
    touched_users, touched_items = check_batch(batch, old.name, old.scale, old_users, old_items)
    old_keys = pd.MultiIndex.from_frame(old.ratings[_PAIR])
    new_keys = pd.MultiIndex.from_frame(new[_PAIR])
    replaced_mask = new_keys.isin(old_keys)
    kept_old = old.ratings[~old_keys.isin(new_keys)]
    both = new[replaced_mask].merge(old.ratings, on=_PAIR, suffixes=("", "_old"))
    changed = int((both["rating"] != both["rating_old"]).sum())
    ratings = (
        pd.concat([kept_old, new], ignore_index=True)
        .sort_values(_PAIR, kind="stable")
        .reset_index(drop=True)
        .astype({"user_id": "str", "item_id": "str", "rating": "float64", "timestamp": "Int64"})
    )
    replaced = int(replaced_mask.sum())
    report = _merged_report(old, batch, ratings, replaced)
    data = RatingData(
        ratings=ratings,
        users=old.users,
        items=old.items,
        scale=old.scale,
        fingerprint=fingerprint_of(ratings, old.users, old.items),
        report=report,
        name=f"{old.name} + {batch.name}",
        synthetic=old.synthetic,
    )
    return MergedRatings(
        data=data,
        added=len(new) - replaced,
        replaced=replaced,
        replaced_changed=changed,
        touched_users=touched_users,
        touched_items=touched_items,
        new_users=touched_users[~pd.Index(touched_users).isin(old_users)],
        new_items=touched_items[~pd.Index(touched_items).isin(old_items)],
    )


def _merged_report(
    old: RatingData, batch: RatingData, ratings: pd.DataFrame, replaced: int
) -> LoadReport:
    """One load report over both files; a replaced rating counts as a duplicate."""
    a, b = old.report, batch.report
    rejected = dict(a.rejected)
    for reason, count in b.rejected.items():
        rejected[reason] = rejected.get(reason, 0) + count
    if replaced:
        rejected["duplicate"] = rejected.get("duplicate", 0) + replaced
    batch_file = b.files[0].name if b.files else batch.name
    examples = {reason: list(rows) for reason, rows in a.examples.items()}
    for reason, rows in b.examples.items():
        examples.setdefault(reason, [])
        room = MAX_EXAMPLES - len(examples[reason])
        examples[reason] += [{"file": batch_file, **row} for row in rows[: max(room, 0)]]
    coverage = {}
    for kind, table in (("user", old.users), ("item", old.items)):
        if table is not None:
            coverage |= attribute_coverage(ratings[f"{kind}_id"], table, kind, old.name)
    sentence = (
        f"{batch.name} was added as new feedback: {len(batch.ratings) - replaced:,} ratings "
        f"added, {replaced:,} replaced the saved rating of the same (user, item) pair "
        "(counted as duplicates: the batch's rating is kept)."
    )
    return replace(
        a,
        files=[*a.files, *b.files],
        rows_read=a.rows_read + b.rows_read,
        rows_kept=len(ratings),
        rejected=rejected,
        examples=examples,
        attribute_coverage=coverage or a.attribute_coverage,
        warnings=[*a.warnings, *b.warnings, sentence],
    )
