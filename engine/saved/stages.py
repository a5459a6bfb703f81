"""Each stage's files, and each stage read back and checked against the dataset.

* ``model``: ``model/model.npz`` + ``model/model.json``, written and read by
  ``engine.model.persist`` (no pickle; headers, dtypes, shapes, finiteness and indices
  checked); then its training ratings must be the dataset's ratings and its scale the
  dataset's scale.
* ``evaluation`` and ``audit``: every DataFrame field as ``<stage>/<field>.parquet``, the
  other fields in ``<stage>/fields.json`` (``records``). The evaluation's tables must name
  only the dataset's users and items, evaluated models and folds ``0..n-1``
  (``EvaluationConfig.n_splits``), with finite
  predictions inside the scale and ranks ``1..k``; every audit table naming users, items,
  folds or ranks is held to the same rules.
* ``lists``: ``lists/lists.parquet`` with exactly ``recommend_all``'s columns; users and
  items of the model, ranks ``1..k`` per user, one row per (user, item), no item the user
  already rated, finite predictions, each the model's own score (checked against the
  model when it is saved too).
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis import Analysis
from engine.audit import AuditResult
from engine.audit.registry import SCOPES
from engine.audit.rows import P_METHODS, STATUSES, TIERS
from engine.evaluate import Evaluation
from engine.model import TrainedModel
from engine.model.interactions import Interactions
from engine.model.persist import FIX as MODEL_FIX
from engine.model.persist import ModelFileError, load_model, save_model
from engine.model.svd import clip_to_scale
from engine.recommend import COLUMNS as LIST_COLUMNS
from engine.saved import records
from engine.saved.checks import check_ids, check_range, check_ranks, check_unique
from engine.saved.errors import FIX, SavedAnalysisError, refuse
from engine.saved.source import Source
from engine.saved.tables import SIGNED_INT, TableSpec, check_spec

Files = dict[str, Any]
"""Path -> bytes, a DataFrame (written as Parquet) or a JSON-ready value."""

MODEL_NPZ, MODEL_JSON = "model/model.npz", "model/model.json"
LISTS = "lists/lists.parquet"
_RECORDS: dict[str, type] = {"evaluation": Evaluation, "audit": AuditResult}
_SPECS: dict[str, dict[str, TableSpec]] = {
    "evaluation": {
        "predictions": TableSpec(
            {
                "model": "str",
                "fold": SIGNED_INT,
                "user_id": "str",
                "item_id": "str",
                "rating": "float64",
                "prediction": "float64",
                "raw_prediction": "float64",
                "was_impossible": "bool",
            },
            finite=("rating", "prediction", "raw_prediction"),
            present=("model", "user_id", "item_id"),
        ),
        "fold_metrics": TableSpec(
            {"model": "str", "fold": SIGNED_INT, "metric": "str", "value": "float64"},
            present=("model", "metric"),
        ),
        "user_ranking": TableSpec(
            {"model": "str", "fold": SIGNED_INT, "user_id": "str", "n_relevant": "int64"},
            present=("model", "user_id"),
        ),
        "top_lists": TableSpec(
            {
                "model": "str",
                "fold": SIGNED_INT,
                "user_id": "str",
                "rank": SIGNED_INT,
                "item_id": "str",
            },
            present=("model", "user_id", "item_id"),
        ),
    },
    "audit": {
        "metrics": TableSpec(
            {
                "family": "str",
                "metric": "str",
                "scope": "str",
                "grouping": "str",
                "group": "str",
                "n_users": "Int64",
                "n_items": "Int64",
                "n_raters": "Int64",
                "n_ratings": "Int64",
                "value": "float64",
                "ratio": "float64",
                "p_value": "float64",
                "p_method": "str",
                "p_is_bound": "bool",
                "p_adjusted": "float64",
                "flag": "bool",
                "tier": "str",
                "severity": "float64",
                "status": "str",
            },
            present=("metric", "scope", "grouping", "p_method", "tier", "status"),
        ),
    },
}
LISTS_SPEC = TableSpec(
    dict(zip(LIST_COLUMNS, ("str", "int64", "str", "float64", "float64", "str"), strict=True)),
    finite=("prediction", "raw_prediction"),
    present=("user_id", "item_id", "source"),
    exact=True,
)


def stage_files(stage: str, value: Any, shared: dict[str, pd.DataFrame] | None = None) -> Files:
    """Return the files of a computed stage (not ``data``, not ``report``).

    ``shared`` holds the frames of stages saved alongside (``lists``): a field of the
    evaluation or audit that is one of them is stored as a reference (``records.split``).
    """
    if stage == "model":
        with tempfile.TemporaryDirectory(prefix="saved-model-") as scratch:
            npz, meta = save_model(value, Path(scratch) / "model")
            return {MODEL_NPZ: npz.read_bytes(), MODEL_JSON: meta.read_bytes()}
    if stage == "lists":
        return {LISTS: value}
    tables, values = records.split(value, shared)
    files: Files = {f"{stage}/{name}.parquet": frame for name, frame in tables.items()}
    files[f"{stage}/fields.json"] = values
    return files


def read_stage(stage: str, source: Source, paths: list[str], analysis: Analysis) -> Any:
    """Read a stage's files (``paths``), rebuild its value and check it; see the docstring."""
    if stage == "model":
        return _read_model(source, analysis)
    if stage == "lists":
        return _read_lists(source, analysis)
    prefix = f"{stage}/"
    tables = {
        p[len(prefix) : -len(".parquet")]: source.table(p) for p in paths if p.endswith(".parquet")
    }
    fields_file = f"{stage}/fields.json"
    values = source.json(fields_file)
    if not isinstance(values, dict):
        raise refuse(source.where(fields_file), "is not a JSON object of fields")
    shared = {"lists": analysis.result("lists")} if analysis.result("lists") is not None else {}
    value = records.join(_RECORDS[stage], tables, values, source.where(fields_file), shared)
    if stage == "evaluation":
        _check_evaluation(value, source, analysis)
    else:
        _check_audit(value, source, analysis)
    return value


