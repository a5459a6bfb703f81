"""Keep each browser session's work on the server, so a refresh does not lose it.

A session that uploads data or computes a stage gets a **token**: 128 random bits
(``secrets.token_urlsafe(16)``), put in the page URL as ``?session=TOKEN``. Its work is
saved as a saved analysis (``engine.saved``) in ``SESSION_DIR/<sha256(token)>``: the
folder is named by the token's hash, so a directory listing reveals no usable token, and
a token is only accepted in its exact form (22 URL-safe characters), so no crafted value
reaches the file system. Only a browser that holds the URL can restore the work.

Limits, each from an environment variable:

* ``RECSYS_SESSION_DIR``: where the work is kept (default: ``recsys-audit-sessions`` in
  the system's temporary folder);
* ``RECSYS_SESSION_RETENTION_HOURS``: how long unused work is kept (default 24); older
  folders are deleted whenever a session saves or restores;
* ``RECSYS_SESSION_MAX_MB``: the most one session may keep (default 500); larger work is
  not kept, and the page says so.

The analyst's own systems (lists and predictions uploaded on the Data page, with the
held-out ratings that judge them) are kept with the work, in the saved analysis's
``systems`` stage (``engine.saved.systems``). A run kept in Spark opened from an upload
(``save_kept_run``) is kept as its zip in ``SESSION_DIR/<sha256(token)>.kept``, beside the
analysis, which it leaves as it was.

The analyst can delete their work at any time ("Forget my data" in the sidebar).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engine.analysis import Analysis
from engine.errors import DataError, EngineError
from engine.external import ExternalSystem, HeldOut, temporal_heldout
from engine.external.heldout import no_heldout
from engine.saved import SavedAnalysis, read_saved, save_analysis
from engine.saved.systems import SavedSystems

_LOGGER = logging.getLogger(__name__)
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
DEFAULT_RETENTION_HOURS = 24.0
DEFAULT_MAX_MB = 500.0
#: A session's run kept in Spark (``save_kept_run``): beside its analysis's folder, with
#: this suffix, holding the uploaded zip and the name it was uploaded under.
KEPT_SUFFIX = ".kept"
KEPT_ZIP = "run.zip"
KEPT_NAME = "name.txt"


@dataclass(frozen=True)
class SessionLimits:
    """Where session work is kept, for how long, and how much per session."""

    folder: Path
    retention_hours: float = DEFAULT_RETENTION_HOURS
    max_mb: float = DEFAULT_MAX_MB

    @classmethod
    def from_environment(cls) -> SessionLimits:
        """Read the ``RECSYS_SESSION_*`` variables (see the module docstring)."""
        default = Path(tempfile.gettempdir()) / "recsys-audit-sessions"
        return cls(
            folder=Path(os.environ.get("RECSYS_SESSION_DIR") or default),
            retention_hours=_positive("RECSYS_SESSION_RETENTION_HOURS", DEFAULT_RETENTION_HOURS),
            max_mb=_positive("RECSYS_SESSION_MAX_MB", DEFAULT_MAX_MB),
        )

    def describe(self) -> str:
        """E.g. ``'kept on this server for 24 hours (at most 500 MB)'``."""
        return (
            f"kept on this server for {self.retention_hours:g} hours (at most {self.max_mb:g} MB)"
        )


def _positive(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        _LOGGER.warning("%s=%r is not a positive number; using %g", name, text, default)
        return default
    return value


class SessionTooLarge(EngineError):
    """A session's work over ``SessionLimits.max_mb``: it is not kept."""


