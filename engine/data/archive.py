"""Safe access to the files of a zip archive or a folder.

A zip is checked as a whole before any entry is decompressed: entry names must
stay inside the archive root, the declared uncompressed total must stay under
``LoadOptions.max_archive_bytes`` and no entry may exceed
``LoadOptions.max_compression_ratio`` (a zip bomb). Reads are bounded as well,
since declared sizes can lie.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.data.types import DataFile, LoadOptions
from engine.errors import DataError, one_line

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_CHUNK = 1 << 20
_NO_LIMIT = 1 << 62  # files in a folder need no decompression budget


@dataclass
class Archive:
    """Files of a zip or folder, addressed by their path relative to its root."""

    name: str
    members: dict[str, int]
    """Relative path -> declared size in bytes (directories excluded)."""
    _zip: zipfile.ZipFile | None
    _folder: Path | None
    _budget: int

    def read(self, member: str) -> DataFile:
        """Return one member as a ``DataFile``, refusing to read past the size budget."""
        label = f"{self.name}/{member}"
        if self._folder is not None:
            content = (self._folder / member).read_bytes()
        else:
            assert self._zip is not None
            declared = self.members[member]
            limit = min(declared, self._budget)
            buf = io.BytesIO()
            try:
                with self._zip.open(member) as fh:
                    while chunk := fh.read(_CHUNK):
                        buf.write(chunk)
                        if buf.tell() > limit:
                            raise DataError(
                                f"{label} decompresses to more than its declared or allowed size "
                                f"({limit:,} bytes): the archive looks corrupted or hostile; "
                                "re-create it or upload the files unpacked."
                            )
            except (zipfile.BadZipFile, EOFError, OSError, RuntimeError) as e:
                raise DataError(
                    f"{label} cannot be decompressed ({one_line(e)}): the archive is truncated or "
                    "corrupted; download or zip it again."
                ) from e
            content = buf.getvalue()
        self._budget -= len(content)
        return DataFile(label, content)

    def find(self, *basenames: str) -> str | None:
        """Return the shallowest member named one of ``basenames`` (case-insensitive)."""
        wanted = {b.lower() for b in basenames}
        hits = [m for m in self.members if PurePosixPath(m).name.lower() in wanted]
        return min(hits, key=lambda m: (m.count("/"), m)) if hits else None

    def find_table(self, stems: tuple[str, ...], role: str) -> tuple[str | None, list[str]]:
        """Return the member holding the ``role`` table, and the look-alikes passed over.

        A candidate is a member whose name before its first dot is one of ``stems``
        (case-insensitive). Only names ending in a data extension (``DATA_EXTENSIONS``,
        optionally ``.gz``) are read, so ``ratings.bak`` or an R script ``ratings.R`` is
        passed over (and returned as such); among those, the shallowest wins.

        Raises
        ------
        DataError
            Two or more data files at the same depth could be the ``role`` table.
        """
        wanted = {s.lower() for s in stems}
        found = [m for m in self.members if _base_and_extension(m)[0] in wanted]
        data = [m for m in found if _base_and_extension(m)[1] in DATA_EXTENSIONS]
        passed_over = sorted(set(found) - set(data))
        if not data:
            return None, passed_over
        depth = min(m.count("/") for m in data)
        shallowest = sorted(m for m in data if m.count("/") == depth)
        if len(shallowest) > 1:
            raise DataError(
                f"{self.name} holds {len(shallowest)} files that could be the {role} "
                f"({', '.join(shallowest)}): keep one of them in the folder, or name the file "
                f"to use (CLI: --{role} FILE)."
            )
        return shallowest[0], passed_over


#: File extensions read as tables when a folder or zip is searched for ``ratings.*`` etc.
DATA_EXTENSIONS: frozenset[str] = frozenset(
    ext + gz
    for ext in (
        ".csv",
        ".tsv",
        ".txt",
        ".dat",
        ".data",
        ".psv",
        ".parquet",
        ".pq",
        ".json",
        ".jsonl",
        ".ndjson",
        ".xlsx",
    )
    for gz in ("", ".gz")
)


def _base_and_extension(member: str) -> tuple[str, str]:
    """Split ``dir/ratings.csv.gz`` into ``("ratings", ".csv.gz")`` (lower case)."""
    name = PurePosixPath(member).name.lower()
    base, dot, rest = name.partition(".")
    return base, (dot + rest if dot else "")


def is_zip(content: bytes) -> bool:
    """Return True when ``content`` starts like a zip file."""
    return content[:4] in (ZIP_MAGIC, EMPTY_ZIP_MAGIC)


def _unsafe_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def open_zip(file: DataFile, options: LoadOptions) -> Archive:
    """Open a zip archive after checking names, total size and compression ratios.

    Raises
    ------
    DataError
        Truncated or corrupted archive, an entry outside the archive root, a total
        uncompressed size over ``options.max_archive_bytes``, or an entry whose
        compression ratio exceeds ``options.max_compression_ratio``.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(file.content))
        infos = zf.infolist()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        raise DataError(
            f"{file.name} is not a readable zip archive ({one_line(e)}): it may be truncated; "
            "download or zip it again."
        ) from e
    members: dict[str, int] = {}
    total = 0
    for info in infos:
        if _unsafe_name(info.filename):
            raise DataError(
                f"{file.name} contains the entry {info.filename!r}, whose path points outside "
                "the archive: the archive is refused as unsafe; re-create it with relative paths."
            )
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise DataError(
                f"{file.name} entry {info.filename!r} is encrypted (password-protected): unzip "
                "it with its password and load the files, or zip them again without one."
            )
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1_000_000 and ratio > options.max_compression_ratio:
            raise DataError(
                f"{file.name} entry {info.filename!r} would expand {ratio:,.0f}-fold "
                f"(limit {options.max_compression_ratio:,.0f}): refused as a likely zip bomb; "
                "upload the files unpacked if they are genuine."
            )
        members[info.filename] = info.file_size
    if total > options.max_archive_bytes:
        raise DataError(
            f"{file.name} would unpack to {total:,} bytes, over the limit of "
            f"{options.max_archive_bytes:,} bytes: unpack only the rating files you need, "
            "or raise LoadOptions.max_archive_bytes."
        )
    return Archive(file.name, members, zf, None, options.max_archive_bytes)


def open_folder(folder: Path) -> Archive:
    """List the files of a folder and its subfolders (two levels deep at most)."""
    members = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and len(rel.parts) <= 2 and not rel.name.startswith("."):
            members[rel.as_posix()] = path.stat().st_size
    return Archive(folder.name, members, None, folder, _NO_LIMIT)
