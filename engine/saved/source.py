"""Reading the files of a saved analysis from its folder or from a zip of it, verified.

A zip is opened with ``engine.data.archive.open_zip`` (entry names inside the root, total
size and per-entry compression ratio checked before anything is decompressed, reads
bounded); the analysis may sit at the zip's root or in one folder inside it. In a folder,
only regular files that are not symbolic links are read. Every file is read only through
``read``, which checks its size against the manifest before reading and its SHA-256
after.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from engine.data.archive import Archive, is_zip, open_zip
from engine.data.types import DataFile, LoadOptions
from engine.errors import DataError
from engine.saved import jsonio
from engine.saved.errors import SavedAnalysisError, refuse
from engine.saved.manifest import NAME
from engine.saved.tables import decode_table

_WHAT = "choose a folder that python -m engine run or update wrote, or a .zip of it"


class Source:
    """The files of one saved analysis; ``entries`` (from the manifest) say what to expect."""

    def __init__(self, path: str | Path, max_bytes: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.entries: dict[str, dict[str, Any]] = {}
        self._archive: Archive | None = None
        self._prefix = ""
        if self.path.is_dir():
            return
        if not self.path.is_file():
            raise SavedAnalysisError(f"{self.path} does not exist: {_WHAT}.")
        size = self.path.stat().st_size
        if size > max_bytes:
            raise refuse(
                self.path,
                f"is {size:,} bytes, over the limit of {max_bytes:,} "
                "(open_analysis(max_bytes=...))",
                "raise the limit if it is genuine",
            )
        content = self.path.read_bytes()
        if not is_zip(content):
            raise refuse(self.path, "is neither a folder nor a zip archive", _WHAT)
        options = LoadOptions(max_archive_bytes=max_bytes)
        try:
            self._archive = open_zip(DataFile(str(self.path), content), options)
        except DataError as e:
            raise SavedAnalysisError(str(e)) from e
        manifests = [m for m in self._archive.members if PurePosixPath(m).name == NAME]
        shallowest = sorted(manifests, key=lambda m: (m.count("/"), m))[:1]
        if not shallowest or shallowest[0].count("/") > 1:
            raise refuse(
                self.path, f"holds no {NAME} at its root or in a folder at its root", _WHAT
            )
        self._prefix = shallowest[0][: -len(NAME)]

    def where(self, path: str) -> str:
        """Return the name of ``path`` in messages: the folder or zip, then the path inside."""
        return f"{self.path}/{path}"

    def _raw(self, path: str, limit: int) -> bytes:
        """Read ``path``, refusing one over ``limit`` bytes (``FileNotFoundError`` if absent)."""
        if self._archive is None:
            parts = PurePosixPath(path).parts
            file = self.path.joinpath(*parts)
            if any(self.path.joinpath(*parts[: i + 1]).is_symlink() for i in range(len(parts))):
                raise refuse(
                    self.where(path), "is a symbolic link, which a saved analysis never holds"
                )
            if not file.is_file():
                raise FileNotFoundError(path)
            if file.stat().st_size > limit:
                raise refuse(self.where(path), f"is over {limit:,} bytes, larger than recorded")
            return file.read_bytes()
        member = self._prefix + path
        if member not in self._archive.members:
            raise FileNotFoundError(path)
        if self._archive.members[member] > limit:
            raise refuse(self.where(path), f"is over {limit:,} bytes, larger than recorded")
        try:
            return self._archive.read(member).content
        except DataError as e:
            raise SavedAnalysisError(str(e)) from e

    def manifest(self) -> bytes:
        """Return ``manifest.json``'s bytes (checked by the caller: nothing records its hash)."""
        try:
            return self._raw(NAME, jsonio.MAX_JSON_BYTES)
        except FileNotFoundError as e:
            raise refuse(self.path, f"is not a saved analysis: it has no {NAME}", _WHAT) from e

    def read(self, path: str) -> bytes:
        """Return a file the manifest lists, after checking its size and SHA-256."""
        entry = self.entries[path]
        try:
            content = self._raw(path, entry["bytes"])
        except FileNotFoundError as e:
            raise refuse(self.where(path), f"is missing, though {NAME} lists it") from e
        if len(content) != entry["bytes"]:
            raise refuse(
                self.where(path),
                f"is {len(content):,} bytes, where {NAME} records "
                f"{entry['bytes']:,}: it was truncated or modified",
            )
        if hashlib.sha256(content).hexdigest() != entry["sha256"]:
            raise refuse(
                self.where(path),
                f"does not match its SHA-256 in {NAME}: it was modified or damaged",
            )
        return content

    def json(self, path: str) -> Any:
        """Return a listed JSON file, parsed within the size and depth limits."""
        return jsonio.loads(self.read(path), self.where(path))

    def table(self, path: str) -> pd.DataFrame:
        """Return a listed Parquet table, checked against its schema record."""
        return decode_table(
            self.read(path), self.entries[path]["table"], self.where(path), self.max_bytes
        )