def new_token() -> str:
    """Return a fresh session token: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


def is_token(value: object) -> bool:
    """Whether ``value`` has the exact form of a token (anything else is ignored)."""
    return isinstance(value, str) and _TOKEN.fullmatch(value) is not None


def folder_of(token: str, limits: SessionLimits) -> Path:
    """Return the folder holding ``token``'s work (named by the token's SHA-256)."""
    if not is_token(token):
        raise ValueError("not a session token")
    return limits.folder / hashlib.sha256(token.encode()).hexdigest()


def kept_systems(
    analysis: Analysis, systems: list[ExternalSystem], heldout: HeldOut | None = None
) -> SavedSystems | None:
    """Return the systems to keep with ``analysis`` (``None`` without any).

    ``heldout`` is the held-out ratings the analyst chose (a file); by default the temporal
    split of the data, as the Bias audit page judges them (where the data cannot be split
    in time, no held-out ratings, with the reason as a note).
    """
    if not systems:
        return None
    if heldout is None:
        try:
            heldout = temporal_heldout(analysis.data)
        except DataError as error:
            heldout = no_heldout(analysis.data, [str(error)])
    return SavedSystems(tuple(systems), heldout)


def save_work(
    token: str,
    analysis: Analysis,
    limits: SessionLimits,
    systems: SavedSystems | None = None,
) -> Path:
    """Save ``analysis`` (and ``systems``) as ``token``'s work; refuse work over the size cap.

    Raises
    ------
    SessionTooLarge
        The saved analysis is larger than ``limits.max_mb``; nothing is kept.
    """
    forget_expired(limits)
    limits.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = save_analysis(analysis, folder_of(token, limits), systems=systems)
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    if size > limits.max_mb * 1e6:
        shutil.rmtree(folder, ignore_errors=True)
        raise SessionTooLarge(
            f"This session's work takes {size / 1e6:,.0f} MB, more than the "
            f"{limits.max_mb:g} MB kept per session: a refresh will lose it. Save the analysis "
            "(Data page) to keep it."
        )
    return folder


def restore_work(token: str, limits: SessionLimits) -> Analysis | None:
    """Return the work saved under ``token``, or ``None`` when there is none (or it expired)."""
    saved = restore_saved(token, limits)
    return None if saved is None else saved.analysis


def restore_saved(token: str, limits: SessionLimits) -> SavedAnalysis | None:
    """``restore_work`` with the systems kept with it (``SavedAnalysis.systems``)."""
    forget_expired(limits)
    folder = folder_of(token, limits)
    if not (folder / "manifest.json").is_file():
        return None
    os.utime(folder)  # used again: the retention counts from now
    saved = read_saved(folder)
    for note in saved.notes:  # as open_analysis does
        _LOGGER.warning("%s", note)
    saved.analysis.notes.extend(saved.notes)
    return saved


def kept_run_folder(token: str, limits: SessionLimits) -> Path:
    """Return the folder holding the run kept in Spark ``token``'s session reads, if any."""
    return folder_of(token, limits).with_name(folder_of(token, limits).name + KEPT_SUFFIX)


def save_kept_run(token: str, archive: Path, name: str, limits: SessionLimits) -> Path:
    """Keep the zip of a run kept in Spark that ``token``'s session opened, with its name.

    ``archive``: the zip as uploaded (``engine.saved.kept.open_kept`` checked it); ``name``:
    what the pages call it. Stored apart from the session's analysis, which it does not
    replace: closing the run returns to that.

    Raises
    ------
    SessionTooLarge
        The zip is larger than ``limits.max_mb``; nothing is kept.
    """
    forget_expired(limits)
    size = archive.stat().st_size
    if size > limits.max_mb * 1e6:
        raise SessionTooLarge(
            f"This run takes {size / 1e6:,.0f} MB, more than the {limits.max_mb:g} MB kept per "
            "session: a refresh will lose it. Start the dashboard on its folder instead "
            "(streamlit run dashboard/app.py -- --analysis FOLDER)."
        )
    limits.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = kept_run_folder(token, limits)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    shutil.copyfile(archive, folder / KEPT_ZIP)
    (folder / KEPT_NAME).write_text(name, encoding="utf-8")
    return folder


def restore_kept_run(token: str, limits: SessionLimits) -> tuple[Path, str] | None:
    """Return ``(zip, name)`` of the run kept in Spark saved for ``token``, else ``None``."""
    folder = kept_run_folder(token, limits)
    if not (folder / KEPT_ZIP).is_file():
        return None
    os.utime(folder)  # used again: the retention counts from now
    name = (
        (folder / KEPT_NAME).read_text(encoding="utf-8") if (folder / KEPT_NAME).is_file() else ""
    )
    return folder / KEPT_ZIP, name or KEPT_ZIP


def forget_kept_run(token: str, limits: SessionLimits) -> None:
    """Delete the run kept in Spark saved for ``token`` (its session closed it)."""
    shutil.rmtree(kept_run_folder(token, limits), ignore_errors=True)


def forget(token: str, limits: SessionLimits) -> bool:
    """Delete ``token``'s work (its analysis and any run kept in Spark); return whether any."""
    existed = False
    for folder in (folder_of(token, limits), kept_run_folder(token, limits)):
        existed = existed or folder.exists()
        shutil.rmtree(folder, ignore_errors=True)
    return existed


def forget_expired(limits: SessionLimits, now: float | None = None) -> int:
    """Delete work unused for longer than the retention; return how many sessions."""
    if not limits.folder.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - limits.retention_hours * 3600
    removed = 0
    for folder in limits.folder.iterdir():
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
        except OSError:  # removed by another session meanwhile
            continue
    return removed
