"""Load an external system's top-N lists or rating predictions, counting every row.

Files are read like rating files (``engine.data.load.read_source``,
``engine.data.tables.read_table``: CSV/TSV/semicolon/``::``/Parquet/JSON/Excel, sniffed,
with or without header) and their columns found by ``engine.external.columns``. Ids are
kept as exact strings (``engine.data.validate.ids_as_strings``), so ``"001"`` is not ``"1"``.

Rules, applied in this order (each rejected row counted under the first reason that
applies, ``EXTERNAL_REJECT_REASONS``; ``kept + rejected == read`` always):

1. Row checks: malformed row, empty user id, empty item id, empty system name (when the
   file has a ``system`` column), then a lists file's rank (not a whole number >= 1) or,
   without a rank column, its score (not a finite number); a predictions file's prediction
   (not a finite number). A score that is missing beside a valid rank is kept as NaN.
2. Order of a user's list (per system): by rank; rows sharing a (user, rank) are *rank
   ties*, ordered by score (higher first, when given) then file order. A score-only file
   is ordered by score, higher first, equal scores (*score ties*) by ascending item id (the
   built-in lists' rule). Ties are counted, never rejected.
3. Duplicates: a (user, item) pair seen again for the same system keeps its first, best
   placed row; the others are rejected (``duplicate``). Predictions keep the first row.
4. Positions: each remaining row's ``rank`` is its position 1, 2, ... in that order, so
   gaps and ties in the file's ranks are closed.
5. Ids unknown to the rating data are rejected (``unknown_user``, ``unknown_item``) *after*
   positions are set, so the other items keep the position the user saw; distinct unknown
   ids are counted.
6. Lists are then compared with ``k``: users with fewer items (short lists) and with more
   (the audit reads their top ``k``) are counted per system; users of the rating data with
   no list at all are counted too.
Predictions outside the rating scale are kept as given (accuracy clips them to the scale,
as the built-in audit does) and counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.data.load import read_source
from engine.data.tables import RawTable, read_table
from engine.data.types import MAX_EXAMPLES, RatingData, Source
from engine.data.validate import ids_as_strings, ratings_as_numbers
from engine.errors import DataError
from engine.external.columns import KNOWN_NAMES, detect_external_columns
from engine.external.types import (
    EXTERNAL_REJECT_REASONS,
    ExternalLoadReport,
    ExternalSystem,
    OutputKind,
    example_text,
)

_REASONS = tuple(EXTERNAL_REJECT_REASONS)
LIST_COLUMNS = ["user_id", "rank", "item_id", "score"]
PREDICTION_COLUMNS = ["user_id", "item_id", "prediction"]


def _reject(reason: np.ndarray, mask: np.ndarray, why: str) -> None:
    reason[np.asarray(mask, bool) & (reason == 0)] = _REASONS.index(why) + 1


def _plain(value: object) -> object:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (int, float, str)) else str(value)


def _tally(reason: np.ndarray, raw: RawTable, columns: dict[str, str]):
    rejected: dict[str, int] = {}
    examples: dict[str, list[dict[str, object]]] = {}
    if raw.malformed:
        rejected["malformed_row"] = len(raw.malformed)
        examples["malformed_row"] = [{"line": line, "fields": n}
                                     for line, n in raw.malformed[:MAX_EXAMPLES]]  # fmt: skip
    counts = np.bincount(reason, minlength=len(_REASONS) + 1)
    for code, why in enumerate(_REASONS, start=1):
        if counts[code]:
            rejected[why] = int(counts[code])
            rows = np.flatnonzero(reason == code)[:MAX_EXAMPLES]
            examples[why] = [
                {"row": int(r) + 1, **{f: _plain(raw.frame[c].iat[r]) for f, c in columns.items()}}
                for r in rows
            ]
    return rejected, examples


def _read(source: Source, kind: OutputKind, mapping: dict[str, str] | None, notes: list[str]):
    file = read_source(source)
    raw = read_table(file, KNOWN_NAMES, role=kind)
    if len(raw.frame) == 0:
        raise DataError(
            f"{file.name} holds no {kind} rows: export the file again with its rows "
            f"({'user, item, rank or score' if kind == 'lists' else 'user, item, prediction'})."
        )
    notes += raw.notes
    columns, detection = detect_external_columns(raw.frame, kind, mapping, file.name, notes)
    return raw, columns, detection


def _system_names(
    raw: RawTable, columns: dict[str, str], name: str | None, notes: list[str]
) -> pd.Series:
    if "system" in columns:
        if name:
            notes.append(
                f"{raw.name} has a system column ({columns['system']}): its values name the "
                f"systems, and the name {name!r} given for the file was not used."
            )
        return ids_as_strings(raw.frame[columns["system"]])
    fallback = name or raw.name.rsplit(".", 1)[0] or "external"
    return pd.Series(fallback, index=raw.frame.index, dtype=object)


def _known(data: RatingData, users: pd.Series, items: pd.Series, reason: np.ndarray):
    """Reject ids unknown to ``data`` among rows still kept; return distinct unknown counts."""
    kept = reason == 0
    user_known = users.isin(pd.Index(pd.unique(data.ratings["user_id"]))).to_numpy()
    item_known = items.isin(pd.Index(pd.unique(data.ratings["item_id"]))).to_numpy()
    _reject(reason, kept & ~user_known, "unknown_user")
    _reject(reason, kept & ~item_known, "unknown_item")
    return (int(users[kept & ~user_known].nunique()), int(items[kept & ~item_known].nunique()))


def _report(raw, kind, columns, detection, reason, **extra) -> ExternalLoadReport:
    rejected, examples = _tally(reason, raw, columns)
    return ExternalLoadReport(
        name=raw.name, kind=kind, format=raw.format, encoding=raw.encoding,
        delimiter=raw.delimiter, header=raw.header, columns=columns, detection=detection,
        rows_read=raw.rows_read, rows_kept=int((reason == 0).sum()), rejected=rejected,
        examples=examples, **extra,
    )  # fmt: skip


def load_lists(
    source: Source,
    data: RatingData,
    *,
    name: str | None = None,
    k: int = 10,
    mapping: dict[str, str] | None = None,
) -> list[ExternalSystem]:
    """Load top-N lists (``user, item, rank`` or ``user, item, score``, optional ``system``).

    Returns one ``ExternalSystem`` per system of the file (by ``system`` column value, else
    one named ``name`` or after the file), each with ``lists`` (``LIST_COLUMNS``) and the
    file's ``ExternalLoadReport``. The rules are in the module docstring.

    Raises
    ------
    DataError
        The file cannot be read, its columns cannot be found, or no row survives.
    """
    notes: list[str] = []
    raw, columns, detection = _read(source, "lists", mapping, notes)
    frame, n = raw.frame, len(raw.frame)
    users = ids_as_strings(frame[columns["user"]])
    items = ids_as_strings(frame[columns["item"]])
    systems = _system_names(raw, columns, name, notes)
    rank = ratings_as_numbers(frame[columns["rank"]]) if "rank" in columns else None
    score = (ratings_as_numbers(frame[columns["score"]]) if "score" in columns
             else pd.Series(np.nan, index=frame.index))  # fmt: skip
    reason = np.zeros(n, dtype=np.int8)
    _reject(reason, users.isna().to_numpy(), "missing_user_id")
    _reject(reason, items.isna().to_numpy(), "missing_item_id")
    _reject(reason, systems.isna().to_numpy(), "missing_system")
    if rank is not None:
        r = rank.to_numpy()
        _reject(reason, np.isnan(r) | (r < 1) | (r != np.floor(r)), "bad_rank")
    else:
        _reject(reason, score.isna().to_numpy(), "bad_score")
    table = pd.DataFrame({"system": systems, "user_id": users, "item_id": items,
                          "score": score.astype(float), "row": np.arange(n)})  # fmt: skip
    valid = table[reason == 0]
    if rank is not None:
        valid = valid.assign(order=rank[reason == 0].to_numpy())
        keys = valid.assign(neg=-valid["score"].fillna(-np.inf))
        valid = keys.sort_values(["system", "user_id", "order", "neg", "row"], kind="stable")
        rank_ties = int(valid.duplicated(["system", "user_id", "order"]).sum())
        ties = {"rank_ties": rank_ties}
    else:
        valid = valid.assign(neg=-valid["score"])
        valid = valid.sort_values(["system", "user_id", "neg", "item_id"], kind="stable")
        ties = {"score_ties": int(valid.duplicated(["system", "user_id", "neg"]).sum())}
    duplicate = valid.duplicated(["system", "user_id", "item_id"], keep="first")
    _reject(reason, np.isin(np.arange(n), valid.loc[duplicate, "row"].to_numpy()), "duplicate")
    valid = valid[~duplicate]
    valid = valid.assign(rank=valid.groupby(["system", "user_id"], sort=False).cumcount() + 1)
    unknown_users, unknown_items = _known(data, users, items, reason)
    kept = valid[reason[valid["row"].to_numpy()] == 0]
    if kept.empty:
        raise DataError(
            f"No row of {raw.name} is usable: "
            + _why_empty(reason, unknown_users, unknown_items, "lists")
        )
    out, per_system = [], {}
    all_users = int(data.ratings["user_id"].nunique())
    for system, rows in kept.groupby("system", sort=True):
        lists = pd.DataFrame({
            "user_id": rows["user_id"].astype(object).to_numpy(),
            "rank": rows["rank"].astype("int64").to_numpy(),
            "item_id": rows["item_id"].astype(object).to_numpy(),
            "score": rows["score"].astype("float64").to_numpy(),
        }).sort_values(["user_id", "rank"], kind="stable").reset_index(drop=True)  # fmt: skip
        lengths = lists.groupby("user_id").size()
        per_system[str(system)] = {
            "rows": len(lists), "users": len(lengths),
            "users_without_list": all_users - len(lengths),
            "short_lists": int((lengths < k).sum()), "long_lists": int((lengths > k).sum()),
            "mean_length": float(lengths.mean()),
        }  # fmt: skip
        out.append((str(system), lists))
    notes += _list_notes(raw.name, per_system, k, ties)
    report = _report(raw, "lists", columns, detection, reason, unknown_users=unknown_users,
                     unknown_items=unknown_items, ties=ties, k=k, systems=per_system,
                     notes=notes)  # fmt: skip
    return [ExternalSystem(name, lists=lists, load_reports=(report,)) for name, lists in out]


def _why_empty(reason: np.ndarray, unknown_users: int, unknown_items: int, kind: str) -> str:
    counts = np.bincount(reason, minlength=len(_REASONS) + 1)
    top = _REASONS[int(np.argmax(counts[1:]))]
    if top in ("unknown_user", "unknown_item"):
        return (
            f"its {unknown_users:,} users and {unknown_items:,} items are not in the rating "
            "data: check that the file belongs to this dataset and that ids are written the "
            "same way (ids are exact strings, '001' is not '1')."
        )
    return (
        f"every row was rejected, most because {EXTERNAL_REJECT_REASONS[top]}: check the "
        f"column mapping (a {kind} file needs "
        f"{'user, item and rank or score' if kind == 'lists' else 'user, item and prediction'})."
    )


def _list_notes(name: str, per_system: dict, k: int, ties: dict[str, int]) -> list[str]:
    notes = []
    if ties.get("rank_ties"):
        notes.append(
            f"{ties['rank_ties']:,} rows of {name} share a rank with another item of the same "
            "user: they were ordered by score (higher first), then by file order, and given "
            "consecutive positions."
        )
    if ties.get("score_ties"):
        notes.append(
            f"{ties['score_ties']:,} rows of {name} have the same score as the item before "
            "them in the user's list: equal scores were ordered by item id."
        )
    for system, s in per_system.items():
        if s["short_lists"]:
            notes.append(
                f"{system}: {s['short_lists']:,} of {s['users']:,} users have fewer than k = "
                f"{k} items (mean list length {s['mean_length']:.1f}): their lists are audited "
                "as they are."
            )
        if s["long_lists"]:
            notes.append(
                f"{system}: {s['long_lists']:,} users have more than k = {k} items: the audit "
                "reads their top k; every score is used by the surrogate."
            )
        if s["users_without_list"]:
            notes.append(
                f"{system}: {s['users_without_list']:,} users of the rating data have no list."
            )
    return notes


def load_predictions(
    source: Source,
    data: RatingData,
    *,
    name: str | None = None,
    mapping: dict[str, str] | None = None,
) -> list[ExternalSystem]:
    """Load rating predictions (``user, item, prediction``, optional ``system``).

    Returns one ``ExternalSystem`` per system with ``predictions`` (``PREDICTION_COLUMNS``)
    and the file's report; the rules are in the module docstring.

    Raises
    ------
    DataError
        The file cannot be read, its columns cannot be found, or no row survives.
    """
    notes: list[str] = []
    raw, columns, detection = _read(source, "predictions", mapping, notes)
    frame, n = raw.frame, len(raw.frame)
    users = ids_as_strings(frame[columns["user"]])
    items = ids_as_strings(frame[columns["item"]])
    systems = _system_names(raw, columns, name, notes)
    value = ratings_as_numbers(frame[columns["prediction"]])
    reason = np.zeros(n, dtype=np.int8)
    _reject(reason, users.isna().to_numpy(), "missing_user_id")
    _reject(reason, items.isna().to_numpy(), "missing_item_id")
    _reject(reason, systems.isna().to_numpy(), "missing_system")
    _reject(reason, value.isna().to_numpy(), "bad_prediction")
    table = pd.DataFrame({"system": systems, "user_id": users, "item_id": items})
    # a duplicate of a rejected row is judged on its own: only duplicates of kept rows count
    first_valid = table[reason == 0].duplicated(["system", "user_id", "item_id"])
    duplicate = np.zeros(n, bool)
    duplicate[np.flatnonzero(reason == 0)[first_valid.to_numpy()]] = True
    _reject(reason, duplicate, "duplicate")
    unknown_users, unknown_items = _known(data, users, items, reason)
    kept = reason == 0
    if not kept.any():
        raise DataError(
            f"No row of {raw.name} is usable: "
            + _why_empty(reason, unknown_users, unknown_items, "predictions")
        )
    low, high = data.scale.low, data.scale.high
    out, per_system = [], {}
    for system, rows in table.assign(prediction=value)[kept].groupby("system", sort=True):
        predictions = pd.DataFrame({
            "user_id": rows["user_id"].astype(object).to_numpy(),
            "item_id": rows["item_id"].astype(object).to_numpy(),
            "prediction": rows["prediction"].astype("float64").to_numpy(),
        }).sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)  # fmt: skip
        values = predictions["prediction"]
        outside = int(((values < low) | (values > high)).sum())
        per_system[str(system)] = {"rows": len(predictions),
                                   "users": int(predictions["user_id"].nunique()),
                                   "out_of_scale": outside}  # fmt: skip
        if outside:
            notes.append(
                f"{system}: {outside:,} predictions lie outside the rating scale {low:g}-"
                f"{high:g}; they are kept as given and clipped to the scale for accuracy."
            )
        out.append((str(system), predictions))
    report = _report(raw, "predictions", columns, detection, reason,
                     unknown_users=unknown_users, unknown_items=unknown_items,
                     systems=per_system, notes=notes)  # fmt: skip
    return [ExternalSystem(s, predictions=p, load_reports=(report,)) for s, p in out]


def merge_systems(systems: list[ExternalSystem]) -> list[ExternalSystem]:
    """Join the lists and the predictions of systems with the same name into one system.

    Raises
    ------
    DataError
        Two lists files (or two predictions files) give the same system name.
    """
    merged: dict[str, ExternalSystem] = {}
    for system in systems:
        held = merged.get(system.name)
        if held is None:
            merged[system.name] = system
            continue
        clash = (held.lists is not None and system.lists is not None) or (
            held.predictions is not None and system.predictions is not None
        )
        if clash:
            raise DataError(
                f"Two files give {'lists' if system.lists is not None else 'predictions'} for "
                f"the system {system.name!r}: give each file its own system name (CLI: "
                "--system-name NAME after the file)."
            )
        merged[system.name] = ExternalSystem(
            system.name,
            lists=held.lists if held.lists is not None else system.lists,
            predictions=held.predictions if held.predictions is not None else system.predictions,
            load_reports=held.load_reports + system.load_reports,
        )
    return list(merged.values())


def preview_external(
    source: Source, kind: OutputKind, rows: int = 5
) -> tuple[list[str], dict[str, str], pd.DataFrame]:
    """Return ``(columns, detected {field: column}, first rows)`` of an external file.

    What a mapping form starts from; ``DataError`` as ``load_lists`` when unreadable.
    """
    notes: list[str] = []
    raw, columns, _ = _read(source, kind, None, notes)
    return [str(c) for c in raw.frame.columns], columns, raw.frame.head(rows)


def external_rejected_table(report: ExternalLoadReport) -> pd.DataFrame:
    """Return ``reason, rows, distinct ids, example`` per rejection reason of a report.

    ``distinct ids``: the unknown users or items (``""`` for other reasons); ``example``: the
    first example row in words (``engine.external.types.example_text``).
    """
    distinct = {"unknown_user": f"{report.unknown_users:,} users",
                "unknown_item": f"{report.unknown_items:,} items"}  # fmt: skip
    rows = [
        (EXTERNAL_REJECT_REASONS[r], f"{n:,}", distinct.get(r, ""),
         "; ".join(example_text(e) for e in report.examples.get(r, [])[:2]))
        for r, n in report.rejected.items()
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["reason", "rows", "distinct ids", "example"])
