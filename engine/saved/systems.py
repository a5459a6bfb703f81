"""External systems kept in a saved analysis: lists, predictions, load reports, held-out ratings.

A saved analysis may carry the analyst's own systems (``engine.external``) as the manifest
stage ``systems`` (optional; analyses saved without it open as before)::

    systems/systems.json               names, which tables, load reports, held-out source
    systems/lists_<i>.parquet          system i's lists: user_id, rank, item_id, score
    systems/predictions_<i>.parquet    system i's predictions: user_id, item_id, prediction
    systems/heldout.parquet            the held-out ratings: user_id, item_id, rating, timestamp

The stage's key is the SHA-256 of its files' hashes (the systems are inputs, like the data:
they are kept whatever code version saved them) and it rests on the data's fingerprint.
Every file is hashed and sized in the manifest like any other; reading refuses, with one
``SavedAnalysisError`` sentence naming the file: a table with other columns or types, a
missing id or rank, a NaN or infinite prediction, an infinite score (a NaN score is a list
without scores), a user or item id not in the saved data, ranks that are not 1, 2, 3, ...
per user, a repeated (user, item), held-out ratings that are not the data's ratings after
the saved cut (temporal) or that are outside the scale, already rated or repeated (file),
and a ``systems.json`` whose fields are not exactly as written here.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.data.types import RatingData
from engine.external.heldout import HeldOut, heldout_at
from engine.external.types import EXTERNAL_REJECT_REASONS, ExternalLoadReport, ExternalSystem
from engine.saved import jsonio
from engine.saved.checks import check_ids, check_range, check_ranks, check_unique
from engine.saved.errors import SavedAnalysisError, refuse
from engine.saved.tables import TableSpec, check_spec

STAGE = "systems"
JSON = "systems/systems.json"
HELD = "systems/heldout.parquet"
_IDS = ("user_id", "item_id")
LISTS_SPEC = TableSpec(
    {"user_id": "str", "rank": "int64", "item_id": "str", "score": "float64"},
    present=_IDS,
    exact=True,
)
PREDICTIONS_SPEC = TableSpec(
    {"user_id": "str", "item_id": "str", "prediction": "float64"},
    finite=("prediction",),
    present=_IDS,
    exact=True,
)
HELD_SPEC = TableSpec(
    {"user_id": "str", "item_id": "str", "rating": "float64", "timestamp": "Int64"},
    finite=("rating",),
    present=_IDS,
    exact=True,
)
_REPORT_FIELDS = tuple(f.name for f in dataclasses.fields(ExternalLoadReport))


@dataclass(frozen=True)
class SavedSystems:
    """The external systems of an analysis and the held-out ratings that judge them.

    ``heldout.train`` is the analysis's data (``file``, ``none``) or its ratings before the
    cut (``temporal``); ``engine.external.compare_systems(heldout, list(systems), ...)``
    makes the side by side again.
    """

    systems: tuple[ExternalSystem, ...]
    heldout: HeldOut


# -- write ------------------------------------------------------------------------------
def _ids_as_str(frame: pd.DataFrame, spec: TableSpec, where: str) -> pd.DataFrame:
    out = frame[list(spec.columns)].reset_index(drop=True)
    for column in _IDS:
        values = out[column]
        if not all(isinstance(v, str) for v in values):
            raise SavedAnalysisError(
                f"{where} holds {column} values that are not strings: load the system with "
                "engine.external.load_lists / load_predictions before saving it."
            )
        out[column] = values.astype("str")
    return out


def systems_files(saved: SavedSystems, data: RatingData) -> dict[str, Any]:
    """Return the stage's files (path -> DataFrame or JSON value), checked as reading does.

    Raises
    ------
    SavedAnalysisError
        Two systems share a name, a system has neither lists nor predictions, a table does
        not hold what a loaded system holds, or the held-out ratings are not of ``data``.
    """
    files: dict[str, Any] = {}
    reports: list[ExternalLoadReport] = []
    entries = []
    for i, system in enumerate(saved.systems):
        entry: dict[str, Any] = {"name": system.name, "lists": None, "predictions": None}
        tables = (
            ("lists", system.lists, LISTS_SPEC),
            ("predictions", system.predictions, PREDICTIONS_SPEC),
        )
        for kind, frame, spec in tables:
            if frame is not None:
                path = f"systems/{kind}_{i}.parquet"
                table = _ids_as_str(frame, spec, f"The {kind} of the system {system.name!r}")
                table = table.astype({c: k for c, k in spec.columns.items() if k != "str"})
                files[path], entry[kind] = table, path
        for report in system.load_reports:
            if report not in reports:
                reports.append(report)
        entry["load_reports"] = [reports.index(r) for r in system.load_reports]
        entries.append(entry)
    held = saved.heldout
    files[HELD] = held.ratings[list(HELD_SPEC.columns)].astype({"rating": "float64"})
    files[HELD] = _ids_as_str(files[HELD], HELD_SPEC, "The held-out ratings")
    files[JSON] = {
        "systems": entries,
        "load_reports": [dataclasses.asdict(r) for r in reports],
        "heldout": {
            "source": held.source,
            "cut": held.cut,
            "name": held.name,
            "notes": list(held.notes),
            "ratings": HELD,
        },
    }
    files[JSON] = jsonio.loads(jsonio.dumps(files[JSON], "The systems"), "The systems")
    # what reading would refuse is refused now, with the same sentence
    _systems(files[JSON], {p: f for p, f in files.items() if p != JSON}, data, "The systems")
    return files


def systems_key(described: dict[str, dict[str, Any]]) -> str:
    """Return the stage's key: the SHA-256 of its files' paths and hashes."""
    text = "\n".join(f"{p} {d['sha256']}" for p, d in sorted(described.items()))
    return hashlib.sha256(text.encode()).hexdigest()


# -- read -------------------------------------------------------------------------------
def read_systems(source: Any, entry: dict[str, Any], data: RatingData, data_key: str):
    """Read and check the stage ``entry`` of a manifest against the saved ``data``.

    ``source`` is the ``engine.saved.source.Source`` of the saved analysis.
    """
    where = source.where("manifest.json")
    if entry["rests_on"] != {"data": data_key}:
        raise refuse(where, "gives the systems another data key than the saved data's")
    if entry["key"] != systems_key(entry["files"]):
        raise refuse(where, "gives the systems a key that does not match their files")
    tables = {p: source.table(p) for p in entry["files"] if p.endswith(".parquet")}
    return _systems(source.json(JSON), tables, data, source.where(JSON), source.where)


def _fail(file: str, problem: str) -> SavedAnalysisError:
    return refuse(file, problem)


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _count(value: object) -> bool:
    return type(value) is int and value >= 0


def _report(value: object, file: str) -> ExternalLoadReport:
    """Rebuild a load report from its ``dataclasses.asdict`` form, checking every field."""
    if not (isinstance(value, dict) and set(value) == set(_REPORT_FIELDS)):
        raise _fail(file, f"holds a load report without exactly the fields {_REPORT_FIELDS}")
    v = value
    text_maps = all(
        isinstance(v[f], dict) and all(isinstance(x, str) for x in v[f].values())
        for f in ("columns", "detection")
    )
    ok = (
        isinstance(v["name"], str)
        and v["kind"] in ("lists", "predictions")
        and isinstance(v["format"], str)
        and all(v[f] is None or isinstance(v[f], str) for f in ("encoding", "delimiter"))
        and (v["header"] is None or isinstance(v["header"], bool))
        and text_maps
        and all(_count(v[f]) for f in ("rows_read", "rows_kept", "unknown_users", "unknown_items"))
        and isinstance(v["rejected"], dict)
        and all(r in EXTERNAL_REJECT_REASONS and _count(n) for r, n in v["rejected"].items())
        and v["rows_kept"] + sum(v["rejected"].values()) == v["rows_read"]
        and isinstance(v["examples"], dict)
        and all(isinstance(x, list) for x in v["examples"].values())
        and isinstance(v["ties"], dict)
        and all(_count(n) for n in v["ties"].values())
        and (v["k"] is None or _count(v["k"]))
        and isinstance(v["systems"], dict)
        and all(isinstance(x, dict) for x in v["systems"].values())
        and _is_str_list(v["notes"])
    )
    if not ok:
        raise _fail(
            file, f"holds a load report ({str(v['name'])[:60]!r}) whose fields are not valid"
        )
    return ExternalLoadReport(**v)


def _table(
    tables: dict[str, pd.DataFrame], path: object, spec: TableSpec, data: RatingData, where
) -> tuple[pd.DataFrame, str]:
    if path not in tables:
        raise _fail(where(str(path)), "is named in systems.json but is not a listed table")
    frame, file = tables[path], where(path)
    check_spec(frame, spec, file)
    ratings = data.ratings
    check_ids(frame["user_id"], pd.Index(ratings["user_id"].unique()), "user", file, "the data")
    check_ids(frame["item_id"], pd.Index(ratings["item_id"].unique()), "item", file, "the data")
    check_unique(frame, list(_IDS), file)
    return frame, file


def _lists(tables, path, data, where) -> pd.DataFrame:
    frame, file = _table(tables, path, LISTS_SPEC, data, where)
    if len(frame):
        check_ranks(frame, ["user_id"], int(frame["rank"].max()), file)
    scores = frame["score"].to_numpy(np.float64)
    if np.isinf(scores).any():
        raise _fail(file, f"holds {int(np.isinf(scores).sum()):,} infinite score(s)")
    return frame


def _heldout(value: object, tables, data: RatingData, file: str, where) -> HeldOut:
    fields = {"source", "cut", "name", "notes", "ratings"}
    if not (
        isinstance(value, dict)
        and set(value) == fields
        and value["source"] in ("temporal", "file", "none")
        and isinstance(value["name"], str)
        and _is_str_list(value["notes"])
        and value["ratings"] == HELD
        and (value["cut"] is None or isinstance(value["cut"], int | float))
        and (value["cut"] is not None) == (value["source"] == "temporal")
    ):
        raise _fail(file, "holds a heldout entry that is not {source, cut, name, notes, ratings}")
    held, held_file = _table(tables, HELD, HELD_SPEC, data, where)
    source, notes = value["source"], list(value["notes"])
    if source == "temporal":
        heldout = heldout_at(data, float(value["cut"]), notes)
        if not heldout.ratings.reset_index(drop=True).equals(held.reset_index(drop=True)):
            raise _fail(held_file, "is not the saved data's ratings after the saved cut")
        return heldout
    if source == "none" and len(held):
        raise _fail(held_file, "holds held-out ratings, where systems.json says there are none")
    check_range(held["rating"], data.scale.low, data.scale.high, held_file)
    pairs = pd.MultiIndex.from_frame(data.ratings[list(_IDS)])
    seen = pd.MultiIndex.from_frame(held[list(_IDS)]).isin(pairs)
    if seen.any():
        raise _fail(
            held_file, f"holds {int(seen.sum()):,} rating(s) of pairs the data already rates"
        )
    return HeldOut(data, held, source, name=value["name"], notes=notes)


def _systems(value: object, tables, data: RatingData, file: str, where=lambda p: p):
    """Rebuild a ``SavedSystems`` from ``systems.json`` and its tables, checking everything."""
    if not (isinstance(value, dict) and set(value) == {"systems", "load_reports", "heldout"}):
        raise _fail(file, "does not hold exactly the fields systems, load_reports, heldout")
    reports = value["load_reports"]
    if not isinstance(reports, list):
        raise _fail(file, "holds load reports that are not a list")
    reports = [_report(r, file) for r in reports]
    entries = value["systems"]
    if not (isinstance(entries, list) and entries):
        raise _fail(file, "holds no system")
    systems, names, used = [], set(), set()
    for entry in entries:
        ok = (
            isinstance(entry, dict)
            and set(entry) == {"name", "lists", "predictions", "load_reports"}
            and isinstance(entry["name"], str)
            and entry["name"].strip()
            and isinstance(entry["load_reports"], list)
            and all(type(i) is int and 0 <= i < len(reports) for i in entry["load_reports"])
            and (entry["lists"] is not None or entry["predictions"] is not None)
        )
        if not ok:
            raise _fail(file, "holds a system without a name, its tables and its load reports")
        if entry["name"] in names:
            raise _fail(file, f"names the system {entry['name']!r} twice")
        names.add(entry["name"])
        paths = [entry[k] for k in ("lists", "predictions") if entry[k] is not None]
        if used & set(paths):
            raise _fail(file, f"gives the system {entry['name']!r} another system's table")
        used |= set(paths)
        lists = None if entry["lists"] is None else _lists(tables, entry["lists"], data, where)
        predictions = None
        if entry["predictions"] is not None:
            predictions = _table(tables, entry["predictions"], PREDICTIONS_SPEC, data, where)[0]
        systems.append(ExternalSystem(
            entry["name"], lists=lists, predictions=predictions,
            load_reports=tuple(reports[i] for i in entry["load_reports"]),
        ))  # fmt: skip
    unused = sorted(set(tables) - used - {HELD})
    if unused:
        raise _fail(where(unused[0]), "is listed in manifest.json but no system uses it")
    heldout = _heldout(value["heldout"], tables, data, file, where)
    return SavedSystems(tuple(systems), heldout)
