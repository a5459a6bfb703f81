"""``manifest.json``: what a saved analysis holds, how to check it, and schema migrations.

Fields (schema version ``SCHEMA_VERSION``)::

    format            "recsys-audit-analysis"
    schema_version    "1" (a string; older ones are migrated by ``MIGRATIONS``)
    tool              {"name", "version", "code_version"}: the engine's CODE_VERSION
    versions          python, numpy, pandas, pyarrow, scikit-surprise
    created           ISO 8601 UTC time of the save
    settings          AnalysisSettings.to_dict(); settings_digest its SHA-256
    stages            {stage: {"key", "rests_on": {upstream stage: key},
                               "files": {path: {"sha256", "bytes", "table"?}}}}
    derived_from      null, or {"by": "update", "data", "model", "record"?}: the data
                      fingerprint and model key of the analysis this one was updated from
                      (``engine.update``), and optionally the ``UpdateRecord`` as an
                      object (read by ``engine.report.update_section``); schema 2; a
                      schema 1 manifest is migrated with null

``data`` is always a stage (its key is the dataset fingerprint, it rests on nothing);
``systems`` is optional (the analyst's own systems, ``engine.saved.systems``: keyed by its
files' hashes, resting on the data only; older analyses have none);
``table`` is the schema record of a Parquet file (``tables.encode_table``). Paths are
relative, ``/``-separated, inside the stage's own folder.
"""

from __future__ import annotations

import platform
import re
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from engine.analysis import CODE_VERSION, STAGES, AnalysisSettings
from engine.errors import ConfigError
from engine.saved.errors import refuse
from engine.saved.tables import check_record

SYSTEM_FILES = r"systems/((lists|predictions)_[0-9]{1,4}|heldout)\.parquet"

FORMAT = "recsys-audit-analysis"
#: The ``format`` of a run kept in Spark (``engine.saved.kept``): a report's parts, not this.
KEPT_FORMAT = "recsys-audit-kept-run"
SCHEMA_VERSION = "2"
NAME = "manifest.json"
TOOL = "recsys-audit-dashboard"
#: Packages whose versions the manifest records (besides python).
PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-surprise")
#: Every stage a manifest may list, ``data`` first, in computing order; ``systems`` (the
#: analyst's own systems, ``engine.saved.systems``) is optional and rests on the data only.
ALL_STAGES: tuple[str, ...] = ("data", *STAGES, "systems")
#: Files each stage must list (``report`` lists whatever report files were given).
REQUIRED: dict[str, tuple[str, ...]] = {
    "data": ("data/ratings.parquet", "data/data.json"),
    "model": ("model/model.npz", "model/model.json"),
    "evaluation": ("evaluation/fields.json",),
    "lists": ("lists/lists.parquet",),
    "audit": ("audit/fields.json",),
    "report": (),
    "systems": ("systems/systems.json",),
}
#: Other files each stage may list, as a regular expression ("": none; a field's table is
#: ``<stage>/<field name>.parquet``; any report file name).
OPTIONAL: dict[str, str] = {
    "data": r"data/(users|items)\.parquet",
    "model": "",
    "evaluation": r"evaluation/[a-z_][a-z0-9_]*\.parquet",
    "lists": "",
    "audit": r"audit/[a-z_][a-z0-9_]*\.parquet",
    "report": r"report/.+",
    "systems": SYSTEM_FILES,
}
#: A stored path: one or two plain names (letters, digits, ``_ . -``; no leading dot).
PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99})?")
HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = {
    "format",
    "schema_version",
    "tool",
    "versions",
    "created",
    "settings",
    "settings_digest",
    "stages",
    "derived_from",
}
#: How an analysis may have been derived from another one (``derived_from["by"]``).
DERIVATIONS = ("update",)


