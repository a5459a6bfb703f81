"""A run kept in Spark brought up to date with a batch of new ratings, without Spark.

``python -m engine update KEPT --ratings NEW --out OUT`` on a kept run (``engine.saved.kept``)
does what it does on a saved analysis (``engine.update``, ``engine.model.update``): the batch
is merged into the ratings (a pair already rated is replaced by the batch's rating), every
user with a rating in the batch is refit exactly by the ridge user side on their whole
merged history, new users are folded in, the global mean and (unless ``refresh_items``) the
item side are kept as trained, new items start at ``b_i = q_i = 0``; with
``refresh_items`` the touched items get the mirror-image ridge step and every user of a
refreshed item is refit on the new item side. The arrays equal ``update_model``'s on the
same ratings (``tests/test_kept_update.py``).

It reads the user side (``engine.saved.user_side``) one ratings part at a time, never the
whole ratings: the axes are the union of the run's ids and the batch's (sorted, as
``Interactions``), each part is re-indexed to them, the batch's ratings of the part's users
are merged in, the part's touched users are refit, and the part is written to
``OUT/user_side/`` before the next is read. New users go to the part whose range of the new
axis holds them. With ``refresh_items`` the touched items' ratings are kept from that pass
(for the item step) and the parts are read once more, from ``OUT``, to refit the users of
refreshed items. Memory: the batch, one part, the model's arrays and, with
``refresh_items``, the touched items' ratings.

``OUT`` is a kept run (a kept run there before is replaced, with its ``report/`` and
``update.json``; a saved analysis there is refused): the new user side, and the source
run's report parts and audit written again unchanged, with ``derived_from`` in its
manifest (``SavedKeptRun.derived_from``): the source run's data fingerprint and key, the
``UpdateRecord`` and ``after`` (the merged data's name, fingerprint, sizes and dates). The
report parts and audit rest on the data before the batch (an update does not evaluate or
audit again; ``run --engine spark --keep-in-spark`` on the merged data does): the report
and the dashboard say so. The merged data's fingerprint is ``"update:"`` and the SHA-256 of
the source run's fingerprint and the batch's (the ratings are not in one place to hash).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.merge import check_batch
from engine.data.types import RatingData
from engine.model.interactions import Interactions
from engine.model.ridge import fit_item, fit_user
from engine.model.svd import TrainedModel
from engine.model.update import ArrayUpdate, solve_each
from engine.report.update_section import update_origin
from engine.saved.errors import SavedAnalysisError, refuse
from engine.saved.kept import (
    SavedKeptRun,
    check_kept_target,
    clear_manifest,
    open_kept,
    save_kept,
)
from engine.saved.manifest import NAME
from engine.saved.user_side import (
    FOLDER,
    UserSide,
    part_path,
    side_tables,
    write_parts,
    write_side_tables,
)
from engine.update import UpdateRecord, prediction_changes, update_record


def _axis(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Return the sorted union of raw ids, in ``Interactions.from_frame``'s order."""
    ids = pd.Series(np.concatenate([old, new]).astype(object), dtype="str")
    return np.asarray(pd.factorize(ids, sort=True)[1], dtype=object)


def _model(
    side: UserSide, arrays: tuple, user_ids: np.ndarray, item_ids: np.ndarray
) -> TrainedModel:
    """Return a ``TrainedModel`` of ``arrays`` (``bu, bi, P, Q``) on these axes, without ratings.

    What ``prediction_changes`` reads: the arrays and the id axes.
    """
    empty = Interactions(user_ids, item_ids, np.zeros(len(user_ids) + 1, dtype=np.int64),
                         np.zeros(0, dtype=np.int64), np.zeros(0))  # fmt: skip
    return TrainedModel(side.config, side.mu, *arrays, empty, side.scale, side.key)


def _refit(
    side: UserSide, part: pd.DataFrame, users: np.ndarray, arrays: tuple[np.ndarray, ...]
) -> None:
    """Refit each of ``users`` (all in ``part``) on its ratings there: ``bu``, ``P`` in place."""
    bu, bi, P, Q = arrays
    solve_each(fit_user, side.mu, part["u"].to_numpy(np.int64), part["i"].to_numpy(np.int64),
               part["rating"].to_numpy(np.float64), users, (bi, Q), (bu, P),
               side.config.refit_lambda)  # fmt: skip


