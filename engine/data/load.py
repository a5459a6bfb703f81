"""The data layer's entry point: ``load_dataset``.

It accepts what an analyst has: one rating file (CSV/TSV/semicolon/``|``/``::``
text, Parquet, gzip of either), a zip archive or folder (a MovieLens layout, or
any folder holding ``ratings.*`` with optional ``users.*`` and ``items.*`` /
``movies.*``), plus optional user and item attribute files. It returns a
``RatingData`` whose ``report`` accounts for every row read.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from engine.data.archive import Archive, is_zip, open_folder, open_zip
from engine.data.attributes import attribute_coverage, item_attributes, user_attributes
from engine.data.columns import ATTRIBUTE_NAMES, KNOWN_NAMES, detect_columns
from engine.data.movielens import read_movielens
from engine.data.tables import (
    RawTable,
    check_table_limits,
    is_excel,
    read_table,
    read_text_table,
)
from engine.data.types import (
    ColumnMapping,
    DataFile,
    FileReport,
    LoadOptions,
    LoadReport,
    RatingData,
    Source,
)
from engine.data.validate import validate_ratings
from engine.errors import DataError, one_line
from engine.ids import arrow_strings

GROUND_TRUTH_FILE = "ground_truth.json"
GZIP_MAGIC = b"\x1f\x8b"
#: File-name stems of an archive's or folder's item, user and rating files (shared with
#: ``engine.spark.inputs``).
ITEM_STEMS = ("items", "movies", "item", "movie", "products", "books")
USER_STEMS = ("users", "user")
RATING_STEMS = ("ratings", "rating")


def read_source(source: Source) -> DataFile:
    """Read a path into memory; a ``DataFile`` is returned as is.

    Raises
    ------
    DataError
        The path does not exist or cannot be read.
    """
    if isinstance(source, DataFile):
        return source
    path = Path(source)
    try:
        return DataFile(path.name, path.read_bytes())
    except FileNotFoundError as e:
        raise DataError(f"{path} does not exist: check the path and try again.") from e
    except IsADirectoryError as e:
        raise DataError(f"{path} is a folder: pass it as the dataset folder instead.") from e
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror}): check its permissions.") from e


def _gunzip(file: DataFile, options: LoadOptions) -> DataFile:
    """Decompress a gzip file, refusing output over ``options.max_archive_bytes``."""
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        content = inflater.decompress(file.content, options.max_archive_bytes + 1)
    except zlib.error as e:
        raise DataError(
            f"{file.name} is not a readable gzip file ({one_line(e)}): compress it again or "
            "upload it "
            "uncompressed."
        ) from e
    if len(content) > options.max_archive_bytes or inflater.unconsumed_tail:
        raise DataError(
            f"{file.name} decompresses to more than {options.max_archive_bytes:,} bytes: refused "
            "as too large; raise LoadOptions.max_archive_bytes if it is genuine."
        )
    ratio = len(content) / max(len(file.content), 1)
    if len(content) > 1_000_000 and ratio > options.max_compression_ratio:
        raise DataError(
            f"{file.name} would expand {ratio:,.0f}-fold (limit "
            f"{options.max_compression_ratio:,.0f}): refused as a likely zip bomb; upload it "
            "uncompressed if it is genuine."
        )
    name = file.name[:-3] if file.name.endswith(".gz") else file.name
    return DataFile(name, content)


def _table_file(file: DataFile, options: LoadOptions) -> DataFile:
    """Decompress a gzip file, then check the table limits before anything is parsed."""
    if file.content[:2] == GZIP_MAGIC:
        file = _gunzip(file, options)
    check_table_limits(file, options)
    return file


def _joined_utf8(ids: pd.Series) -> pa.Buffer:
    r"""Return the bytes of ``"\x1f".join(ids).encode("utf-8")``, joined in Arrow.

    Not through a Python ``str`` per row: on 25M ratings those were about 3 GB at once,
    and ``tolist`` plus ``join`` took 1.1 s per 5M ids where this takes 0.14 s.
    """
    values = arrow_strings(ids, large=True)
    whole = pa.LargeListArray.from_arrays(pa.array([0, len(values)], pa.int64()), values)
    return pc.binary_join(whole, pa.scalar("\x1f", pa.large_string()))[0].as_buffer()


def fingerprint_of(
    ratings: pd.DataFrame, users: pd.DataFrame | None, items: pd.DataFrame | None
) -> str:
    """SHA-256 over the canonical ratings and attribute tables (order is canonical)."""
    digest = hashlib.sha256(b"rating-data-v1\n")
    for col in ("user_id", "item_id"):
        digest.update(_joined_utf8(ratings[col]))
        digest.update(b"\x1e")
    digest.update(ratings["rating"].to_numpy("float64").tobytes())
    digest.update(ratings["timestamp"].to_numpy("float64", na_value=-1.0).tobytes())
    for table in (users, items):
        digest.update(b"\x1e")
        if table is not None:
            digest.update(table.sort_index().to_csv(lineterminator="\n").encode("utf-8"))
    return digest.hexdigest()


def _archive_from(source: Source, options: LoadOptions) -> Archive | None:
    """Return an archive for a folder or zip source, ``None`` for a single table file."""
    if not isinstance(source, DataFile) and Path(source).is_dir():
        return open_folder(Path(source))
    file = read_source(source)
    return open_zip(file, options) if _is_archive(file.content) else None


def _is_archive(content: bytes) -> bool:
    """Return True for a zip that is not an Excel workbook (a workbook is one table)."""
    return is_zip(content) and not is_excel(content)


def is_synthetic(source: Source) -> bool:
    """Whether ``source`` is a folder whose ``ground_truth.json`` says it is synthetic."""
    if isinstance(source, DataFile) or not Path(source).is_dir():
        return False
    try:
        return says_synthetic((Path(source) / GROUND_TRUTH_FILE).read_bytes())
    except OSError:
        return False


def says_synthetic(marker: bytes) -> bool:
    """Whether a ``ground_truth.json``'s bytes say ``"synthetic": true`` (unreadable: no)."""
    try:
        return bool(json.loads(marker.decode("utf-8")).get("synthetic", False))
    except (ValueError, AttributeError):
        return False


