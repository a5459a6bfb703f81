"""A ``RatingData`` as files, and back exactly.

Files: ``data/ratings.parquet``, ``data/users.parquet`` and ``data/items.parquet`` (when
the dataset has attributes) and ``data/data.json`` (name, synthetic flag, scale,
fingerprint and the whole ``LoadReport``). Reading checks the ratings (exact columns and
dtypes, ids present, finite ratings inside the scale, one row per (user, item) pair,
sorted by user then item), the attribute tables (indexed by unique, present ids) and
every field of the JSON, then recomputes the fingerprint from the tables and refuses a
mismatch: whatever passes is the dataset that was saved.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, fields
from typing import Any

import numpy as np
import pandas as pd

from engine.data.load import fingerprint_of
from engine.data.types import (
    DUPLICATE_POLICIES,
    REJECT_REASONS,
    FileReport,
    LoadReport,
    RatingData,
    RatingScale,
)
from engine.saved.checks import check_range
from engine.saved.errors import refuse
from engine.saved.tables import TableSpec, check_spec

FOLDER = "data"
RATINGS = f"{FOLDER}/ratings.parquet"
USERS = f"{FOLDER}/users.parquet"
ITEMS = f"{FOLDER}/items.parquet"
META = f"{FOLDER}/data.json"
RATINGS_SPEC = TableSpec(
    {"user_id": "str", "item_id": "str", "rating": "float64", "timestamp": "Int64"},
    finite=("rating",),
    present=("user_id", "item_id"),
    exact=True,
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SCALE_SOURCES = ("given", "detected", "observed")
_STR = pd.Series([], dtype="str").dtype


def dataset_files(data: RatingData) -> dict[str, bytes | pd.DataFrame | dict[str, Any]]:
    """Return the dataset's files: tables as DataFrames, the rest as one JSON-ready dict."""
    files: dict[str, Any] = {RATINGS: data.ratings}
    if data.users is not None:
        files[USERS] = data.users
    if data.items is not None:
        files[ITEMS] = data.items
    files[META] = {
        "name": data.name,
        "synthetic": data.synthetic,
        "fingerprint": data.fingerprint,
        "scale": asdict(data.scale),
        "report": asdict(data.report),
    }
    return files


def _is(value: object, kind: str) -> bool:
    """Whether a JSON value is of ``kind``: str, int (>= 0), bool, number, str?, bool?."""
    if kind.endswith("?") and value is None:
        return True
    kind = kind.rstrip("?")
    if kind == "int":
        return type(value) is int and value >= 0
    if kind == "number":
        return type(value) in (int, float) and math.isfinite(value)
    return type(value) is {"str": str, "bool": bool}[kind]


def _str_map(value: object, of: str = "str") -> bool:
    return isinstance(value, dict) and all(_is(v, of) for v in value.values())


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _scale(value: object, file: object) -> RatingScale:
    if not (
        isinstance(value, dict)
        and set(value) == {"low", "high", "step", "source"}
        and _is(value["low"], "number")
        and _is(value["high"], "number")
        and value["low"] < value["high"]
        and (value["step"] is None or (_is(value["step"], "number") and value["step"] > 0))
        and value["source"] in _SCALE_SOURCES
    ):
        raise refuse(file, "has a rating scale that is not (low < high, step > 0 or null, source)")
    return RatingScale(
        float(value["low"]),
        float(value["high"]),
        None if value["step"] is None else float(value["step"]),
        value["source"],
    )


_FILE_FIELDS = {
    "role": "str",
    "name": "str",
    "format": "str",
    "encoding": "str?",
    "delimiter": "str?",
    "header": "bool?",
}


def _file_report(value: object, file: object) -> FileReport:
    known = {f.name for f in fields(FileReport)}
    ok = (
        isinstance(value, dict)
        and set(value) == known
        and all(_is(value[k], kind) for k, kind in _FILE_FIELDS.items())
        and _str_map(value["columns"])
        and _str_map(value["detection"])
        and _strings(value["ignored_columns"])
    )
    if not ok:
        raise refuse(file, "has a file entry in its load report that is not valid")
    return FileReport(**value)


