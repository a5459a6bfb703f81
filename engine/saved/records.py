"""A result dataclass (``Evaluation``, ``AuditResult``) as tables plus JSON values, generically.

``split`` walks the dataclass's fields: every DataFrame becomes a table (or, when it
equals the frame of another stage saved alongside, as the audit's ``lists`` equals the
``lists`` stage, a reference to that stage, so it is stored once), every settings
dataclass (one of ``CONFIGS``) a tagged JSON object, a field that holds its own default
object (the audit's metric ``registry``, which is code) nothing, and everything else a
JSON value. So a DataFrame field added to the class later
is saved without a change here. ``join`` rebuilds the instance (a field not stored takes
its default) and refuses fields the current class does not have, or lacks. Only the
settings classes listed in ``CONFIGS`` are ever instantiated from a file.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from engine.audit import AuditConfig
from engine.errors import ConfigError
from engine.evaluate import EvaluationConfig
from engine.model import ModelConfig
from engine.saved.errors import SavedAnalysisError, refuse

#: The settings dataclasses a stored field may hold, by class name.
CONFIGS: dict[str, type] = {c.__name__: c for c in (ModelConfig, EvaluationConfig, AuditConfig)}
_CONFIG = "$config"
_STAGE = "$stage"
_PLAIN = (type(None), bool, int, float, str, list, tuple, dict)


def split(
    value: Any, shared: dict[str, pd.DataFrame] | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Return ``(tables, values)``: the DataFrame fields and the other fields of ``value``.

    ``shared`` names frames saved as stages of their own: a field holding one of them
    (or an equal frame: same columns, index, dtypes and values) is stored as
    ``{"$stage": name}``.

    Raises
    ------
    SavedAnalysisError
        A field holds a dataclass that is not one of ``CONFIGS``, or an object that is
        neither plain data nor its field's default.
    """
    tables: dict[str, pd.DataFrame] = {}
    values: dict[str, Any] = {}
    for field in dataclasses.fields(value):
        held = getattr(value, field.name)
        stage = next((n for n, f in (shared or {}).items() if _same(held, f)), None)
        if stage is not None:
            values[field.name] = {_STAGE: stage}
        elif isinstance(held, pd.DataFrame):
            tables[field.name] = held
        elif not isinstance(held, _PLAIN) and held is field.default:
            continue
        elif dataclasses.is_dataclass(held) and not isinstance(held, type):
            name = type(held).__name__
            if CONFIGS.get(name) is not type(held):
                raise SavedAnalysisError(
                    f"{type(value).__name__}.{field.name} holds a {name}, which a saved analysis "
                    "cannot store: add its class to engine.saved.records.CONFIGS."
                )
            values[field.name] = {_CONFIG: name, "fields": dataclasses.asdict(held)}
        else:
            values[field.name] = held
    return tables, values


def _same(held: object, frame: pd.DataFrame) -> bool:
    if held is frame:
        return True
    return (
        isinstance(held, pd.DataFrame)
        and held.columns.equals(frame.columns)
        and held.index.equals(frame.index)
        and held.dtypes.equals(frame.dtypes)
        and held.equals(frame)
    )


def _tuples(value: object) -> object:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _config(stored: object, where: str, file: object) -> Any:
    if not (
        isinstance(stored, dict)
        and set(stored) == {_CONFIG, "fields"}
        and stored[_CONFIG] in CONFIGS
        and isinstance(stored["fields"], dict)
    ):
        raise refuse(file, f"has {where} that is not a known settings object")
    kind = CONFIGS[stored[_CONFIG]]
    known = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(stored["fields"]) - known)
    if unknown:
        raise refuse(file, f"has unknown {kind.__name__} setting(s) {', '.join(unknown[:5])}")
    try:
        return kind(**{k: _tuples(v) for k, v in stored["fields"].items()})
    except (ConfigError, TypeError) as e:
        raise refuse(file, f"has invalid {kind.__name__} settings ({str(e).rstrip('.')})") from e


def join(
    kind: type,
    tables: dict[str, pd.DataFrame],
    values: dict[str, Any],
    file: object,
    shared: dict[str, pd.DataFrame] | None = None,
) -> Any:
    """Rebuild a ``kind`` instance from ``split``'s output read back from ``file``.

    ``shared`` holds the frames of the stages read before (a ``{"$stage": name}`` value
    takes that frame).

    Raises
    ------
    SavedAnalysisError
        A stored field the class does not have, a field without default that is not
        stored, a reference to a stage that was not saved, a settings object that is not
        valid, or the class refusing the values.
    """
    fields = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted((set(tables) | set(values)) - set(fields))
    if unknown:
        raise refuse(
            file,
            f"holds field(s) {', '.join(unknown[:5])} that this version's {kind.__name__} "
            "does not have",
        )
    required = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(tables) - set(values))
    if missing:
        raise refuse(file, f"lacks the {kind.__name__} field(s) {', '.join(missing[:5])}")
    args: dict[str, Any] = dict(tables)
    for name, stored in values.items():
        if isinstance(stored, dict) and _STAGE in stored:
            frame = (shared or {}).get(stored[_STAGE]) if set(stored) == {_STAGE} else None
            if frame is None:
                raise refuse(
                    file, f"refers {name} to the {stored[_STAGE]!r} stage, which is not saved"
                )
            args[name] = frame
        elif isinstance(stored, dict) and _CONFIG in stored:
            args[name] = _config(stored, f"{kind.__name__}.{name}", file)
        else:
            args[name] = stored
    try:
        return kind(**args)
    except (ValueError, TypeError) as e:
        raise refuse(file, f"does not make a valid {kind.__name__} ({str(e).rstrip('.')})") from e