def load_dataset(
    source: Source | None = None,
    *,
    ratings: Source | None = None,
    users: Source | None = None,
    items: Source | None = None,
    mapping: ColumnMapping | None = None,
    options: LoadOptions | None = None,
    batch: bool = False,
) -> RatingData:
    """Load rating data and optional attributes into a validated ``RatingData``.

    Parameters
    ----------
    source
        A zip archive or folder (MovieLens 100K / 1M / latest, or a folder with
        ``ratings.*`` and optional ``users.*``, ``items.*``/``movies.*``), or a single
        rating file. Files given as ``ratings``/``users``/``items`` take precedence
        over those found in it.
    ratings, users, items
        Individual files: a path or an in-memory ``DataFile``.
    mapping
        Columns of the rating file to use, overriding detection.
    options
        Scale, duplicate policy and archive limits.
    batch
        Read a batch of new ratings for a saved analysis (``engine.update``): the same
        checks, but one rating, user, item or value is enough (see ``validate_ratings``).

    Raises
    ------
    DataError
        Any input that cannot be used, with one sentence naming the file, the
        problem and the fix.
    """
    options = options or LoadOptions()
    if source is None and ratings is None:
        raise DataError("No rating data given: pass a rating file, a folder or a zip archive.")
    if source is None:
        ratings = read_source(ratings)
        if _is_archive(ratings.content):  # a zip given as the rating file is read as an archive
            source, ratings = ratings, None
    archive = _archive_from(source, options) if source is not None else None
    if source is not None and archive is None and ratings is None:
        ratings, source = source, None
    name = dataset_name(source if source is not None else ratings)
    warnings: list[str] = []
    files: list[FileReport] = []
    raw_users = raw_items = None
    user_name = item_name = None
    variant = None

    movielens = read_movielens(archive) if archive is not None and ratings is None else None
    if movielens is not None:
        raw, columns, detection = (
            movielens.ratings,
            movielens.columns,
            dict.fromkeys(movielens.columns, "format"),
        )
        variant = movielens.variant
        raw_users, raw_items = movielens.users, movielens.items
        user_name = f"{archive.name}/{movielens.user_file}" if movielens.user_file else None
        item_name = f"{archive.name}/{movielens.item_file}" if movielens.item_file else None
        for role, file_name in (("users", user_name), ("items", item_name)):
            if file_name:
                files.append(FileReport(role, file_name, variant))
    else:
        if ratings is None:
            assert archive is not None
            ratings = _member(archive, RATING_STEMS, "ratings", warnings)
        raw = read_table(_table_file(read_source(ratings), options), KNOWN_NAMES, options)
        warnings += raw.notes
        if options.sheet is not None and raw.format != "excel":
            warnings.append(
                f"The sheet {options.sheet!r} was not used: {raw.name} is not an Excel workbook."
            )
        columns, detection = detect_columns(raw.frame, mapping, raw.name, warnings)
        if archive is not None:
            users = users or optional_member(archive, USER_STEMS, "users", warnings)
            items = items or optional_member(archive, ITEM_STEMS, "items", warnings)
    files.insert(0, _file_report("ratings", raw, columns, detection, variant))
    if files[0].ignored_columns:
        warnings.append(
            f"Columns {', '.join(files[0].ignored_columns)} of {raw.name} are not user, item, "
            "rating or timestamp and were not used; map them explicitly if one of them is."
        )

    checked = validate_ratings(raw, columns, options, batch=batch)
    warnings += checked.warnings
    coverage: dict[str, int] = {}
    for role, given in (("users", users), ("items", items)):
        if given is None:
            continue
        rated = checked.ratings["user_id" if role == "users" else "item_id"]
        table = read_attribute_table(given, rated, options, role)
        warnings += table.notes
        files.append(
            FileReport(
                role, table.name, table.format, table.encoding, table.delimiter, table.header
            )
        )
        if role == "users":
            raw_users, user_name = table.frame, table.name
        else:
            raw_items, item_name = table.frame, table.name

    user_table = item_table = None
    if raw_users is not None:
        user_table = user_attributes(raw_users, user_name, warnings)
        coverage |= attribute_coverage(checked.ratings["user_id"], user_table, "user", user_name)
    if raw_items is not None:
        item_table = item_attributes(raw_items, item_name, warnings)
        coverage |= attribute_coverage(checked.ratings["item_id"], item_table, "item", item_name)

    report = LoadReport(
        files=files,
        rows_read=raw.rows_read,
        rows_kept=len(checked.ratings),
        rejected=checked.rejected,
        examples=checked.examples,
        duplicate_policy=options.duplicates,
        scale=checked.scale,
        attribute_coverage=coverage,
        warnings=warnings,
    )
    assert report.rows_kept + report.rows_rejected == report.rows_read
    return RatingData(
        ratings=checked.ratings,
        users=user_table,
        items=item_table,
        scale=checked.scale,
        fingerprint=fingerprint_of(checked.ratings, user_table, item_table),
        report=report,
        name=name,
        synthetic=source is not None and is_synthetic(source),
    )


