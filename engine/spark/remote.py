"""Files at a URI Spark reads (``hdfs://``, ``s3a://``, ``abfss://``, ``gs://``, ``file://``).

On a cluster the rating file lies where every executor reads it, not on the driver's disk.
``HadoopPath`` is the slice of ``pathlib.Path`` the kept route uses to plan a read (name,
suffix, ``/``, ``exists``, ``is_dir``, ``glob``, ``open`` for the first bytes,
``read_bytes`` for a small attribute table), each one call to the Hadoop ``FileSystem`` of
the driver's Spark session, so it reaches exactly what the executors reach, with the
session's credentials and settings (``spark.hadoop.*``). ``location`` turns a source into a
``HadoopPath`` when it is a URI and into a ``Path`` otherwise; ``folder_archive`` lists a
folder of either kind as ``engine.data.archive.Archive``, so ``load_dataset``'s rules for
finding ``ratings.*``, ``users.*``, ``items.*`` and a MovieLens layout apply unchanged.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from engine.data.archive import Archive, open_folder
from engine.data.types import DataFile

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

#: A URI: a scheme of two or more letters, then ``://`` (``C:\\data`` is a Windows path).
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
#: Bytes fetched from the JVM per call when a whole file is read.
CHUNK = 1 << 20
#: How deep ``folder_archive`` lists a folder, as ``open_folder``.
DEPTH = 2


def is_uri(source: object) -> bool:
    """Whether ``source`` is a string naming a URI (``scheme://...``)."""
    return isinstance(source, str) and bool(URI.match(source))


def location(source: str | Path | HadoopPath) -> Path | HadoopPath:
    """``HadoopPath(source)`` for a URI, else ``Path(source)`` (either kind is kept as is)."""
    if isinstance(source, HadoopPath):
        return source
    return HadoopPath(source) if is_uri(source) else Path(source)


@dataclass(frozen=True)
class HadoopPath:
    """A file or folder at ``uri``, reached through the Spark session's Hadoop ``FileSystem``."""

    uri: str

    def __str__(self) -> str:
        return self.uri

    def __truediv__(self, part: str) -> HadoopPath:
        return HadoopPath(f"{self.uri.rstrip('/')}/{part}")

    @property
    def name(self) -> str:
        """The last part of the path (``''`` for a bucket or file system root)."""
        tail = self.uri.split("://", 1)[1].rstrip("/")
        return tail.rsplit("/", 1)[-1] if "/" in tail else ""

    @property
    def parent(self) -> HadoopPath:
        """The folder holding this path (the path itself at a bucket or file system root)."""
        return HadoopPath(self.uri.rstrip("/").rpartition("/")[0]) if self.name else self

    @property
    def suffix(self) -> str:
        """The name's last extension (``.csv``), as ``Path.suffix``."""
        return PurePosixPath(self.name).suffix

    def _jvm(self) -> tuple[Any, Any]:
        """``(FileSystem, org.apache.hadoop.fs.Path)`` of this URI in the driver's JVM."""
        from engine.spark.session import spark_session

        spark: SparkSession = spark_session()
        jvm = spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(self.uri)
        return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path

    def exists(self) -> bool:
        """Whether a file or folder is at the URI."""
        fs, path = self._jvm()
        return bool(fs.exists(path))

    def is_dir(self) -> bool:
        """Whether a folder is at the URI."""
        fs, path = self._jvm()
        return bool(fs.exists(path) and fs.getFileStatus(path).isDirectory())

    def is_file(self) -> bool:
        """Whether a file is at the URI."""
        fs, path = self._jvm()
        return bool(fs.exists(path) and fs.getFileStatus(path).isFile())

    def listing(self) -> list[tuple[HadoopPath, bool, int]]:
        """``(child, is a folder, size in bytes)`` of each entry of this folder, by name."""
        fs, path = self._jvm()
        entries = [(self / str(s.getPath().getName()), bool(s.isDirectory()), int(s.getLen()))
                   for s in fs.listStatus(path)]  # fmt: skip
        return sorted(entries, key=lambda entry: entry[0].name)

    def glob(self, pattern: str) -> list[HadoopPath]:
        """Return the folder's entries whose name matches ``pattern`` (one level, by name)."""
        return [child for child, _, _ in self.listing() if fnmatch.fnmatch(child.name, pattern)]

    def open(self, mode: str = "rb") -> _Stream:
        """Open the file's bytes as a stream with ``read(n)`` (``mode`` must be ``"rb"``)."""
        if mode != "rb":
            raise ValueError(f"{self.uri} is opened for reading bytes only, not {mode!r}.")
        fs, path = self._jvm()
        return _Stream(fs.open(path))

    def read_bytes(self) -> bytes:
        """Return the whole file (for small files: an attribute table)."""
        with self.open() as stream:
            chunks = []
            while chunk := stream.read(CHUNK):
                chunks.append(chunk)
        return b"".join(chunks)


class _Stream:
    """A Hadoop input stream read from Python, ``n`` bytes per call (``readNBytes``)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int) -> bytes:
        return bytes(self._stream.readNBytes(int(size)))

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


def folder_archive(folder: Path | HadoopPath) -> Archive:
    """``open_folder`` of a local folder or of one at a URI (two levels, no hidden files)."""
    if isinstance(folder, Path):
        return open_folder(folder)
    members: dict[str, int] = {}

    def walk(at: HadoopPath, prefix: str, depth: int) -> None:
        for child, is_folder, size in at.listing():
            if child.name.startswith("."):
                continue
            if is_folder and depth < DEPTH:
                walk(child, f"{prefix}{child.name}/", depth + 1)
            elif not is_folder:
                members[f"{prefix}{child.name}"] = size

    walk(folder, "", 1)
    return Archive(folder.name, members, None, folder, 1 << 62)  # type: ignore[arg-type]


def as_data_file(source: str | Path | DataFile | None) -> str | Path | DataFile | None:
    """Read a URI's file into a ``DataFile`` (a small table, in memory); else return ``source``."""
    if not is_uri(source):
        return source
    file = HadoopPath(str(source))
    if not file.is_file():
        from engine.errors import DataError

        raise DataError(f"{file} does not exist or is not a file: check the URI.")
    return DataFile(file.name, file.read_bytes())
