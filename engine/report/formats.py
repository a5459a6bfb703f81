"""Render a ``Report`` as JSON (versioned, schema-checked) and as tidy CSV metric rows.

JSON: ``SCHEMA_PATH`` is the JSON Schema (draft 2020-12) of the output; missing values
(withheld or undefined) are ``null``; ``systems`` (schema 2.5) is the side by side of the
analyst's own systems when the report has one (``engine.report.systems.systems_json``);
``over_time`` (schema 2.6) is the monitoring of the "Over time" section when the report has
one (``engine.report.over_time.over_time_json``).
CSV: one row per audit metric row (``METRIC_COLUMNS``); with systems, every system's audit
rows follow, and a last column ``system`` names the system of each row (empty for the
analysis's own audit rows, which are otherwise unchanged); the CSV carries no monitoring
rows (``monitor`` writes them to ``monitor.csv``); any text cell a spreadsheet
would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is
prefixed with ``'`` (OWASP's CSV injection advice).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.report.build import SCHEMA_VERSION, Report
from engine.report.over_time import over_time_json
from engine.report.systems import systems_json, systems_metric_rows

SCHEMA_PATH = Path(__file__).with_name("report.schema.json")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: object) -> object:
    """Prefix text that a spreadsheet would evaluate as a formula with ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _plain(value: Any) -> Any:
    """JSON-ready Python values: numpy scalars and arrays unwrapped, NaN, inf and NA as ``None``."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_plain(row) for row in frame.astype(object).to_dict(orient="records")]


def report_to_dict(report: Report) -> dict[str, Any]:
    """Return the JSON document as a dictionary (validates against ``SCHEMA_PATH``)."""
    optional: dict[str, Any] = {} if report.update is None else {"update": report.update}
    if report.systems is not None:
        optional["systems"] = systems_json(report.systems)
    if report.monitoring is not None:
        optional["over_time"] = over_time_json(report.monitoring)
    return _plain(
        {
            "schema_version": SCHEMA_VERSION,
            "title": report.title,
            "created": report.provenance["created"],
            "sections": list(report.sections),
            "headline": report.headline,
            "executive_summary": [asdict(item) for item in report.summary],
            "findings": [asdict(f) for f in report.findings],
            "notable": [asdict(f) for f in report.notable],
            "data_context": report.context,
            "insufficient_summary": report.insufficient_note,
            "dataset": report.dataset,
            "load": report.load,
            "model": report.model,
            "accuracy": _records(report.accuracy),
            "tradeoff": _records(report.tradeoff),
            "ranking_by_group": _records(report.ranking_by_group),
            "metrics": _records(report.metrics),
            "catalogue": _records(report.catalogue),
            "yao": _records(report.yao),
            "delta_gap": _records(report.delta_gap),
            "bias_disparity": _records(report.bias_disparity),
            "top_items": _records(report.top_items),
            "hints": report.hints,
            "notes": report.notes,
            "definitions": report.definitions,
            "limitations": report.limitations,
            "audit_config": report.audit_config,
            "provenance": report.provenance,
            **optional,
        }
    )


def render_json(report: Report) -> bytes:
    """UTF-8 JSON, indented, keys in a fixed order, ending with a newline."""
    text = json.dumps(report_to_dict(report), indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def render_csv(report: Report) -> bytes:
    r"""UTF-8 CSV of the audit's metric rows, formula-injection safe, ``\\n`` line ends."""
    frame = report.metrics
    if report.systems is not None:
        own = frame.assign(system="")
        frame = pd.concat([own, systems_metric_rows(report.systems)], ignore_index=True)
    frame = frame.astype(object).map(neutralise_formula)
    return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