def _read_model(source: Source, analysis: Analysis) -> TrainedModel:
    with tempfile.TemporaryDirectory(prefix="saved-model-") as scratch:
        base = Path(scratch) / "model"
        for path, suffix in ((MODEL_NPZ, ".npz"), (MODEL_JSON, ".json")):
            base.with_suffix(suffix).write_bytes(source.read(path))
        try:
            model = load_model(base, max_bytes=source.max_bytes)
        except ModelFileError as e:
            text = str(e).replace(str(base.with_suffix(".npz")), source.where(MODEL_NPZ))
            text = text.replace(str(base.with_suffix(".json")), source.where(MODEL_JSON))
            raise SavedAnalysisError(text.replace(MODEL_FIX, FIX)) from e
    data = analysis.data
    where = source.where(MODEL_NPZ)
    if model.scale != (data.scale.low, data.scale.high):
        raise refuse(where, f"has the rating scale {model.scale}, not the dataset's")
    expected = Interactions.from_frame(data.ratings)
    inter = model.interactions
    for name in ("user_ids", "item_ids", "indptr", "items", "ratings"):
        if not np.array_equal(getattr(inter, name), getattr(expected, name)):
            raise refuse(where, f"was trained on other ratings than the dataset's ({name} differ)")
    return model


def _known(analysis: Analysis) -> tuple[pd.Index, pd.Index]:
    ratings = analysis.data.ratings
    return pd.Index(ratings["user_id"].unique()), pd.Index(ratings["item_id"].unique())


def _read_lists(source: Source, analysis: Analysis) -> pd.DataFrame:
    where = source.where(LISTS)
    lists = source.table(LISTS)
    check_spec(lists, LISTS_SPEC, where)
    users, items = _known(analysis)
    model = analysis.result("model")
    if model is not None:
        users = pd.Index(model.interactions.user_ids)
        items = pd.Index(model.interactions.item_ids)
    check_ids(lists["user_id"], users, "user", where, "the model")
    check_ids(lists["item_id"], items, "item", where, "the model")
    check_ranks(lists, ["user_id"], analysis.settings.ranking.k, where)
    check_unique(lists, ["user_id", "item_id"], where)
    rated = lists.merge(analysis.data.ratings[["user_id", "item_id"]], on=["user_id", "item_id"])
    if len(rated):
        raise refuse(
            where,
            f"recommends the item {rated['item_id'].iloc[0]!r} to user "
            f"{rated['user_id'].iloc[0]!r}, who already rated it",
        )
    scale = (analysis.data.scale.low, analysis.data.scale.high)
    clipped = clip_to_scale(lists["raw_prediction"].to_numpy(), scale)
    if not np.array_equal(clipped, lists["prediction"].to_numpy()):
        raise refuse(where, "has predictions that are not the raw predictions clipped to the scale")
    if model is not None and len(lists):
        own = lists["source"].to_numpy() == "model"
        scores = model.predict_pairs(
            model.interactions.user_index(lists["user_id"].to_numpy()[own]),
            model.interactions.item_index(lists["item_id"].to_numpy()[own]),
        )
        if not np.allclose(scores, lists["raw_prediction"].to_numpy()[own], rtol=1e-9, atol=1e-9):
            raise refuse(where, "holds scores that are not the saved model's")
    return lists