def load_report_of(value: object, file: object) -> LoadReport:
    """Rebuild a stored ``LoadReport`` (``asdict`` of one), refusing one that is not valid."""
    known = {f.name for f in fields(LoadReport)}
    if not isinstance(value, dict) or set(value) != known:
        raise refuse(file, f"has a load report whose fields are not {', '.join(sorted(known))}")
    ok = (
        isinstance(value["files"], list)
        and _is(value["rows_read"], "int")
        and _is(value["rows_kept"], "int")
        and _str_map(value["rejected"], "int")
        and set(value["rejected"]) <= set(REJECT_REASONS)
        and isinstance(value["examples"], dict)
        and all(
            isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
            for rows in value["examples"].values()
        )
        and value["duplicate_policy"] in DUPLICATE_POLICIES
        and _str_map(value["attribute_coverage"], "int")
        and _strings(value["warnings"])
    )
    if not ok:
        raise refuse(file, "has a load report with a field of the wrong type")
    if value["rows_kept"] + sum(value["rejected"].values()) != value["rows_read"]:
        raise refuse(
            file, "has a load report whose kept and rejected rows do not add up to the rows read"
        )
    return LoadReport(
        **{
            **value,
            "files": [_file_report(f, file) for f in value["files"]],
            "scale": _scale(value["scale"], file),
        }
    )


def _attributes(frame: pd.DataFrame, id_name: str, file: object) -> None:
    if frame.index.name != id_name or (len(frame) and frame.index.dtype != _STR):
        raise refuse(file, f"is not indexed by {id_name} (str)")
    if frame.index.hasnans:
        raise refuse(file, f"has a missing {id_name}")
    if not frame.index.is_unique:
        raise refuse(
            file, f"lists the {id_name} {frame.index[frame.index.duplicated()][0]!r} twice"
        )


def _check_ratings(ratings: pd.DataFrame, scale: RatingScale, file: object) -> None:
    check_spec(ratings, RATINGS_SPEC, file)
    check_range(ratings["rating"], scale.low, scale.high, file)
    users, items = ratings["user_id"].to_numpy(object), ratings["item_id"].to_numpy(object)
    after = (users[1:] > users[:-1]) | ((users[1:] == users[:-1]) & (items[1:] > items[:-1]))
    if not after.all():
        at = int(np.flatnonzero(~after)[0]) + 1
        raise refuse(
            file,
            f"is not sorted by user_id then item_id with one row per pair (row {at:,}: user "
            f"{users[at]!r}, item {items[at]!r})",
        )


def read_dataset(
    meta: object, tables: dict[str, pd.DataFrame], files: dict[str, str]
) -> RatingData:
    """Rebuild the ``RatingData`` from ``data.json`` (parsed) and its tables, checking both.

    ``tables`` maps ``RATINGS``, and ``USERS``/``ITEMS`` when saved, to the tables read;
    ``files`` maps each path to the name used in messages.

    Raises
    ------
    SavedAnalysisError
        Any check of the module docstring failing; the fingerprint recomputed from the
        tables differing from the one recorded.
    """
    where = files[META]
    wanted = {"name": "str", "synthetic": "bool", "fingerprint": "str", "scale": "", "report": ""}
    if not isinstance(meta, dict) or set(meta) != set(wanted):
        raise refuse(where, f"does not hold exactly the fields {', '.join(wanted)}")
    if not (_is(meta["name"], "str") and _is(meta["synthetic"], "bool")):
        raise refuse(
            where, "has a name that is not a string or a synthetic flag that is not a boolean"
        )
    if not (isinstance(meta["fingerprint"], str) and _HEX64.fullmatch(meta["fingerprint"])):
        raise refuse(where, "has a fingerprint that is not 64 hexadecimal digits")
    scale = _scale(meta["scale"], where)
    report = load_report_of(meta["report"], where)
    if report.scale != scale:
        raise refuse(where, "has a load report whose rating scale differs from the dataset's")
    ratings = tables[RATINGS]
    _check_ratings(ratings, scale, files[RATINGS])
    if report.rows_kept != len(ratings):
        raise refuse(
            where,
            f"says {report.rows_kept:,} ratings were kept, but {files[RATINGS]} holds "
            f"{len(ratings):,}",
        )
    users, items = tables.get(USERS), tables.get(ITEMS)
    if users is not None:
        _attributes(users, "user_id", files[USERS])
    if items is not None:
        _attributes(items, "item_id", files[ITEMS])
    found = fingerprint_of(ratings, users, items)
    if found != meta["fingerprint"]:
        raise refuse(
            where,
            f"records the fingerprint {meta['fingerprint'][:12]}, but the saved tables give "
            f"{found[:12]}: the tables were modified",
        )
    return RatingData(
        ratings, users, items, scale, found, report, meta["name"], synthetic=meta["synthetic"]
    )
