"""The CLI's inputs with ``--engine spark``: the rating file read by Spark, the rest as before.

``load_inputs`` takes what ``engine.data.load_dataset`` takes and returns the same
``RatingData`` (same canonical ratings, fingerprint and load report counts), with one
difference: the rating file is read and validated by ``engine.spark.load.load_ratings``
instead of pandas. Everything else is ``load_dataset``'s own code:

* which file holds the ratings, users and items in a folder: ``Archive.find_table`` with
  ``load_dataset``'s name stems; a MovieLens layout by ``read_movielens``, given the rating
  file cut to its first lines (so its attribute tables are read, its ratings are not);
* how a text file is read (delimiter, header, encoding): ``read_text_table`` on the first
  lines, whose choices Spark then follows;
* the user and item tables (small): ``read_attribute_table``, ``user_attributes``,
  ``item_attributes``, ``attribute_coverage``.

A rating file Spark's loader does not read (zip or gzip archives, Excel, JSON, ``::``
text such as MovieLens 1M's ``ratings.dat``, decimal commas, text other than UTF-8) is
read by ``load_dataset`` in memory, and one line on stderr says so; at a URI
(``engine.spark.remote``) it is refused in one sentence, as only Spark reads a URI.
``max_rows`` is checked as ``load_dataset`` checks it (line breaks of a text file, rows of
Parquet), before Spark reads anything (at a URI, counted by Spark).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pyarrow.parquet as pq

from engine.data.archive import Archive, is_zip
from engine.data.attributes import attribute_coverage, item_attributes, user_attributes
from engine.data.columns import KNOWN_NAMES, detect_columns
from engine.data.load import (
    GROUND_TRUTH_FILE,
    GZIP_MAGIC,
    ITEM_STEMS,
    RATING_STEMS,
    USER_STEMS,
    dataset_name,
    fingerprint_of,
    is_synthetic,
    load_dataset,
    note_passed_over,
    optional_member,
    read_attribute_table,
    says_synthetic,
)
from engine.data.movielens import MovieLensFiles, read_movielens
from engine.data.tables import (
    OLE2_MAGIC,
    PARQUET_MAGIC,
    RawTable,
    check_row_limit,
    check_table_limits,
    is_json,
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
from engine.data.validate import decimal_mark
from engine.errors import DataError
from engine.spark.remote import HadoopPath, as_data_file, folder_archive, is_uri, location

if TYPE_CHECKING:
    from engine.spark.load import SparkRatings

#: Bytes read from the start of a rating file to decide how to read it (cut at a line end).
HEAD_BYTES = 1 << 20
_CHUNK = 1 << 24
#: MovieLens layouts whose rating file Spark reads (1M's ``::`` text is read in memory).
SPARK_VARIANTS = ("movielens-100k", "movielens-latest")


@dataclass
class RatingFile:
    """How Spark reads the rating file, and where the attribute tables come from.

    ``users``/``items`` are files to read as ``load_dataset`` does; ``movielens`` holds the
    attribute frames a MovieLens layout gave (its ``ratings`` is the head only).
    """

    path: Path | HadoopPath
    mapping: ColumnMapping | None
    delimiter: str | None
    header: bool | None
    encoding: str | None = None
    label: str | None = None
    users: Source | None = None
    items: Source | None = None
    movielens: MovieLensFiles | None = None
    warnings: list[str] = field(default_factory=list)


def load_inputs(
    source: Source | None = None,
    *,
    ratings: Source | None = None,
    users: Source | None = None,
    items: Source | None = None,
    mapping: ColumnMapping | None = None,
    options: LoadOptions | None = None,
    say: Callable[[str], None] | None = None,
) -> RatingData:
    """Load as ``load_dataset`` does, with the rating file read by Spark where it can be.

    ``say`` receives the one line naming a rating file read in memory instead (default:
    stderr). Raises ``DataError`` with ``load_dataset``'s sentences.
    """
    options = options or LoadOptions()
    plan = rating_file(source, ratings, users, items, mapping, options)
    if isinstance(plan, InMemory):
        _refuse_at_uri(plan, source, ratings)
        if plan.why:
            (say or _to_stderr)(plan.line)
        return load_dataset(source, ratings=ratings, users=users, items=items, mapping=mapping,
                            options=options)  # fmt: skip

    core = read_planned(plan, options).to_rating_data()
    name = dataset_name(source if source is not None else ratings)
    synthetic = source is not None and _synthetic(source)
    return dataclasses.replace(_with_attributes(core, plan, options), name=name,
                               synthetic=synthetic)  # fmt: skip


@dataclass(frozen=True)
class KeptInputs:
    """Inputs whose ratings stay in Spark (``load_kept_inputs``).

    Attributes
    ----------
    ratings
        ``engine.spark.load.SparkRatings``; its load report lists the attribute files too,
        with their coverage and warnings, as ``load_dataset``'s.
    users, items
        The attribute tables (``RatingData.users``/``items``), ``None`` where there is none.
    name, synthetic
        As ``RatingData``'s: the dataset's name, whether it is the generated sample.
    """

    ratings: SparkRatings
    users: pd.DataFrame | None
    items: pd.DataFrame | None
    name: str
    synthetic: bool


def load_kept_inputs(
    source: Source | None = None,
    *,
    ratings: Source | None = None,
    users: Source | None = None,
    items: Source | None = None,
    mapping: ColumnMapping | None = None,
    options: LoadOptions | None = None,
) -> KeptInputs:
    """Load as ``load_inputs`` does, but leave the ratings in Spark (never collected).

    The same files, the same validation and load report; the attribute tables are read in
    memory (one row per user or item) against the rated ids (users + items rows come back).

    Raises
    ------
    DataError
        The rating file is one Spark does not read (the reason, and what to do), or
        ``load_dataset``'s sentences for inputs it refuses.
    """
    from engine.spark.audit import ids_by_index

    options = options or LoadOptions()
    plan = rating_file(source, ratings, users, items, mapping, options)
    if isinstance(plan, InMemory):
        _refuse_at_uri(plan, source, ratings)
        if not plan.why:  # load_dataset names what is missing or wrong, in its words
            load_dataset(source, ratings=ratings, users=users, items=items, mapping=mapping,
                         options=options)  # fmt: skip
        what = "The ratings" if plan.what == RATINGS else plan.what
        raise DataError(
            f"{what} cannot stay in Spark: {plan.why} Convert the ratings to CSV, TSV or Parquet "
            "on disk, or leave out --keep-in-spark to read them in memory."
        )
    kept = read_planned(plan, options)
    rated = (
        pd.Series(ids_by_index(kept.users, "user_id", "u")),
        pd.Series(ids_by_index(kept.items, "item_id", "i")),
    )
    user_table, item_table, report = attributes_of(rated, kept.report, plan, options)
    return KeptInputs(
        dataclasses.replace(kept, report=report), user_table, item_table,
        dataset_name(source if source is not None else ratings),
        source is not None and _synthetic(source),
    )  # fmt: skip


def _refuse_at_uri(plan: InMemory, source: Source | None, ratings: Source | None) -> None:
    """Say why ratings at a URI cannot be read: only Spark reads a URI, not ``load_dataset``.

    ``plan``: why ``rating_file`` found no rating file Spark reads.
    """
    given = ratings if is_uri(ratings) else source if is_uri(source) else None
    if given is None:
        return
    why = plan.why
    raise DataError(
        f"{given} cannot be read at its URI: "
        + (why if why else "it holds no rating file Spark reads (ratings.csv, .tsv or "
           ".parquet, or a MovieLens layout).")
        + " Only Spark reads a URI: give a CSV, TSV or Parquet rating file there "
        "(--ratings URI), or copy the data to a local path."
    )  # fmt: skip


def _synthetic(source: Source) -> bool:
    """``is_synthetic``, for a folder at a URI too (its ``ground_truth.json`` read by Spark)."""
    if not is_uri(source):
        return is_synthetic(source)
    marker = HadoopPath(str(source)) / GROUND_TRUTH_FILE
    return marker.is_file() and says_synthetic(marker.read_bytes())


def read_planned(plan: RatingFile, options: LoadOptions) -> SparkRatings:
    """Read the rating file of ``plan`` with Spark (``load_ratings``), as it was sniffed."""
    from engine.spark.load import load_ratings

    read = dataclasses.replace(options, delimiter=plan.delimiter)
    return load_ratings(plan.path, mapping=plan.mapping, options=read, header=plan.header,
                        name=plan.label)  # fmt: skip


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


#: ``InMemory.what`` when the ratings were given as bytes (an upload), not a file.
RATINGS = "the ratings"


@dataclass(frozen=True)
class InMemory:
    """Why ``rating_file`` leaves the ratings to be read in memory, not by Spark.

    ``what``: the rating file's name (``RATINGS`` for an upload); ``why``: one sentence.
    Both empty where ``load_dataset`` itself refuses the input (a missing file, no rating
    file in a folder): it names the problem in its own words.
    """

    what: str = ""
    why: str = ""

    @property
    def line(self) -> str:
        """The one line the CLI prints: ``engine: u.data read in memory: ...``."""
        subject = "the ratings were" if self.what == RATINGS else self.what
        return f"engine: {subject} read in memory: {self.why}"


def rating_file(
    source: Source | None,
    ratings: Source | None,
    users: Source | None,
    items: Source | None,
    mapping: ColumnMapping | None,
    options: LoadOptions,
) -> RatingFile | InMemory:
    """Return how Spark reads the rating file, or why it is read in memory (``InMemory``).

    The rating, user and item files are those ``load_dataset`` would read. Inputs it
    refuses (no such file, no rating file in a folder) are left to it to say so: the
    ``InMemory`` is then empty.
    """
    if isinstance(source, DataFile) or isinstance(ratings, DataFile):
        return InMemory(RATINGS, "Spark reads files on disk only.")
    _check_uris(source, ratings, users, items)
    users, items = as_data_file(users), as_data_file(items)  # small: read in memory
    at = location(source) if source is not None else None
    folder = at if at is not None and at.is_dir() else None
    given = location(ratings) if ratings is not None else None
    if given is None and folder is None:
        given = at
    if given is not None:
        if not given.exists():
            return InMemory()  # load_dataset names the missing file
        plan = _plain_file(given, mapping, options)
        if isinstance(plan, RatingFile) and folder is not None:
            archive, notes = folder_archive(folder), []
            plan.users = users or optional_member(archive, USER_STEMS, "users", notes)
            plan.items = items or optional_member(archive, ITEM_STEMS, "items", notes)
            plan.warnings += notes
        elif isinstance(plan, RatingFile):
            plan.users, plan.items = users, items
        return plan
    assert folder is not None
    return _in_folder(folder, users, items, mapping, options)


def _check_uris(*sources: Source | None) -> None:
    """Refuse a URI that names nothing, in one sentence (``load_dataset`` reads local paths)."""
    for source in sources:
        if is_uri(source) and not HadoopPath(str(source)).exists():
            raise DataError(
                f"{source} does not exist: check the URI (Spark reads it with the file system "
                "of its scheme, configured by spark.hadoop.* settings)."
            )


def _in_folder(
    folder: Path | HadoopPath,
    users: Source | None,
    items: Source | None,
    mapping: ColumnMapping | None,
    options: LoadOptions,
) -> RatingFile | InMemory:
    """Find a folder's rating file: a MovieLens layout's, else ``ratings.*`` (load_dataset's)."""
    archive = _HeadOfRatings.of(folder_archive(folder))
    try:
        movielens = read_movielens(archive)
    except DataError:
        return InMemory()  # load_dataset names the file that is not as expected
    if movielens is not None:
        member = archive.cut
        if movielens.variant not in SPARK_VARIANTS or member is None:
            return InMemory(str(member), "Spark reads CSV/TSV/Parquet only, not '::'.")
        if movielens.ratings.name != f"{archive.name}/{member}":
            return InMemory(folder.name, "its rating file was not found first.")
        table = movielens.ratings
        mapping = ColumnMapping(**movielens.columns)
        plan = RatingFile(folder / member, mapping, table.delimiter, table.header,
                          table.encoding, table.name, movielens=movielens)  # fmt: skip
        _check_limits(plan.path, options)
        return plan
    notes: list[str] = []
    try:
        member, passed_over = archive.find_table(RATING_STEMS, "ratings")
    except DataError:
        member = None
    if member is None:
        return InMemory()  # load_dataset names what is missing
    note_passed_over(archive, passed_over, "ratings", member, notes)
    plan = _plain_file(folder / member, mapping, options)
    if isinstance(plan, InMemory):
        return plan
    plan.warnings, plan.label = notes, f"{archive.name}/{member}"
    plan.users = users or optional_member(archive, USER_STEMS, "users", plan.warnings)
    plan.items = items or optional_member(archive, ITEM_STEMS, "items", plan.warnings)
    return plan


@dataclass
class _HeadOfRatings(Archive):
    """A folder whose first file read is cut to its first lines (its name kept in ``cut``).

    ``read_movielens`` reads the rating file first, then the attribute files in full.
    """

    cut: str | None = None

    @classmethod
    def of(cls, archive: Archive) -> _HeadOfRatings:
        return cls(**{f.name: getattr(archive, f.name) for f in dataclasses.fields(archive)})

    def read(self, member: str) -> DataFile:
        if self.cut is None and self._folder is not None:
            self.cut = member
            return DataFile(f"{self.name}/{member}", _head(self._folder / member))
        return super().read(member)


def _plain_file(
    path: Path | HadoopPath, mapping: ColumnMapping | None, options: LoadOptions
) -> RatingFile | InMemory:
    """How Spark reads one rating file (a Parquet folder too), or why it does not."""
    if path.is_dir():  # a folder given as the rating file: Parquet parts, else load_dataset's error
        return RatingFile(path, mapping, None, None) if any(path.glob("*.parquet")) else InMemory()
    head = _head(path)
    fmt = _not_for_spark(head)
    if fmt:
        return InMemory(path.name, f"Spark reads CSV/TSV/Parquet only, not {fmt}.")
    if head[:4] == PARQUET_MAGIC:
        _check_limits(path, options)
        return RatingFile(path, mapping, None, None)
    try:
        table = read_text_table(DataFile(path.name, head), KNOWN_NAMES, delimiter=options.delimiter)
    except DataError:
        return InMemory()  # not a table: load_dataset says why, in its words
    if table.delimiter == "::":
        return InMemory(path.name, "Spark reads CSV/TSV/Parquet only, not '::'.")
    if _decimal_comma(table, mapping, options):
        return InMemory(path.name, "Spark reads decimal points only, not commas.")
    if any("one field more than its header" in note for note in table.notes):
        return InMemory(path.name, "its rows have one field more than its header.")
    _check_limits(path, options)
    return RatingFile(path, mapping, table.delimiter, table.header, table.encoding)


def _not_for_spark(head: bytes) -> str | None:
    """Name the format of ``head`` that Spark's loader does not read (``None``: it does)."""
    if head[:4] == PARQUET_MAGIC:
        return None
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    if is_zip(head):
        return "a zip archive or Excel workbook"
    if head[:8] == OLE2_MAGIC:
        return "Excel"
    if is_json(head):
        return "JSON"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "text other than UTF-8"
    if head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return "text with a byte-order mark"
    return None


def _decimal_comma(table: RawTable, mapping: ColumnMapping | None, options: LoadOptions) -> bool:
    """Tell whether ``load_dataset`` would read the ratings with a decimal comma (first lines)."""
    if options.decimal is not None:
        return options.decimal == ","
    try:
        columns, _ = detect_columns(table.frame, mapping, table.name, [])
    except DataError:
        return False
    return decimal_mark(table.frame[columns["rating"]], None)[0] == ","


def _check_limits(path: Path | HadoopPath, options: LoadOptions) -> None:
    """Refuse a rating file over ``options.max_rows`` / ``max_columns``, as ``load_dataset``.

    Text: line breaks counted over the whole file (an upper bound of the data rows), columns
    on the first line; Parquet: its metadata. A file at a URI has its lines (or Parquet
    rows) counted by Spark, in the executors, rather than streamed through the driver.
    """
    parquet = path.suffix.lower() == ".parquet" or _head(path, 4) == PARQUET_MAGIC
    name, content = path.name, b"" if parquet else _head(path)
    if isinstance(path, HadoopPath):
        from engine.spark.session import spark_session

        read = spark_session().read
        rows = (read.parquet(str(path)) if parquet else read.text(str(path))).count()
    else:
        rows = pq.ParquetFile(path).metadata.num_rows if parquet else _line_breaks(path)
    check_table_limits(DataFile(name, content), dataclasses.replace(options, max_rows=1 << 62))
    check_row_limit(name, rows, options)


def _line_breaks(path: Path) -> int:
    """Count line breaks as ``check_table_limits`` does (the most of LF and CR), in chunks."""
    newlines = returns = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            newlines += chunk.count(b"\n")
            returns += chunk.count(b"\r")
    return max(newlines, returns)


def _head(path: Path | HadoopPath, size: int = HEAD_BYTES) -> bytes:
    """Return the first ``size`` bytes of ``path``, cut after the last line break if longer."""
    with path.open("rb") as handle:
        head = handle.read(size)
    if len(head) == size and size > 4:
        cut = max(head.rfind(b"\n"), head.rfind(b"\r"))
        head = head[: cut + 1] if cut > 0 else head
    return head


def _with_attributes(core: RatingData, plan: RatingFile, options: LoadOptions) -> RatingData:
    """``core`` with the user and item tables ``load_dataset`` would read beside it."""
    rated = core.ratings["user_id"], core.ratings["item_id"]
    users, items, report = attributes_of(rated, core.report, plan, options)
    fingerprint = fingerprint_of(core.ratings, users, items)
    return dataclasses.replace(core, users=users, items=items, fingerprint=fingerprint,
                               report=report)  # fmt: skip


def attributes_of(
    rated: tuple[pd.Series, pd.Series],
    report: LoadReport,
    plan: RatingFile,
    options: LoadOptions,
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, LoadReport]:
    """Read the user and item tables ``load_dataset`` would read beside the rating file.

    ``rated``: the rated user and item ids (repeats allowed); ``report``: the rating file's
    load report. Returns the tables (``None`` where there is none) and ``report`` with
    their files, coverage and warnings added.
    """
    first = dataclasses.replace(report.files[0], encoding=plan.encoding)
    warnings = list(plan.warnings)
    if options.sheet is not None and plan.movielens is None:
        warnings.append(
            f"The sheet {options.sheet!r} was not used: {first.name} is not an Excel workbook."
        )
    warnings += report.warnings
    files: list[FileReport] = []
    raw_users = raw_items = user_name = item_name = None
    if plan.movielens is not None:
        found = plan.movielens
        first = dataclasses.replace(
            first, format=found.variant, detection=dict.fromkeys(first.columns, "format")
        )
        raw_users, raw_items = found.users, found.items
        folder = plan.path.parent.name
        user_name = f"{folder}/{found.user_file}" if found.user_file else None
        item_name = f"{folder}/{found.item_file}" if found.item_file else None
        for role, file_name in (("users", user_name), ("items", item_name)):
            if file_name:
                files.append(FileReport(role, file_name, found.variant))
    if first.ignored_columns:
        warnings.append(
            f"Columns {', '.join(first.ignored_columns)} of {first.name} are not user, item, "
            "rating or timestamp and were not used; map them explicitly if one of them is."
        )
    for role, given in (("users", plan.users), ("items", plan.items)):
        if given is None:
            continue
        table = read_attribute_table(given, rated[role == "items"], options, role)
        warnings += table.notes
        files.append(FileReport(role, table.name, table.format, table.encoding, table.delimiter,
                                table.header))  # fmt: skip
        if role == "users":
            raw_users, user_name = table.frame, table.name
        else:
            raw_items, item_name = table.frame, table.name
    users, items, coverage = _attribute_tables(rated, raw_users, user_name, raw_items,
                                               item_name, warnings)  # fmt: skip
    report = dataclasses.replace(report, files=[first, *files], attribute_coverage=coverage,
                                 warnings=warnings)  # fmt: skip
    return users, items, report


def _attribute_tables(
    rated: tuple[pd.Series, pd.Series],
    raw_users: pd.DataFrame | None,
    user_name: str | None,
    raw_items: pd.DataFrame | None,
    item_name: str | None,
    warnings: list[str],
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, dict[str, int]]:
    """Return the attribute tables and their coverage of the ``rated`` (user, item) ids."""
    coverage: dict[str, int] = {}
    users = items = None
    if raw_users is not None:
        users = user_attributes(raw_users, user_name, warnings)
        coverage |= attribute_coverage(rated[0], users, "user", user_name)
    if raw_items is not None:
        items = item_attributes(raw_items, item_name, warnings)
        coverage |= attribute_coverage(rated[1], items, "item", item_name)
    return users, items, coverage