def tool_version() -> str:
    """Return the tool's version: installed metadata, else ``pyproject.toml``, else unknown."""
    try:
        return version(TOOL)
    except PackageNotFoundError:
        pass
    try:
        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text("utf-8"))["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def package_versions() -> dict[str, str]:
    """Python's and ``PACKAGES``' versions (``"not installed"`` where missing)."""
    out = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "not installed"
    return out


def build(
    settings: AnalysisSettings,
    stages: dict[str, dict[str, Any]],
    derived_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a manifest for ``stages`` (already in the ``stages`` field's shape).

    ``derived_from``: ``{"by": "update", "data": fingerprint, "model": key}`` of the
    analysis this one was derived from, or ``None``.
    """
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": TOOL, "version": tool_version(), "code_version": CODE_VERSION},
        "versions": package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": settings.to_dict(),
        "settings_digest": settings.digest(),
        "stages": stages,
        "derived_from": derived_from,
    }


def _from_0(manifest: dict[str, Any]) -> dict[str, Any]:
    """Migrate schema 0, which had no ``settings_digest``: compute it from the settings."""
    try:
        digest = AnalysisSettings.from_dict(manifest.get("settings")).digest()
    except ConfigError:
        digest = ""  # the settings are refused, with their own sentence, by ``check``
    return {**manifest, "schema_version": "1", "settings_digest": digest}


def _from_1(manifest: dict[str, Any]) -> dict[str, Any]:
    """Migrate schema 1, which had no ``derived_from``: the analysis was derived from none."""
    return {**manifest, "schema_version": "2", "derived_from": manifest.get("derived_from")}


#: ``version -> function`` turning a manifest of that schema version into the next one.
MIGRATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"0": _from_0, "1": _from_1}


def migrate(manifest: object, file: object) -> tuple[dict[str, Any], list[str]]:
    """Bring a parsed manifest to ``SCHEMA_VERSION``; return it and notes on what was done.

    Raises
    ------
    SavedAnalysisError
        Not a manifest of this tool; a schema version that is newer than this tool's or
        that no migration starts from.
    """
    if isinstance(manifest, dict) and manifest.get("format") == KEPT_FORMAT:
        raise refuse(
            file,
            "belongs to a run whose ratings stayed in Spark (run --keep-in-spark): it holds "
            "that run's report and audit, not the ratings, model and predictions of a saved "
            "analysis",
            "write its report again with python -m engine report FOLDER --out DIR, read it in "
            "the dashboard (streamlit run dashboard/app.py -- --analysis FOLDER), update or "
            "compare it (python -m engine update / compare), or run without --keep-in-spark "
            "for a saved analysis",
        )
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise refuse(
            file,
            "is not the manifest of an analysis saved by this tool",
            "choose a folder or zip written by save_analysis",
        )
    found = manifest.get("schema_version")
    if not (isinstance(found, str) and found.isdigit() and len(found) < 10):
        raise refuse(file, f"has the schema version {found!r}, which is not a whole number")
    if int(found) > int(SCHEMA_VERSION):
        raise refuse(
            file,
            f"was written with schema version {found}, newer than this tool reads "
            f"({SCHEMA_VERSION})",
            "update the tool to open it",
        )
    notes = []
    start = found
    while manifest["schema_version"] != SCHEMA_VERSION:
        step = MIGRATIONS.get(manifest["schema_version"])
        if step is None:
            raise refuse(file, f"has the schema version {found}, which this tool cannot migrate")
        manifest = step(manifest)
    if start != SCHEMA_VERSION:
        notes.append(
            f"The analysis was saved with schema version {start}; it was migrated to "
            f"version {SCHEMA_VERSION} on opening."
        )
    return manifest, notes


def _hex(value: object) -> bool:
    return isinstance(value, str) and HEX64.fullmatch(value) is not None


def _check_stage(stage: str, entry: object, file: object) -> None:
    if not (isinstance(entry, dict) and set(entry) == {"key", "rests_on", "files"}):
        raise refuse(file, f"has a {stage} entry without exactly the fields key, rests_on, files")
    upstream = () if stage == "data" else ("data",) if stage == "systems" else STAGES[stage]
    rests_on = entry["rests_on"]
    if not (
        _hex(entry["key"])
        and isinstance(rests_on, dict)
        and set(rests_on) == set(upstream)
        and all(_hex(k) for k in rests_on.values())
    ):
        raise refuse(
            file,
            f"has a {stage} entry whose key or upstream keys ({', '.join(upstream) or 'none'}) "
            "are not 64 hexadecimal digits",
        )
    files = entry["files"]
    if not isinstance(files, dict):
        raise refuse(file, f"has a {stage} entry whose files are not an object")
    for path, described in files.items():
        if not (PATH.fullmatch(path) and path.startswith(f"{stage}/")):
            raise refuse(file, f"lists the {stage} file {path!r}, outside the {stage}/ folder")
        if not (
            isinstance(described, dict)
            and set(described) - {"table"} == {"sha256", "bytes"}
            and _hex(described["sha256"])
            and type(described["bytes"]) is int
            and described["bytes"] >= 0
        ):
            raise refuse(file, f"describes {path} without a valid sha256 and size in bytes")
        is_table = path.endswith(".parquet") and stage != "report"
        if is_table != ("table" in described):
            raise refuse(
                file, f"describes {path} {'without' if is_table else 'with'} a table schema"
            )
        if is_table:
            check_record(described["table"], f"{file} ({path})")
    missing = [p for p in REQUIRED[stage] if p not in files]
    if missing:
        raise refuse(file, f"does not list the {stage} file(s) {', '.join(missing)}")
    unknown = [
        p for p in files if p not in REQUIRED[stage] and not re.fullmatch(OPTIONAL[stage], p)
    ]
    if unknown:
        raise refuse(file, f"lists the file {unknown[0]}, which a saved {stage} never holds")


def check(manifest: dict[str, Any], file: object) -> AnalysisSettings:
    """Check a migrated manifest's structure and settings; return the settings.

    Raises
    ------
    SavedAnalysisError
        A missing or unknown field, a value of the wrong type, a stage or file entry that
        is not valid, settings this version refuses, or a settings digest that does not
        match the settings.
    """
    if set(manifest) != _FIELDS:
        raise refuse(file, f"does not hold exactly the fields {', '.join(sorted(_FIELDS))}")
    tool = manifest["tool"]
    if not (
        isinstance(tool, dict)
        and set(tool) == {"name", "version", "code_version"}
        and all(isinstance(v, str) for v in tool.values())
    ):
        raise refuse(file, "has a tool entry without a name, version and code_version")
    versions = manifest["versions"]
    if not (isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values())):
        raise refuse(file, "has package versions that are not strings")
    if not isinstance(manifest["created"], str):
        raise refuse(file, "has a creation time that is not a string")
    stages = manifest["stages"]
    if not isinstance(stages, dict) or "data" not in stages or set(stages) - set(ALL_STAGES):
        raise refuse(file, f"has stages other than {', '.join(ALL_STAGES)}, or no data")
    for stage, entry in stages.items():
        _check_stage(stage, entry, file)
    derived = manifest["derived_from"]
    if derived is not None and not (
        isinstance(derived, dict)
        and set(derived) - {"record"} == {"by", "data", "model"}
        and isinstance(derived.get("record", {}), dict)
        and derived["by"] in DERIVATIONS
        and _hex(derived["data"])
        and _hex(derived["model"])
    ):
        raise refuse(
            file,
            "has a derived_from entry that is not null or {by: update, data, model keys, "
            "optional record object}",
        )
    try:
        settings = AnalysisSettings.from_dict(manifest["settings"])
    except ConfigError as e:
        raise refuse(file, f"holds settings this version refuses ({str(e).rstrip('.')})") from e
    if manifest["settings_digest"] != settings.digest():
        raise refuse(file, "has a settings digest that does not match its settings: it was edited")
    return settings
