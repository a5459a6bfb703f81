"""Save an ``Analysis`` to a folder, open it again, zip it for download.

Layout of a saved analysis (see ``manifest`` for the manifest's fields)::

    manifest.json
    data/ratings.parquet  data/users.parquet  data/items.parquet  data/data.json
    model/model.npz  model/model.json
    evaluation/<field>.parquet ...  evaluation/fields.json
    lists/lists.parquet
    audit/<field>.parquet ...  audit/fields.json
    report/<report files given to save_analysis>
    systems/systems.json  systems/<lists|predictions>_<i>.parquet  systems/heldout.parquet

Only computed stages are written (the data always). ``open_analysis`` verifies, in this
order, before any stage is used: the manifest (size, depth, schema version, fields,
settings and their digest), each file's size and SHA-256, the chain (each stage rests on
the keys of the stages saved with it), the dataset (every table and field, and its
fingerprint recomputed), then each stage's key against the one its data and settings
give now, its tables' values, and ``Analysis.adopt``'s own check. A stage saved by another
``CODE_VERSION`` is not refused but left out, to be computed again (``SavedAnalysis.notes``
says so); anything else that does not match is refused with one ``SavedAnalysisError``
sentence naming the file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.analysis import CODE_VERSION, STAGES, Analysis, AnalysisSettings, StageMismatchError
from engine.data.types import RatingData
from engine.saved import jsonio, manifest
from engine.saved.dataset import META, dataset_files, read_dataset
from engine.saved.errors import SavedAnalysisError, refuse
from engine.saved.source import Source
from engine.saved.stages import read_stage, stage_files
from engine.saved.systems import STAGE as SYSTEMS
from engine.saved.systems import SavedSystems, read_systems, systems_files, systems_key
from engine.saved.tables import write_table

log = logging.getLogger(__name__)

#: Default limit on a saved analysis: its files together, a zip of it, and any one table
#: once decompressed, in bytes (2 GiB).
MAX_BYTES = 2 << 30
_REPORT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
_STORED = (".parquet", ".npz")  # already compressed: stored as is in a zip


@dataclass
class SavedAnalysis:
    """An opened analysis with what came with it.

    Attributes
    ----------
    analysis
        The analysis, with every saved stage that was verified adopted.
    report_files
        The rendered report files saved with it (``{file name: bytes}``), or none when the
        report stage was left out.
    notes
        Sentences about what was migrated or left out to be computed again.
    manifest
        The (migrated) manifest.
    systems
        The analyst's own systems saved with it (``engine.saved.systems``), else ``None``.
    """

    analysis: Analysis
    report_files: dict[str, bytes] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    systems: SavedSystems | None = None


# -- save ------------------------------------------------------------------------------
def _is_saved(folder: Path) -> bool:
    try:
        found = jsonio.loads((folder / manifest.NAME).read_bytes(), folder / manifest.NAME)
    except (OSError, SavedAnalysisError):
        return False
    return isinstance(found, dict) and found.get("format") == manifest.FORMAT


def _check_target(folder: Path) -> None:
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise SavedAnalysisError(
            f"{folder} exists and is not a folder: choose a folder name for the saved analysis."
        )
    if folder.is_dir() and any(folder.iterdir()) and not _is_saved(folder):
        raise SavedAnalysisError(
            f"{folder} exists and is not a saved analysis (it has no {manifest.NAME} of this "
            "tool), so it is not replaced: choose another folder, or empty this one first."
        )


def write_file(path: Path, content: bytes | pd.DataFrame, where: str = "") -> dict[str, Any]:
    """Write ``content`` to ``path`` and sync it; return its ``sha256`` and size in ``bytes``.

    A DataFrame is written as Parquet straight to the file (``tables.write_table``, a row
    group at a time; ``table`` in the result is its schema record), so a large table's file
    is never held in memory; the digest is read back from the file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    record = None
    with path.open("w+b") as handle:
        if isinstance(content, pd.DataFrame):
            record = write_table(content, where, handle)
        else:
            handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
        handle.seek(0)
        described = {"sha256": hashlib.file_digest(handle, "sha256").hexdigest()}
        described["bytes"] = handle.tell()
    return described if record is None else described | {"table": record}


def _stage_entry(analysis: Analysis, stage: str, files: dict[str, Any], scratch: Path) -> dict:
    described = {}
    for path, content in files.items():
        if not isinstance(content, pd.DataFrame | bytes):
            content = jsonio.dumps(content, f"The {stage} file {path}")
        described[path] = write_file(scratch / path, content, f"The {stage} table {path}")
    if stage == SYSTEMS:  # inputs, like the data: keyed by their content
        return {"key": systems_key(described), "rests_on": {"data": analysis.key("data")},
                "files": described}  # fmt: skip
    upstream = () if stage == "data" else STAGES[stage]
    return {
        "key": analysis.key(stage),
        "rests_on": {up: analysis.key(up) for up in upstream},
        "files": described,
    }


