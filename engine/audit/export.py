"""Write an audit to ``report.json`` (all tables, config, provenance) and ``metrics.csv``.

The JSON and CSV hold aggregates only (no user ids, no individual ratings). Text cells of
the CSV that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return) are prefixed with ``'``.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.audit.run import METRICS, AuditResult
from engine.data.types import RatingData
from engine.model.svd import TrainedModel

AUDIT_SCHEMA_VERSION = "1.0"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: object) -> object:
    """Prefix text that a spreadsheet would evaluate as a formula with ``'``."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    clean = frame.astype(object).where(frame.notna(), None)
    return json.loads(clean.to_json(orient="records", default_handler=str))


def provenance(data: RatingData, model: TrainedModel) -> dict[str, Any]:
    """Where the numbers come from: dataset, model, package versions, time."""
    versions = {}
    for package in ("numpy", "pandas", "scikit-surprise", "shap"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "unknown"
    report = data.report
    return {
        "dataset": {
            "name": data.name,
            "synthetic": data.synthetic,
            "fingerprint": data.fingerprint,
            "rows_read": report.rows_read,
            "rows_kept": report.rows_kept,
            "rows_rejected": report.rows_rejected,
            "users": data.n_users,
            "items": data.n_items,
        },
        "model": asdict(model.config),
        "versions": {"python": platform.python_version(), **versions},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def audit_to_dict(result: AuditResult, data: RatingData, model: TrainedModel) -> dict[str, Any]:
    """Return the whole audit as a JSON-ready dictionary."""
    return {
        "schema_version": AUDIT_SCHEMA_VERSION,
        "config": asdict(result.config),
        "provenance": provenance(data, model),
        "metric_definitions": {
            name: {"family": family, "better": better, "definition": definition}
            for name, (family, better, definition) in METRICS.items()
        },
        "metrics": _records(result.metrics),
        "catalogue": _records(result.catalogue),
        "yao": _records(result.yao),
        "delta_gap": _records(result.delta_gap),
        "bias_disparity": _records(result.bias_disparity),
        "hints": result.hints,
        "notes": result.notes,
    }


def write_audit(
    result: AuditResult, data: RatingData, model: TrainedModel, folder: str | Path
) -> tuple[Path, Path]:
    """Write ``report.json`` and ``metrics.csv`` into ``folder``; return their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, csv_path = folder / "report.json", folder / "metrics.csv"
    payload = audit_to_dict(result, data, model)
    json_path.write_text(
        json.dumps(payload, indent=2, ensure_ascii=False, default=_default) + "\n",
        encoding="utf-8",
    )
    result.metrics.map(neutralise_formula).to_csv(csv_path, index=False, lineterminator="\n")
    return json_path, csv_path


def _default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