def read_attribute_table(
    given: Source, rated: pd.Series, options: LoadOptions, role: str
) -> RawTable:
    """Read an attribute file; a first row that is not a rated id, above rated ids, is a header.

    Attribute tables often have only text columns, where the numeric header test
    cannot decide; the ids shared with the ratings can.
    """
    file = _table_file(read_source(given), options)
    table = read_table(file, ATTRIBUTE_NAMES, options, role)
    if table.format == "text" and table.header is False and len(table.frame) > 1:
        first = table.frame.iloc[:, 0].astype("str").str.strip()
        known = pd.Index(rated.unique())
        if not known.isin([first.iat[0]]).any() and first.iloc[1:].isin(known).mean() >= 0.5:
            table = read_text_table(file, ATTRIBUTE_NAMES, header=True, delimiter=table.delimiter)
    return table


def dataset_name(source: Source | None) -> str:
    """Return the name a dataset is shown by: its file or folder name, else ``ratings``."""
    if isinstance(source, DataFile):
        return source.name
    return Path(source).name if source is not None else "ratings"


def _member(archive: Archive, stems: tuple[str, ...], role: str, warnings: list[str]) -> DataFile:
    member, passed_over = archive.find_table(stems, role)
    note_passed_over(archive, passed_over, role, member, warnings)
    if member is None:
        listing = ", ".join(list(archive.members)[:8]) or "nothing"
        if passed_over:
            raise DataError(
                f"{archive.name} holds {', '.join(passed_over)} but no {role} file with a data "
                "extension (.csv, .tsv, .txt, .dat, .parquet, .json, .jsonl, .xlsx, optionally "
                ".gz): rename the export, or name the file to use (CLI: --ratings FILE)."
            )
        raise DataError(
            f"{archive.name} holds no recognisable {role} file (found: {listing}): include a "
            "MovieLens layout (u.data, ratings.dat, ratings.csv + movies.csv) or a file named "
            "ratings.csv, .tsv, .dat or .parquet."
        )
    return archive.read(member)