def _replace(scratch: Path, folder: Path) -> None:
    """Rename ``scratch`` to ``folder``; an existing ``folder`` is swapped out, then deleted."""
    try:
        os.replace(scratch, folder)  # atomic when folder is absent or an empty folder
        return
    except OSError:
        if not folder.is_dir():
            raise
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
    os.replace(folder, old / "saved")
    try:
        os.replace(scratch, folder)
    except OSError:
        os.replace(old / "saved", folder)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def save_analysis(
    analysis: Analysis,
    folder: str | Path,
    *,
    report_files: dict[str, bytes] | None = None,
    derived_from: dict[str, Any] | None = None,
    systems: SavedSystems | None = None,
) -> Path:
    """Write the analysis's computed stages (the data always) and ``report_files`` to ``folder``.

    The files are written to a temporary folder beside ``folder``, which is then renamed
    to ``folder``: a reader never sees a half-written analysis, and an older saved
    analysis in ``folder`` is replaced only once the new one is complete.

    Parameters
    ----------
    analysis
        The analysis; stages not computed yet are not written (and not computed).
    folder
        The folder to write; it may exist if it is empty or holds a saved analysis.
    report_files
        Rendered report files (``engine.report.render``'s ``{file name: bytes}``), written
        under ``report/``; plain file names only.
    derived_from
        ``{"by": "update", "data": fingerprint, "model": model key}`` of the analysis this
        one was derived from (``python -m engine update``), and optionally ``"record"``
        (the ``UpdateRecord`` as plain JSON), recorded in the manifest.
    systems
        The analyst's own systems and their held-out ratings (``engine.saved.systems``),
        written under ``systems/``; ``read_saved`` gives them back.

    Returns
    -------
    Path
        ``folder``.

    Raises
    ------
    SavedAnalysisError
        ``folder`` exists and is not a saved analysis, a report file name is not a plain
        name, or a table holds a column of a type that cannot be stored exactly.
    """
    folder = Path(folder)
    _check_target(folder)
    files: dict[str, dict[str, Any]] = {"data": dataset_files(analysis.data)}
    lists = analysis.result("lists")
    shared = {} if lists is None else {"lists": lists}
    for stage in STAGES:
        value = None if stage == "report" else analysis.result(stage)
        if value is not None:
            files[stage] = stage_files(stage, value, shared)
    for name, content in (report_files or {}).items():
        if not (
            isinstance(name, str) and _REPORT_NAME.fullmatch(name) and isinstance(content, bytes)
        ):
            raise SavedAnalysisError(
                f"The report file {name!r} cannot be saved: give plain file names (letters, "
                "digits, '_', '.', '-') mapped to bytes."
            )
        files.setdefault("report", {})[f"report/{name}"] = content
    if systems is not None:
        files[SYSTEMS] = systems_files(systems, analysis.data)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.saving-", dir=folder.parent))
    try:
        stages = {stage: _stage_entry(analysis, stage, f, scratch) for stage, f in files.items()}
        built = manifest.build(analysis.settings, stages, derived_from)
        write_file(scratch / manifest.NAME, jsonio.dumps(built))
        _replace(scratch, folder)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    log.info("saved %s to %s (%s)", analysis.data.name, folder, ", ".join(files))
    return folder


# -- open ------------------------------------------------------------------------------
def _read_manifest(source: Source) -> tuple[dict[str, Any], AnalysisSettings, list[str]]:
    where = source.where(manifest.NAME)
    found, notes = manifest.migrate(jsonio.loads(source.manifest(), where), where)
    settings = manifest.check(found, where)
    source.entries = {p: d for e in found["stages"].values() for p, d in e["files"].items()}
    total = sum(d["bytes"] for d in source.entries.values())
    if total > source.max_bytes:
        raise refuse(
            where,
            f"lists {total:,} bytes of files, over the limit of "
            f"{source.max_bytes:,} (open_analysis(max_bytes=...))",
            "raise the limit if the analysis is genuine",
        )
    return found, settings, notes


def _read_data(source: Source, entry: dict[str, Any]) -> RatingData:
    tables = {p: source.table(p) for p in entry["files"] if p.endswith(".parquet")}
    files = {p: source.where(p) for p in entry["files"]}
    data = read_dataset(source.json(META), tables, files)
    if data.fingerprint != entry["key"]:
        raise refuse(
            source.where(manifest.NAME),
            f"gives the data the key {entry['key'][:12]}, "
            f"but the saved dataset's fingerprint is {data.fingerprint[:12]}",
        )
    return data


def _check_chain(stages: dict[str, Any], where: str) -> None:
    """Refuse a stage that rests on another key than the stage saved with it."""
    for stage in (s for s in STAGES if s in stages):
        for up, key in stages[stage]["rests_on"].items():
            if up in stages and stages[up]["key"] != key:
                raise refuse(
                    where,
                    f"says the {stage} rests on the {up} {key[:12]}, but the saved {up} is "
                    f"{stages[up]['key'][:12]}: the stages do not belong together",
                )