class _Merge:
    """The pass over the parts: each re-indexed, merged with the batch, its users refit."""

    def __init__(self, side: UserSide, batch: pd.DataFrame, arrays: tuple, n_users: int,
                 n_items: int, keep_items: np.ndarray | None) -> None:  # fmt: skip
        self.side, self.batch, self.arrays = side, batch, arrays
        self.n_users, self.n_items, self.keep_items = n_users, n_items, keep_items
        self.added = self.replaced = self.changed = 0
        self.counts = np.zeros(n_items, dtype=np.int64)
        self.first: int | None = None
        self.last: int | None = None
        self.kept: list[pd.DataFrame] = []  # ratings of the items to refresh
        self.refit_seconds = 0.0

    def parts(self, u_map: np.ndarray, i_map: np.ndarray) -> Iterator[pd.DataFrame]:
        """Yield the merged parts in order (see the module docstring)."""
        bounds = self.side.bounds
        starts = u_map[bounds[:, 0]]
        starts[0] = 0
        ends = np.append(starts[1:], self.n_users)
        batch_u = self.batch["u"].to_numpy(np.int64)
        for number, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
            old = self.side.part(number)
            frame = pd.DataFrame({
                "u": u_map[old["u"].to_numpy(np.int64)].astype(np.int32),
                "i": i_map[old["i"].to_numpy(np.int64)].astype(np.int32),
                "rating": old["rating"].to_numpy(np.float64),
                "timestamp": pd.array(old["timestamp"], dtype="Int64"),
            })  # fmt: skip
            new = self.batch.iloc[np.searchsorted(batch_u, lo) : np.searchsorted(batch_u, hi)]
            yield self._merged(frame, new)

    def _merged(self, frame: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
        key = frame["u"].to_numpy(np.int64) * self.n_items + frame["i"].to_numpy(np.int64)
        new_key = new["u"].to_numpy(np.int64) * self.n_items + new["i"].to_numpy(np.int64)
        replaced = np.isin(key, new_key)
        before = frame.loc[replaced].set_index(key[replaced])["rating"]
        after = pd.Series(new["rating"].to_numpy(), index=new_key)
        self.changed += int((before != after.reindex(before.index)).sum())
        self.replaced += int(replaced.sum())
        self.added += len(new) - int(replaced.sum())
        merged = pd.concat([frame[~replaced], new], ignore_index=True)
        merged = merged.sort_values(["u", "i"], ignore_index=True)
        self.counts += np.bincount(merged["i"].to_numpy(np.int64), minlength=self.n_items)
        stamps = merged["timestamp"].dropna()
        if len(stamps):
            first, last = int(stamps.min()), int(stamps.max())
            self.first = first if self.first is None else min(self.first, first)
            self.last = last if self.last is None else max(self.last, last)
        started = time.perf_counter()
        _refit(self.side, merged, np.unique(new["u"].to_numpy(np.int64)), self.arrays)
        self.refit_seconds += time.perf_counter() - started
        if self.keep_items is not None:
            chosen = np.isin(merged["i"].to_numpy(np.int64), self.keep_items)
            self.kept.append(merged.loc[chosen, ["u", "i", "rating"]])
        return merged


def _refresh_items(side: UserSide, merge: _Merge, items: np.ndarray, arrays: tuple) -> np.ndarray:
    """Step 3: each of ``items`` refit on its raters (``fit_item``); return the raters.

    Raters in ascending user order, as ``update_arrays`` takes them.
    """
    bu, bi, P, Q = arrays
    rows = pd.concat(merge.kept, ignore_index=True).sort_values(["i", "u"], ignore_index=True)
    u = rows["u"].to_numpy(np.int64)
    solve_each(fit_item, side.mu, rows["i"].to_numpy(np.int64), u,
               rows["rating"].to_numpy(np.float64), items, (bu, P), (bi, Q),
               side.config.refit_lambda)  # fmt: skip
    return np.unique(u)


def _batch_frame(batch: RatingData, user_ids: np.ndarray, item_ids: np.ndarray) -> pd.DataFrame:
    """Return the batch as ``u, i, rating, timestamp`` on the new axes, by ``u`` then ``i``."""
    ratings = batch.ratings
    frame = pd.DataFrame({
        "u": pd.Index(user_ids).get_indexer(ratings["user_id"].astype(object)).astype(np.int32),
        "i": pd.Index(item_ids).get_indexer(ratings["item_id"].astype(object)).astype(np.int32),
        "rating": ratings["rating"].to_numpy(np.float64),
        "timestamp": pd.array(ratings["timestamp"], dtype="Int64"),
    })  # fmt: skip
    return frame.sort_values(["u", "i"], ignore_index=True)


def merged_fingerprint(source_fingerprint: str, batch_fingerprint: str) -> str:
    """Return the fingerprint of a kept run's data with a batch merged in (module docstring)."""
    text = f"kept-update-v1\n{source_fingerprint}\n{batch_fingerprint}".encode()
    return "update:" + hashlib.sha256(text).hexdigest()


def update_kept(
    source: str | Path | SavedKeptRun,
    batch: RatingData,
    out: str | Path,
    refresh_items: bool = False,
) -> tuple[SavedKeptRun, UpdateRecord]:
    """Update the kept run ``source`` with ``batch`` into the kept run ``out`` (module docstring).

    ``source``: the run's folder or zip, or the run ``open_kept`` opened from it; ``batch``:
    new ratings loaded with ``load_dataset(..., batch=True)`` and the run's scale. Returns
    the updated run, opened from ``out`` (every file verified), and the record.

    Raises
    ------
    SavedAnalysisError
        ``source`` is not a kept run, was saved without its user side, or is ``out``;
        ``out`` holds a saved analysis or other files (``check_kept_target``).
    DataError
        The batch is outside the run's scale or shares no id with it (``check_batch``).
    """
    started = time.perf_counter()
    out = Path(out)
    run = source if isinstance(source, SavedKeptRun) else open_kept(source)
    side = run.users
    where = run.path / NAME if run.path.is_dir() else run.path
    if side is None:
        raise refuse(where, "is a run kept in Spark saved without its user side "
                     "(--no-user-side, or an older schema), so it has no user vectors or "
                     "ratings to update", "run it again with run --engine spark "
                     "--keep-in-spark, without --no-user-side")  # fmt: skip
    if run.path.resolve() == out.resolve():
        raise SavedAnalysisError(f"{out} is the run being updated: write the update to another "
                                 "folder, so the original stays as it was.")  # fmt: skip
    check_kept_target(out)  # before any work: a folder that is not a kept run's is refused
    touched_users, touched_items = check_batch(
        batch, side.name, side.load.scale, pd.Index(side.user_ids), pd.Index(side.item_ids)
    )
    user_ids, item_ids = _axis(side.user_ids, touched_users), _axis(side.item_ids, touched_items)
    u_map, i_map = (pd.Index(user_ids).get_indexer(side.user_ids),
                    pd.Index(item_ids).get_indexer(side.item_ids))  # fmt: skip
    k = side.Q.shape[1]
    bu, P = np.zeros(len(user_ids)), np.zeros((len(user_ids), k))
    bi, Q = np.zeros(len(item_ids)), np.zeros((len(item_ids), k))
    bu[u_map], P[u_map], bi[i_map], Q[i_map] = side.bu, side.P, side.bi, side.Q
    arrays = (bu, bi, P, Q)
    frame = _batch_frame(batch, user_ids, item_ids)
    users = np.unique(frame["u"].to_numpy(np.int64))
    items = np.unique(frame["i"].to_numpy(np.int64))
    merge = _Merge(side, frame, arrays, len(user_ids), len(item_ids),
                   items if refresh_items else None)  # fmt: skip
    replaced = (out / NAME).exists()  # a kept run's (clear_manifest refuses anything else)
    clear_manifest(out)
    shutil.rmtree(out / FOLDER, ignore_errors=True)
    if replaced:  # its report and record rest on another update: not left beside this one
        shutil.rmtree(out / "report", ignore_errors=True)
        (out / "update.json").unlink(missing_ok=True)
    files, bounds = write_parts(out, merge.parts(u_map, i_map))
    seconds = {"merge": time.perf_counter() - started - merge.refit_seconds,
               "users": merge.refit_seconds}  # fmt: skip
    refreshed, extra = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if refresh_items:
        step = time.perf_counter()
        affected = _refresh_items(side, merge, items, arrays)
        refreshed = items
        seconds["items"] = time.perf_counter() - step
        step = time.perf_counter()
        for number, (first, last) in enumerate(bounds):
            listed = affected[(affected >= first) & (affected <= last)]
            if len(listed):
                part = pd.read_parquet(out / part_path(number))
                _refit(side, part, listed, arrays)
        extra = np.setdiff1d(affected, users)
        seconds["users_for_items"] = time.perf_counter() - step
    user_table, item_table = side_tables(user_ids, bu, P, item_ids, bi, Q, merge.counts)
    files |= write_side_tables(out, side.mu, user_table, item_table, bounds,
                               side.user_attributes, side.item_attributes)  # fmt: skip
    step = time.perf_counter()
    changes = prediction_changes(
        _model(side, (side.bu, side.bi, side.P, side.Q), side.user_ids, side.item_ids),
        _model(side, arrays, user_ids, item_ids), users,
    )  # fmt: skip
    seconds["changes"] = time.perf_counter() - step
    seconds["total"] = time.perf_counter() - started
    source_fingerprint = str(run.parts.provenance["dataset"]["fingerprint"])
    fingerprint = merged_fingerprint(source_fingerprint, batch.fingerprint)
    new_users = int((~pd.Index(touched_users).isin(side.user_ids)).sum())
    new_items = int((~pd.Index(touched_items).isin(side.item_ids)).sum())
    record = update_record(
        source_fingerprint, fingerprint, batch, refresh_items, merge.added, merge.replaced,
        merge.changed, new_users, len(touched_items), new_items,
        ArrayUpdate(users, refreshed, extra, {}), changes, seconds,
    )  # fmt: skip
    after = {"name": f"{side.name} + {batch.name}", "fingerprint": fingerprint,
             "ratings": int(merge.counts.sum()), "users": len(user_ids), "items": len(item_ids),
             "first_timestamp": merge.first, "last_timestamp": merge.last}  # fmt: skip
    derived = update_origin(source_fingerprint, run.key, record.to_dict()) | {"after": after}
    save_kept(out, run.parts, run.result, str(run.manifest["evaluation"]), files, derived)
    return open_kept(out), record
