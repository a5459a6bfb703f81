"""The saved report of a run whose ratings stayed in Spark, opened again without Spark.

``run --engine spark --keep-in-spark --out OUT`` writes its report to ``OUT/report/`` and the
evaluation's Parquet tables to ``OUT/evaluation/``; ``save_kept`` adds what the report was
assembled from, so ``python -m engine report OUT`` writes it again (another format, the
PDF later) without Spark and without the ratings:

    OUT/manifest.json      format KEPT_FORMAT, schema KEPT_SCHEMA, tool and package
                           versions, created (UTC), where the evaluation's tables are, and
                           every file below with its SHA-256, size and table schema
    OUT/kept/profile/      the report's ``DatasetProfile``: ratings per user, per item and
                           per rating value, and the dataset's sizes
    OUT/kept/parts/        the rest of its ``ReportParts``: the load report, the model
                           settings, the accuracy, trade-off, ranking-by-group and
                           most-recommended tables, the evaluation settings, the provenance
    OUT/kept/audit/        the ``AuditResult``, stored as a saved analysis stores its audit
    OUT/user_side/         the final fit and the ratings sorted by user, for one user's
                           pages on demand (``engine.saved.user_side``; schema 2 on)

``kept/`` holds aggregates only: a row per user, per item and per list slot, never a
rating; ``user_side/`` holds the ratings, read one user (or one item) at a time. It is
not a saved analysis (``engine.saved.store``): it has no whole model in memory and no
held-out predictions. ``update`` refits its touched users from the user side into a new kept
run whose report parts and audit stay the source run's (``engine.saved.kept_update``; the
manifest's ``derived_from`` says so); ``compare`` scores its final fit from the user side
(``engine.compare.versions``); the dashboard reads it on read-only pages
(``dashboard.routes.kept_routes``). ``open_kept`` reads the folder or a zip of it into a
``SavedKeptRun`` and refuses anything that does not check out, with one ``SavedAnalysisError``
sentence; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from engine.audit import AuditResult
from engine.audit.registry import Registry
from engine.audit.specs import REGISTRY, SHARED_INPUTS
from engine.audit.tables import RANKING_BY_GROUP_COLUMNS
from engine.data.profile import DatasetProfile
from engine.report.build import Report, ReportParts, assemble_report
from engine.report.update_section import with_update
from engine.saved import jsonio, records
from engine.saved.dataset import load_report_of
from engine.saved.errors import SavedAnalysisError, refuse
from engine.saved.manifest import KEPT_FORMAT, NAME, TOOL, package_versions, tool_version
from engine.saved.source import Source
from engine.saved.stages import audit_frames
from engine.saved.store import MAX_BYTES, write_file
from engine.saved.user_side import FOLDER as SIDE_FOLDER
from engine.saved.user_side import UserSide, open_user_side

#: The schema of a kept run's ``manifest.json`` and files: "2" adds the user side, "3" the
#: manifest's ``derived_from`` (``engine.saved.kept_update``).
KEPT_SCHEMA = "3"
#: The schemas ``open_kept`` reads ("1": no user side, so no user pages).
KEPT_SCHEMAS = ("1", "2", "3")
#: What to do about a kept run's folder that is refused.
KEPT_FIX = "run the analysis again with run --engine spark --keep-in-spark"
#: The folder, inside the run's ``--out``, of the stored parts and audit.
FOLDER = "kept"
_FIELDS = {"format", "schema_version", "tool", "versions", "created", "evaluation", "files"}
#: The fields of a schema "3" manifest: ``derived_from`` added.
_FIELDS_3 = _FIELDS | {"derived_from"}
#: The keys of ``derived_from["after"]``: the merged data an updated run's model is fit to.
AFTER_KEYS = ("name", "fingerprint", "ratings", "users", "items", "first_timestamp",
              "last_timestamp")  # fmt: skip
#: ``DatasetProfile``'s series, stored as one-column tables (``_profile_record``).
_SERIES = ("user_activity", "item_popularity")
#: The stored audit's field naming its metrics: its registry, rebuilt from ``REGISTRY``.
REGISTRY_FIELD = "registry_metrics"


def _profile_record(profile: DatasetProfile) -> DatasetProfile:
    """``profile`` with its series as one-column tables, which ``records.split`` stores."""
    return replace(profile, **{name: getattr(profile, name).to_frame(
        name=getattr(profile, name).name or "count") for name in _SERIES})  # fmt: skip


def _profile(record: DatasetProfile, file: str) -> DatasetProfile:
    """``_profile_record`` read back: its one-column tables as the series they were."""
    frames = {name: getattr(record, name) for name in _SERIES}
    if not all(isinstance(f, pd.DataFrame) and f.shape[1] == 1 for f in frames.values()):
        raise refuse(file, "has a dataset profile whose series are not one-column tables",
                     KEPT_FIX)  # fmt: skip
    return replace(record, **{name: frame.iloc[:, 0] for name, frame in frames.items()})


def save_kept(
    out: str | Path,
    parts: ReportParts,
    result: AuditResult,
    evaluation: str,
    user_side: dict[str, dict[str, Any]] | None = None,
    derived_from: dict[str, Any] | None = None,
) -> Path:
    """Store what the report of a run kept in Spark rests on under ``out`` (module docstring).

    ``evaluation``: where the evaluation's Parquet tables are (recorded, not read);
    ``user_side``: the records of the files ``engine.saved.user_side.write_user_side``
    wrote under ``out`` (listed in the manifest; ``None``: there are none);
    ``derived_from``: ``None``, or what ``engine.saved.kept_update`` updated the run from. The
    files are written first and ``manifest.json`` last, so an interrupted save leaves no
    manifest (nothing that opens); a kept run's earlier files there are replaced. Returns
    ``out``.

    Raises
    ------
    SavedAnalysisError
        ``out`` holds a saved analysis (its ``manifest.json`` is not a kept run's) or files
        a kept run does not write (``check_kept_target``): it is not overwritten.
    """
    out = Path(out)
    unknown = [spec.key for spec in result.registry if REGISTRY.get(spec.key) is not spec]
    if unknown:
        raise SavedAnalysisError(
            f"The audit's metric {unknown[0]!r} is not a built-in metric, so the kept run "
            "cannot be saved: a saved audit names its metrics, and only built-in ones are "
            "rebuilt on opening."
        )
    manifest = clear_manifest(out)
    shutil.rmtree(out / FOLDER, ignore_errors=True)
    if user_side is None:
        shutil.rmtree(out / SIDE_FOLDER, ignore_errors=True)  # an earlier run's
    files: dict[str, Any] = dict(user_side or {})
    metrics = [spec.key for spec in result.registry]  # audited_registry's, rebuilt on opening
    stored = {
        "profile": _profile_record(parts.profile),
        "parts": replace(parts, profile=None, load=asdict(parts.load)),  # both stored apart
        "audit": replace(result, registry=REGISTRY),
    }
    for name, value in stored.items():
        tables, values = records.split(value)
        if name == "audit":
            values[REGISTRY_FIELD] = metrics
        for field, frame in tables.items():
            path = f"{FOLDER}/{name}/{field}.parquet"
            files[path] = write_file(out / path, frame, f"The kept {name} table {field}")
        path = f"{FOLDER}/{name}/fields.json"
        files[path] = write_file(out / path, jsonio.dumps(values, f"The kept {name} fields"))
    document = {
        "format": KEPT_FORMAT,
        "schema_version": KEPT_SCHEMA,
        "tool": {"name": TOOL, "version": tool_version()},
        "versions": package_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "evaluation": evaluation,
        "files": files,
        "derived_from": derived_from,
    }
    write_file(manifest, jsonio.dumps(document, "The kept run's manifest"))
    return out


#: The entries a kept run's folder holds: what ``save_kept`` and the user side write, the
#: CLI's ``report/`` and ``evaluation/``, and an update's ``update.json``.
KEPT_ENTRIES = frozenset({NAME, FOLDER, SIDE_FOLDER, "report", "evaluation", "update.json"})


def check_kept_target(out: Path) -> None:
    """Refuse ``out`` as a kept run's folder unless it is missing, empty or a kept run's.

    A kept run replaces its own entries there (``KEPT_ENTRIES``; an interrupted run leaves
    them without a manifest and is accepted too), so a folder holding anything else is not
    written into, as ``save_analysis`` refuses a folder that is not a saved analysis.

    Raises
    ------
    SavedAnalysisError
        ``out`` is not a folder, holds a saved analysis, or holds other files.
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SavedAnalysisError(f"{out} exists and is not a folder: choose a folder name.")
    if not out.is_dir():
        return
    manifest = out / NAME
    if manifest.exists() and _format_of(manifest) != KEPT_FORMAT:
        raise SavedAnalysisError(
            f"{out} holds a saved analysis, which a run kept in Spark does not replace: "
            "choose another --out folder."
        )
    others = sorted(entry.name for entry in out.iterdir() if entry.name not in KEPT_ENTRIES)
    if others:
        raise SavedAnalysisError(
            f"{out} holds {len(others):,} file(s) or folder(s) a kept run does not write "
            f"(first: {others[0]!r}), so it is not written into: choose another --out "
            "folder, or empty this one first."
        )


def clear_manifest(out: Path) -> Path:
    """Remove a kept run's ``manifest.json`` from ``out`` before files are written there.

    An interrupted save then leaves no manifest listing files it did not write. Returns the
    manifest's path.

    Raises
    ------
    SavedAnalysisError
        ``out`` is not a kept run's folder (``check_kept_target``): it is not overwritten.
    """
    check_kept_target(out)
    manifest = out / NAME
    manifest.unlink(missing_ok=True)
    return manifest


def _format_of(manifest: Path) -> object:
    try:
        found = jsonio.loads(manifest.read_bytes(), manifest)
    except (OSError, SavedAnalysisError):
        return None
    return found.get("format") if isinstance(found, dict) else None


def is_kept(path: str | Path) -> bool:
    """Whether ``path`` (a folder, or a zip of one) holds a kept run's ``manifest.json``."""
    path = Path(path)
    if path.is_dir():
        manifest = path / NAME
        return manifest.is_file() and _format_of(manifest) == KEPT_FORMAT
    try:
        found = jsonio.loads(Source(path, MAX_BYTES).manifest(), str(path))
    except SavedAnalysisError:
        return False
    return isinstance(found, dict) and found.get("format") == KEPT_FORMAT


@dataclass(frozen=True)
class SavedKeptRun:
    """A kept run opened again (``open_kept``): what its report and the dashboard read.

    ``parts``: the report's ``ReportParts``; ``result``: the ``AuditResult``; ``manifest``:
    its ``manifest.json`` (format, versions, ``created``, where the evaluation's tables are);
    ``path``: the folder or zip it was read from; ``users``: its user side, from which the
    user pages read one user at a time (``None``: saved without one, schema "1").
    """

    parts: ReportParts
    result: AuditResult
    manifest: dict[str, Any]
    path: Path
    users: UserSide | None = None

    @property
    def key(self) -> str:
        """Return the SHA-256 of the manifest's file records (the same key: the same files)."""
        listed = json.dumps(self.manifest["files"], sort_keys=True).encode("utf-8")
        return hashlib.sha256(listed).hexdigest()

    @property
    def saved(self) -> str:
        """Return when the run was saved, as ``YYYY-MM-DD HH:MM UTC``."""
        created = datetime.fromisoformat(str(self.manifest["created"]))
        return created.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")

    @property
    def derived_from(self) -> dict[str, Any] | None:
        """Return what the run was updated from (``engine.saved.kept_update``), else ``None``.

        ``{"by": "update", "data", "model", "record", "after"}``: the fingerprint and key of
        the run it was updated from, the ``UpdateRecord`` and ``after`` (``AFTER_KEYS``: the
        merged data's name, fingerprint, sizes and first and last rating). Its report parts
        and audit are that run's.
        """
        return self.manifest.get("derived_from")

    def report(self, sections: tuple[str, ...] | list[str] | None = None) -> Report:
        """Assemble its ``Report`` again (``sections`` as in ``build_report``).

        Equal to the report the run wrote (the same creation time: it is in the parts'
        provenance); an updated run's has the "Model update" section.
        """
        report = assemble_report(self.result, **self.parts.arguments(), sections=sections)
        return with_update(report, self.derived_from)


def open_kept(path: str | Path, *, max_bytes: int = MAX_BYTES) -> SavedKeptRun:
    """Read a kept run (its folder, or a zip of it) back, every file verified.

    Raises
    ------
    SavedAnalysisError
        Not a kept run; a file missing, modified, of another schema, too large or not
        valid; a schema version newer than this tool reads.
    """
    source = Source(path, max_bytes)
    where = source.where(NAME)
    found = jsonio.loads(source.manifest(), where)
    if not isinstance(found, dict) or found.get("format") != KEPT_FORMAT:
        raise refuse(where, "is not the manifest of a run kept in Spark",
                     "choose the --out folder of run --engine spark --keep-in-spark")  # fmt: skip
    schema = found.get("schema_version")
    if schema not in KEPT_SCHEMAS or set(found) != (_FIELDS_3 if schema == "3" else _FIELDS):
        raise refuse(
            where,
            f"has the schema version {found.get('schema_version')!r} or fields this tool does "
            f"not read (schemas {', '.join(KEPT_SCHEMAS)})",
            f"open it with the tool version that wrote it, or {KEPT_FIX}",
        )
    source.entries = _entries(found["files"], where)
    total = sum(entry["bytes"] for entry in source.entries.values())
    if total > max_bytes:
        raise refuse(where, f"lists {total:,} bytes of files, over the limit of {max_bytes:,}",
                     "raise open_kept(max_bytes=...) if the run is genuine")  # fmt: skip
    profile = _profile(_join(DatasetProfile, source, "profile"), where)
    parts = _join(ReportParts, source, "parts")
    load = load_report_of(parts.load, source.where(f"{FOLDER}/parts/fields.json"))
    result = _join(AuditResult, source, "audit")
    list(audit_frames(result, source, f"{FOLDER}/audit"))  # each table checked as yielded
    ranking = parts.ranking_by_group
    if not set(RANKING_BY_GROUP_COLUMNS[:5]) <= set(ranking.columns):
        where = source.where(f"{FOLDER}/parts/ranking_by_group.parquet")
        raise refuse(where, f"lacks columns of {', '.join(RANKING_BY_GROUP_COLUMNS)}", KEPT_FIX)
    ranking = ranking.reindex(columns=RANKING_BY_GROUP_COLUMNS)  # saved before the intervals
    parts = replace(parts, profile=profile, load=load, ranking_by_group=ranking)
    derived = _derived(found.get("derived_from"), where)
    run = SavedKeptRun(parts, result, found, Path(path))
    name = derived["after"]["name"] if derived else profile.name
    users = open_user_side(source, parts.model, load, name, run.key)
    return replace(run, users=users)


def _derived(derived: object, where: str) -> dict[str, Any] | None:
    """Check a manifest's ``derived_from``: ``None``, or an update's (``SavedKeptRun``)."""
    after = derived.get("after") if isinstance(derived, dict) else None
    ok = derived is None or (
        isinstance(derived, dict) and set(derived) == {"by", "data", "model", "record", "after"}
        and derived["by"] == "update" and isinstance(derived["record"], dict)
        and all(isinstance(derived[key], str) for key in ("data", "model"))
        and isinstance(after, dict) and set(after) == set(AFTER_KEYS)
        and isinstance(after["name"], str)
        and all(isinstance(after[key], int) for key in ("ratings", "users", "items"))
    )  # fmt: skip
    if not ok:
        raise refuse(where, "has a derived_from entry that is not null or an update's "
                     "{by, data, model, record, after}", KEPT_FIX)  # fmt: skip
    return derived  # type: ignore[return-value]


def _entries(files: object, where: str) -> dict[str, dict[str, Any]]:
    ok = isinstance(files, dict) and all(
        isinstance(path, str) and path.startswith((f"{FOLDER}/", f"{SIDE_FOLDER}/"))
        and ".." not in path
        and isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("bytes"), int) and entry["bytes"] >= 0
        and (not path.endswith(".parquet") or isinstance(entry.get("table"), dict))
        for path, entry in files.items()
    )  # fmt: skip
    if not ok:
        raise refuse(where, "lists its files in a form this tool does not read")
    return files  # type: ignore[return-value]