def _check_ids_folds_ranks(
    frame: pd.DataFrame, where: str, users: pd.Index, items: pd.Index, folds: int, k: int
) -> None:
    if "user_id" in frame:
        check_ids(frame["user_id"], users, "user", where, "the dataset")
    if "item_id" in frame:
        check_ids(frame["item_id"], items, "item", where, "the dataset")
    if "fold" in frame:
        check_range(frame["fold"], 0, folds - 1, where)
    if "rank" in frame and len(frame):
        by = [c for c in ("model", "fold", "user_id") if c in frame]
        if by:
            check_ranks(frame, by, k, where)
        else:
            check_range(frame["rank"], 1, k, where)


def _check_evaluation(value: Evaluation, source: Source, analysis: Analysis) -> None:
    data = analysis.data
    fields_file = source.where("evaluation/fields.json")
    if value.n_ratings != data.n_ratings:
        raise refuse(
            fields_file,
            f"says {value.n_ratings:,} ratings were evaluated, where the "
            f"dataset has {data.n_ratings:,}",
        )
    config = value.evaluation
    users, items = _known(analysis)
    for name, spec in _SPECS["evaluation"].items():
        frame, where = getattr(value, name), source.where(f"evaluation/{name}.parquet")
        check_spec(frame, spec, where)
        unknown = sorted(set(frame["model"].unique()) - set(config.models))
        if unknown:
            raise refuse(where, f"holds the model {unknown[0]!r}, which was not evaluated")
        _check_ids_folds_ranks(frame, where, users, items, config.n_splits, config.k)
    predictions = value.predictions
    where = source.where("evaluation/predictions.parquet")
    for column in ("rating", "prediction"):
        check_range(predictions[column], data.scale.low, data.scale.high, where)


def _check_audit(value: AuditResult, source: Source, analysis: Analysis) -> None:
    data = analysis.data
    users, items = _known(analysis)
    if data.users is not None:
        users = users.union(data.users.index)
    if data.items is not None:
        items = items.union(data.items.index)
    folds = analysis.settings.evaluation.n_splits
    for name, frame in audit_frames(value, source, "audit", skip=analysis.result("lists")):
        _check_ids_folds_ranks(frame, source.where(f"audit/{name}.parquet"), users, items, folds,
                               value.config.k)  # fmt: skip


def audit_frames(
    value: AuditResult, source: Source, folder: str, skip: pd.DataFrame | None = None
) -> Iterator[tuple[str, pd.DataFrame]]:
    """Check each table of a stored ``AuditResult`` that needs no data; yield them by name.

    Each table read from ``<folder>/<name>.parquet`` is checked against its ``TableSpec``,
    its p-values against [0, 1] and the metric rows' labels, flags and severities
    (``_check_audit_rows``). ``skip``: a table checked elsewhere (the lists stage).
    """
    for field in dataclasses.fields(value):
        frame = getattr(value, field.name)
        if not isinstance(frame, pd.DataFrame) or frame is skip:
            continue
        where = source.where(f"{folder}/{field.name}.parquet")
        spec = _SPECS["audit"].get(field.name)
        if spec is not None:
            check_spec(frame, spec, where)
        for column in ("p_value", "p_adjusted"):
            if column in frame and len(frame):
                check_range(frame[column].dropna(), 0, 1, where)
        if field.name == "metrics" and len(frame):
            _check_audit_rows(frame, where)
        yield field.name, frame


#: The metric table's labelled columns and the values each may hold.
_AUDIT_LABELS = {"scope": SCOPES, "tier": TIERS, "p_method": P_METHODS, "status": STATUSES}


def _check_audit_rows(frame: pd.DataFrame, where: object) -> None:
    """Refuse audit rows with an unknown label, a flag off its tier, or a negative severity."""
    for column, allowed in _AUDIT_LABELS.items():
        unknown = sorted(set(frame[column].astype(object)) - set(allowed), key=str)
        if unknown:
            raise refuse(where, f"holds {column} {unknown[0]!r}, which is not one of {allowed}")
    if (frame["flag"] != (frame["tier"] == "flagged")).any():
        raise refuse(where, "holds a flag that disagrees with its tier")
    check_range(frame["severity"].dropna(), 0, np.inf, where)
