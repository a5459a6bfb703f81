"""Bring an analysis up to date with a batch of new ratings, without retraining.

``update_model`` merges the batch into the data (``engine.data.merge``: a pair already
rated is replaced by the batch's rating) and updates the model exactly
(``engine.model.update``: touched users refit by the ridge user side on their merged
history, new users folded in, the global mean and, unless ``refresh_items``, the item
side kept as trained; with ``refresh_items`` the touched items get the mirror-image ridge
step and every user of a refreshed item is refit). ``update_analysis`` wraps the result
in a new ``Analysis`` whose model stage is the updated model; the old evaluation, lists,
audit and report rest on other data and are not carried over (they are computed on
demand). ``UpdateRecord`` says what changed; ``python -m engine update`` saves it in the
new analysis's manifest (``derived_from["record"]``) and in ``update.json``, and its report
shows it as "Model update" (``engine.report.update_section``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.analysis import Analysis
from engine.data.merge import merge_batch
from engine.data.types import RatingData
from engine.model.svd import TrainedModel
from engine.model.update import ArrayUpdate, update_arrays

#: Largest prediction changes listed in the record (one per touched user, largest first).
TOP_CHANGES = 20
#: Users scored at once when measuring prediction changes (bounds the memory used: one
#: users x items block of float64, 120 MB for 59,047 items).
_CHUNK = 256


@dataclass(frozen=True)
class UpdateRecord:
    """What an update changed.

    Attributes
    ----------
    source_fingerprint, fingerprint
        The dataset fingerprints before and after the update.
    batch
        The batch's name, fingerprint and load report counts (``rows_read``,
        ``rows_kept``, ``rejected`` by reason).
    refresh_items
        Whether touched items were refreshed.
    ratings_added, ratings_replaced, ratings_replaced_changed
        Batch ratings of new pairs; of pairs already rated (the batch's rating replaced the
        old one), and how many of those changed value.
    ratings_rejected
        Batch rows the loader rejected (sum of ``batch["rejected"]``).
    users_refit, new_users
        Users with a rating in the batch (all refit exactly), and how many of them are new.
    users_refit_for_items
        Other users refit because an item they rated was refreshed (0 without refresh).
    items_touched, items_refreshed, new_items
        Items with a rating in the batch; of those, given a new item side (all of them
        with ``refresh_items``, else 0); and how many are new to the model.
    new_items_without_item_side
        New items left with ``b_i = q_i = 0`` (without ``refresh_items``): the model cannot
        score them beyond ``mu + b_u``, and their ratings inform only their users' biases.
    largest_changes
        Up to ``TOP_CHANGES`` touched existing users, largest first: the item whose
        unclipped prediction moved most (over items the old model knew), before, after,
        change (after - before).
    max_abs_change, median_abs_change
        Over touched existing users, of each user's largest absolute change.
    seconds
        Wall-clock seconds: ``merge``, ``users``, ``items``, ``users_for_items``,
        ``changes`` (measuring them) and ``total``.
    notes
        Sentences on the conventions applied.
    """

    source_fingerprint: str
    fingerprint: str
    batch: dict[str, Any]
    refresh_items: bool
    ratings_added: int
    ratings_replaced: int
    ratings_replaced_changed: int
    ratings_rejected: int
    users_refit: int
    new_users: int
    users_refit_for_items: int
    items_touched: int
    items_refreshed: int
    new_items: int
    new_items_without_item_side: int
    largest_changes: list[dict[str, Any]]
    max_abs_change: float | None
    median_abs_change: float | None
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dictionary."""
        return asdict(self)


@dataclass(frozen=True)
class UpdateResult:
    """The updated model, the merged data it was updated to, and the record."""

    model: TrainedModel
    data: RatingData
    record: UpdateRecord


