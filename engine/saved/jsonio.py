"""Strict JSON for saved analyses: canonical writing, bounded reading, no pickle.

Written JSON is strict (RFC 8259) and keeps the order of dictionary keys (a report shows
them in that order): a float that is NaN or infinite is written as
``{"$float": "nan" | "inf" | "-inf"}`` and read back as that float, tuples are written
as arrays, and numpy scalars as plain numbers. Reading refuses more than ``MAX_JSON_BYTES``
bytes or ``MAX_JSON_DEPTH`` levels of nesting before parsing (the limits of
``engine.model.persist``, whose depth scan is reused).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from engine.model.persist import bounded_json_text
from engine.saved.errors import SavedAnalysisError, refuse

#: Largest JSON file of a saved analysis read, in bytes (a manifest is a few KB).
MAX_JSON_BYTES = 16 << 20
_FLOAT = "$float"
_SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def plain(value: Any, where: str = "value") -> Any:
    """``value`` with tuples as lists, numpy scalars as Python ones, non-finite floats tagged.

    Raises
    ------
    SavedAnalysisError
        A dictionary key that is not a string, or a value JSON cannot hold.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return {_FLOAT: "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [plain(v, where) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise SavedAnalysisError(
                f"{where} has a dictionary key that is not a string, which a saved analysis "
                "cannot hold: convert the keys to strings before saving."
            )
        return {k: plain(v, where) for k, v in value.items()}
    raise SavedAnalysisError(
        f"{where} holds a {type(value).__name__}, which a saved analysis cannot hold as JSON: "
        "store it as a table or as plain numbers and strings."
    )


def _revive(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_FLOAT} and value[_FLOAT] in _SPECIAL:
            return _SPECIAL[value[_FLOAT]]
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value


def dumps(value: Any, where: str = "value") -> bytes:
    """Return strict JSON of ``value`` (keys in their order, two-space indent) as UTF-8."""
    text = json.dumps(plain(value, where), indent=2, allow_nan=False)
    return (text + "\n").encode("utf-8")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not strict JSON")


def loads(raw: bytes, file: object) -> Any:
    """Parse bytes written by ``dumps``, within the size and depth limits.

    Raises
    ------
    SavedAnalysisError
        Over ``MAX_JSON_BYTES``, not UTF-8, nested deeper than ``MAX_JSON_DEPTH``, or not
        strict JSON (``NaN`` and ``Infinity`` literals are refused).
    """
    text = bounded_json_text(
        raw, MAX_JSON_BYTES, lambda problem: refuse(file, problem), "too large for a saved analysis"
    )
    try:
        return _revive(json.loads(text, parse_constant=_no_constant))
    except RecursionError as e:
        raise refuse(file, "nests too deep to read") from e
    except ValueError as e:
        raise refuse(file, f"is not valid JSON ({' '.join(str(e).split())[:120]})") from e