def optional_member(
    archive: Archive, stems: tuple[str, ...], role: str, warnings: list[str]
) -> DataFile | None:
    """Read ``archive``'s ``role`` file (named by one of ``stems``), ``None`` if it has none.

    A same-stem member without a data extension that was passed over gets a warning
    (``note_passed_over``).
    """
    member, passed_over = archive.find_table(stems, role)
    note_passed_over(archive, passed_over, role, member, warnings)
    return archive.read(member) if member is not None else None


def note_passed_over(
    archive: Archive, passed_over: list[str], role: str, member: str | None, warnings: list[str]
) -> None:
    """Warn that ``passed_over`` members were not read as the ``role`` file, ``member`` was."""
    if passed_over and member is not None:
        verb = "was" if len(passed_over) == 1 else "were"
        warnings.append(
            f"{archive.name}: {', '.join(passed_over)} {verb} not read as the {role} file (no "
            f"data extension such as .csv); {member} was."
        )


def _file_report(
    role: str,
    raw: RawTable,
    columns: dict[str, str],
    detection: dict[str, str],
    variant: str | None,
) -> FileReport:
    ignored = [str(c) for c in raw.frame.columns if str(c) not in columns.values()]
    return FileReport(
        role=role,
        name=raw.name,
        format=variant or raw.format,
        encoding=raw.encoding,
        delimiter=raw.delimiter,
        header=raw.header,
        columns=dict(columns),
        detection=detection,
        ignored_columns=ignored,
    )


@dataclass(frozen=True)
class RatingsPreview:
    """What a rating file holds before loading: its columns and the detected mapping.

    ``columns`` are the file's column names (``column_1``... without a header);
    ``detected`` maps ``user/item/rating/timestamp`` to a column (missing keys were not
    found); ``head`` is the first rows as text. ``archive`` is True for MovieLens
    archives and folders, whose layout fixes the columns.
    """

    name: str
    columns: list[str]
    detected: dict[str, str]
    head: pd.DataFrame
    archive: bool = False


def preview_ratings(source: Source, options: LoadOptions | None = None) -> RatingsPreview:
    """Read a rating file's columns and detected mapping (for a column-mapping form).

    Raises
    ------
    DataError
        The file cannot be read as a table (same sentences as ``load_dataset``).
    """
    options = options or LoadOptions()
    file = read_source(source) if not isinstance(source, DataFile) else source
    if _is_archive(file.content):
        archive = open_zip(file, options)
        if read_movielens(archive) is not None:
            return RatingsPreview(file.name, [], {}, pd.DataFrame(), archive=True)
        file = _member(archive, RATING_STEMS, "ratings", [])
    raw = read_table(_table_file(file, options), KNOWN_NAMES, options)
    try:
        detected, _ = detect_columns(raw.frame, None, raw.name, [])
    except DataError:
        detected = {}
    return RatingsPreview(raw.name, [str(c) for c in raw.frame.columns], detected,
                          raw.frame.head(10).astype("str"))  # fmt: skip