def prediction_changes(
    old: TrainedModel, new: TrainedModel, users: np.ndarray
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Each existing touched user's largest unclipped prediction change over the old items.

    ``users``: indices in ``new``; users ``old`` does not have are left out. Returns the
    ``TOP_CHANGES`` largest (``UpdateRecord.largest_changes``) and each user's largest
    absolute change. Only the models' arrays and id axes are read.
    """
    inter = new.interactions
    old_users = old.interactions.user_index(inter.user_ids[users])
    users, old_users = users[old_users >= 0], old_users[old_users >= 0]
    items = inter.item_index(old.interactions.item_ids)
    # after - before in one product: [p'_u, -p_u] . [q'_j, q_j], plus the changes of mu + b
    right = np.hstack([new.Q[items], old.Q]).T
    shift = (new.mu - old.mu) + (new.bi[items] - old.bi)
    rows: list[dict[str, Any]] = []
    largest = np.zeros(len(users))
    for start in range(0, len(users), _CHUNK):
        part = slice(start, start + _CHUNK)
        u, o = users[part], old_users[part]
        change = np.hstack([new.P[u], -old.P[o]]) @ right
        change += shift[None, :]
        change += (new.bu[u] - old.bu[o])[:, None]
        where = np.abs(change, out=change).argmax(axis=1)
        before = old.mu + old.bu[o] + old.bi[where] + np.einsum("uk,uk->u", old.P[o], old.Q[where])
        j = items[where]
        after = new.mu + new.bu[u] + new.bi[j] + np.einsum("uk,uk->u", new.P[u], new.Q[j])
        largest[part] = np.abs(after - before)
        for row, user in enumerate(u):
            rows.append({
                "user_id": str(inter.user_ids[user]),
                "item_id": str(old.interactions.item_ids[where[row]]),
                "before": float(before[row]),
                "after": float(after[row]),
                "change": float(after[row] - before[row]),
            })  # fmt: skip
    rows.sort(key=lambda r: -abs(r["change"]))
    return rows[:TOP_CHANGES], largest


def update_record(
    source_fingerprint: str,
    fingerprint: str,
    batch: RatingData,
    refresh_items: bool,
    added: int,
    replaced: int,
    replaced_changed: int,
    new_users: int,
    items_touched: int,
    new_items: int,
    steps: ArrayUpdate,
    changes: tuple[list[dict[str, Any]], np.ndarray],
    seconds: dict[str, float],
) -> UpdateRecord:
    """Return the ``UpdateRecord`` of an update: its counts, ``prediction_changes`` and notes.

    ``steps``: the model update's ``ArrayUpdate``; the other counts are the merge's.
    """
    largest, per_user = changes
    unsided = 0 if refresh_items else new_items
    notes = [
        "The global mean and, unless items are refreshed, every item's bias and factors are "
        "kept as trained; every user with a new rating is refit exactly on their whole history.",
        "A rating of a (user, item) pair already rated replaces the old rating.",
    ]
    if unsided:
        notes.append(
            f"{unsided:,} new item(s) have no bias or factors without --refresh-items: they "
            "are predicted mu + b_u (no item effect) and their ratings inform only their "
            "users' biases."
        )
    report = batch.report
    if report.rows_rejected:
        reasons = ", ".join(f"{n:,} {r}" for r, n in report.rejected.items() if n)
        notes.append(
            f"{report.rows_rejected:,} row(s) of {batch.name} were rejected and not added "
            f"({reasons}): the batch's load report (batch.rejected) counts them by reason."
        )
    return UpdateRecord(
        source_fingerprint=source_fingerprint,
        fingerprint=fingerprint,
        batch={
            "name": batch.name,
            "fingerprint": batch.fingerprint,
            "rows_read": report.rows_read,
            "rows_kept": report.rows_kept,
            "rejected": dict(report.rejected),
        },
        refresh_items=refresh_items,
        ratings_added=added,
        ratings_replaced=replaced,
        ratings_replaced_changed=replaced_changed,
        ratings_rejected=report.rows_rejected,
        users_refit=len(steps.users_refit),
        new_users=new_users,
        users_refit_for_items=len(steps.users_refit_for_items),
        items_touched=items_touched,
        items_refreshed=len(steps.items_refreshed),
        new_items=new_items,
        new_items_without_item_side=unsided,
        largest_changes=largest,
        max_abs_change=float(per_user.max()) if len(per_user) else None,
        median_abs_change=float(np.median(per_user)) if len(per_user) else None,
        seconds=seconds,
        notes=notes,
    )


def update_model(
    model: TrainedModel, old_data: RatingData, batch: RatingData, refresh_items: bool = False
) -> UpdateResult:
    """Merge ``batch`` into ``old_data`` and update ``model`` to it (module docstring).

    ``batch`` is new ratings loaded with ``load_dataset(..., batch=True)`` and
    ``old_data``'s scale; ``model`` was trained on ``old_data`` with the exact refit.

    Raises
    ------
    DataError
        The batch is outside the scale or shares no id with ``old_data`` (``merge_batch``).
    ConfigError
        The model has no exact user refit.
    """
    start = time.perf_counter()
    merged = merge_batch(old_data, batch)
    merge_s = time.perf_counter() - start
    new, steps = update_arrays(
        model, merged.data.ratings, merged.touched_users, merged.touched_items,
        refresh_items=refresh_items, fingerprint=merged.data.fingerprint,
    )  # fmt: skip
    update_s = time.perf_counter() - start
    changed = time.perf_counter()
    changes = prediction_changes(model, new, steps.users_refit)
    seconds = {"merge": merge_s, **steps.seconds, "changes": time.perf_counter() - changed}
    seconds["total"] = update_s + seconds["changes"]
    record = update_record(
        old_data.fingerprint, merged.data.fingerprint, batch, refresh_items, merged.added,
        merged.replaced, merged.replaced_changed, len(merged.new_users),
        len(merged.touched_items), len(merged.new_items), steps, changes, seconds,
    )  # fmt: skip
    return UpdateResult(new, merged.data, record)


def update_analysis(
    analysis: Analysis, batch: RatingData, refresh_items: bool = False
) -> tuple[Analysis, UpdateRecord]:
    """Return a new analysis of the merged data whose model stage is the updated model.

    The analysis keeps ``analysis``'s settings. Only the model stage is set: the old
    evaluation, lists, audit and report rest on the old data, so they are not carried
    over and are computed on demand from the new analysis (the evaluation is then a
    K-fold retrain on the merged data, which measures the method, not this update).
    """
    result = update_model(analysis.model, analysis.data, batch, refresh_items)
    updated = Analysis(result.data, analysis.settings)
    updated.adopt("model", result.model)
    updated.notes.append(
        f"Model updated from the analysis of {analysis.data.name} "
        f"({analysis.data.fingerprint[:12]}) with {batch.name}: "
        f"{result.record.users_refit:,} users refit, {result.record.items_refreshed:,} items "
        "refreshed; no retraining."
    )
    return updated, result.record