def _registry(metrics: object, file: str) -> Registry:
    """Rebuild the registry of the built-in metric specs ``metrics`` names, in that order."""
    if not (isinstance(metrics, list) and all(isinstance(m, str) for m in metrics)):
        raise refuse(file, f"has no list of the audited metrics ({REGISTRY_FIELD})", KEPT_FIX)
    unknown = [m for m in metrics if m not in REGISTRY]
    if unknown:
        raise refuse(file, f"names the metric {unknown[0]!r}, which this version does not have",
                     KEPT_FIX)  # fmt: skip
    return Registry(SHARED_INPUTS, [REGISTRY[m] for m in metrics])


def _join(kind: type, source: Source, name: str) -> Any:
    prefix = f"{FOLDER}/{name}/"
    tables = {
        path[len(prefix) : -len(".parquet")]: source.table(path)
        for path in source.entries
        if path.startswith(prefix) and path.endswith(".parquet")
    }
    fields_file = f"{prefix}fields.json"
    if fields_file not in source.entries:
        raise refuse(source.where(NAME), f"does not list {fields_file}")
    values = source.json(fields_file)
    if not isinstance(values, dict):
        raise refuse(source.where(fields_file), "is not a JSON object of fields")
    where = source.where(fields_file)
    if kind is AuditResult:
        registry = _registry(values.pop(REGISTRY_FIELD, None), where)
        return replace(records.join(kind, tables, values, where), registry=registry)
    return records.join(kind, tables, values, where)


def kept_report(
    path: str | Path, sections: tuple[str, ...] | list[str] | None = None
) -> tuple[Report, AuditResult]:
    """Assemble the ``Report`` of a kept run again from its stored parts (``open_kept``)."""
    run = open_kept(path)
    return run.report(sections), run.result