def _stages_to_adopt(
    found: dict[str, Any], analysis: Analysis, where: str, notes: list[str]
) -> list[str]:
    """Check the stage keys; return the stages to adopt (none after a code change)."""
    stages = found["stages"]
    saved = [s for s in STAGES if s in stages]
    code = found["tool"]["code_version"]
    if code != CODE_VERSION:
        if saved:
            notes.append(
                f"The analysis was saved by engine code version {code}, this is {CODE_VERSION}: "
                f"its {', '.join(saved)} will be computed again from the saved data."
            )
        return []
    for stage in saved:
        for up, key in stages[stage]["rests_on"].items():
            if key != analysis.key(up):
                raise refuse(
                    where,
                    f"says the {stage} rests on the {up} {key[:12]}, but the saved data and "
                    f"settings give {analysis.key(up)[:12]}: the manifest was edited",
                )
        if stages[stage]["key"] != analysis.key(stage):
            raise refuse(
                where,
                f"gives the {stage} the key {stages[stage]['key'][:12]}, but the saved data and "
                f"settings give {analysis.key(stage)[:12]}: the manifest was edited",
            )
    return saved


def _mismatch(error: StageMismatchError) -> str:
    """Return the problems named by ``check_stage``'s sentence, without its advice."""
    text = str(error)
    problems = text.split(": ", 1)[-1].removesuffix(" Compute it again.").rstrip(".")
    return problems if "does not belong to this analysis" in text else text.rstrip(".")


def read_saved(path: str | Path, *, max_bytes: int = MAX_BYTES) -> SavedAnalysis:
    """Open a saved analysis with its report files and notes (see ``open_analysis``)."""
    source = Source(path, max_bytes)
    found, settings, notes = _read_manifest(source)
    stages = found["stages"]
    _check_chain(stages, source.where(manifest.NAME))
    analysis = Analysis(_read_data(source, stages["data"]), settings)
    report_files: dict[str, bytes] = {}
    for stage in _stages_to_adopt(found, analysis, source.where(manifest.NAME), notes):
        paths = sorted(stages[stage]["files"])
        if stage == "report":
            report_files = {p.removeprefix("report/"): source.read(p) for p in paths}
            continue
        value = read_stage(stage, source, paths, analysis)
        try:
            analysis.adopt(stage, value, stages[stage]["key"])
        except StageMismatchError as e:
            described = next((p for p in paths if p.endswith(".json")), paths[0])
            raise refuse(
                source.where(described),
                f"does not belong with the saved data and settings: {_mismatch(e)}",
            ) from e
    systems = None
    if SYSTEMS in stages:  # inputs, like the data: restored whatever code version saved them
        systems = read_systems(source, stages[SYSTEMS], analysis.data, stages["data"]["key"])
    return SavedAnalysis(analysis, report_files, notes, found, systems)


def open_analysis(path: str | Path, *, max_bytes: int = MAX_BYTES) -> Analysis:
    """Open a folder written by ``save_analysis``, or a zip of one, verifying everything.

    Parameters
    ----------
    path
        The folder, or a ``.zip`` holding it (at its root or in one folder).
    max_bytes
        Limit on the zip, on the files together and on any table once decompressed
        (default ``MAX_BYTES``, 2 GiB).

    Returns
    -------
    Analysis
        The saved data and settings, with each saved stage adopted; stages saved by another
        code version are left out, to be computed on demand (said in ``Analysis.notes``
        and logged as a warning; ``read_saved`` also returns the report files and the
        analyst's own systems saved with it, ``SavedAnalysis.systems``).

    Raises
    ------
    SavedAnalysisError
        Any check of the module docstring failing: one sentence naming the file, the
        problem and what to do.
    """
    saved = read_saved(path, max_bytes=max_bytes)
    for note in saved.notes:
        log.warning("%s", note)
    saved.analysis.notes.extend(saved.notes)
    return saved.analysis


def zip_analysis(folder: str | Path) -> bytes:
    """Return a zip of a saved analysis folder (in a folder of its name), files verified.

    Raises
    ------
    SavedAnalysisError
        ``folder`` is not a saved analysis folder, or a file differs from its manifest.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SavedAnalysisError(
            f"{folder} is not a folder: give the folder the analysis was saved to."
        )
    source = Source(folder, MAX_BYTES)
    raw = source.manifest()
    _read_manifest(source)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{folder.name}/{manifest.NAME}", raw, zipfile.ZIP_DEFLATED)
        for path in sorted(source.entries):
            method = zipfile.ZIP_STORED if path.endswith(_STORED) else zipfile.ZIP_DEFLATED
            archive.writestr(f"{folder.name}/{path}", source.read(path), method)
    return buffer.getvalue()
