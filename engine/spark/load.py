"""Rating files read by Spark with ``engine.data``'s validation rules and load report.

For data too large for one machine's memory: a CSV/TSV (any of ``DELIMITERS``) or Parquet
file or folder is read by Spark. A text row with more fields than the header (or the first
line) is ``malformed_row``, as ``load_dataset`` counts it (``line`` and ``fields`` in the
examples); each other row gets the first reason that applies, in
``engine.data.validate.ROW_REASONS`` order: ``missing_user_id``, ``missing_item_id``,
``non_numeric_rating``, ``out_of_scale``, ``duplicate`` (the duplicate policy of
``LoadOptions``: ``latest``, ``first``, ``last`` or ``mean``), so ``kept + rejected ==
read`` as for ``load_dataset``. Columns are found by ``engine.data.columns.detect_columns``
on the first rows; the rating scale is given or detected by the same rule as
``engine.data.validate.detect_scale`` (weighted by value counts here). Ids are stripped
strings, indexed to integers ``u``/``i`` in ascending id order (ALS needs int ids) and
mapped back through the ``users``/``items`` tables.

Not done here (``load_dataset`` does them; ``engine.spark.inputs`` picks the rating file of
a folder and MovieLens layout, reads the attribute tables and falls back to
``load_dataset`` for the formats): archives, attribute tables, Excel, JSON, ``::`` text,
decimal commas, text other than UTF-8, timestamps other than epoch seconds or ISO dates.
The warnings ``load_dataset`` gives on ratings are given here too: a 0.5 step resting on a
few half-step ratings, and ids that differ only by Unicode width, invisible characters or
case (keyed in the executors, ``lookalike_groups``). Text that stops being UTF-8 after the
start ``engine.spark.inputs`` checks is refused with the row, since Spark would read its bytes
as U+FFFD and merge or rename ids.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from engine.data.columns import detect_columns
from engine.data.load import fingerprint_of
from engine.data.types import (
    DELIMITERS,
    MAX_EXAMPLES,
    ColumnMapping,
    FileReport,
    LoadOptions,
    LoadReport,
    RatingData,
)
from engine.data.validate import (
    ROW_REASONS,
    detect_scale,
    half_step_notes,
    lookalike_keys,
    lookalike_notes,
)
from engine.errors import DataError
from engine.spark.remote import HadoopPath, location

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

_EPS = 1e-9
#: Columns of a text file's rows whose field count is off: the flag and the count.
_CORRUPT, _FIELDS = "_corrupt", "_fields"
#: ``monotonically_increasing_id`` keeps a row's position in its partition in these low bits.
_POSITION_BITS = 33
#: What Spark reads in place of bytes that are not UTF-8.
_REPLACED = "\ufffd"
#: Rows read to detect the columns, as ``load_dataset`` samples them.
DETECTION_ROWS = 2_000
#: The first lines of a text file are looked for in this many bytes.
FIRST_LINES_BYTES = 1 << 20


@dataclass(frozen=True)
class SparkRatings:
    """Validated ratings held by Spark.

    Attributes
    ----------
    ratings
        ``u, i, rating, timestamp`` (int, int, double, long seconds or null).
    users, items
        ``u, user_id`` and ``i, item_id``: the integer index of each raw id (ascending ids).
    report
        The load report (``rows_kept + sum(rejected) == rows_read``).
    name
        The file's name.
    """

    ratings: DataFrame
    users: DataFrame
    items: DataFrame
    report: LoadReport
    name: str

    def to_rating_data(self) -> RatingData:
        """Collect into a ``RatingData`` (for data that fits in memory), as ``load_dataset``.

        The canonical frame, sorted by ``user_id, item_id``, and its fingerprint are those
        ``load_dataset`` gives for the same file.
        """
        frame = (
            self.ratings.join(self.users, "u")
            .join(self.items, "i")
            .select("user_id", "item_id", "rating", "timestamp")
            .toArrow()
            .to_pandas()
        )
        frame = frame.sort_values(["user_id", "item_id"], ignore_index=True)
        ratings = pd.DataFrame(
            {
                "user_id": pd.array(frame["user_id"], dtype="str"),
                "item_id": pd.array(frame["item_id"], dtype="str"),
                "rating": frame["rating"].astype("float64"),
                "timestamp": pd.array(frame["timestamp"], dtype="Int64"),
            }
        )
        fingerprint = fingerprint_of(ratings, None, None)
        return RatingData(ratings, None, None, self.report.scale, fingerprint, self.report,
                          self.name)  # fmt: skip


def load_ratings(
    path: str | Path,
    *,
    mapping: ColumnMapping | None = None,
    options: LoadOptions | None = None,
    header: bool | None = None,
    spark: SparkSession | None = None,
    name: str | None = None,
) -> SparkRatings:
    """Read and validate a rating file (CSV/TSV/Parquet, a file or a folder) with Spark.

    ``header`` ``None`` detects it (a first line with no number where the second has one).
    ``name`` is the file's name in the report and messages (default: the file name;
    ``load_dataset`` says ``folder/ratings.csv`` for a file found in a folder).

    Raises
    ------
    DataError
        The file cannot be read, the columns cannot be found, or no usable rating is left
        (the same sentences as ``load_dataset``).
    """
    from pyspark.sql import functions as F

    from engine.spark.session import spark_session

    options = options or LoadOptions()
    spark = spark or spark_session()
    path = location(path)
    name = name or path.name
    if not path.exists():
        raise DataError(f"{path} does not exist: check the path of the rating file.")
    raw, fmt, delimiter, has_header = _read(spark, path, options, header)
    raw, malformed = _without_malformed(_numbered(raw), has_header)
    sample = raw.drop("_row").limit(DETECTION_ROWS).toArrow().to_pandas()
    notes: list[str] = []
    columns, detection = detect_columns(sample, mapping, name, notes)
    ignored = [c for c in sample.columns if c not in columns.values()]
    typed = raw.select(
        "_row",
        _id(F.col(f"`{columns['user']}`")).alias("user_id"),
        _id(F.col(f"`{columns['item']}`")).alias("item_id"),
        _number(F.col(f"`{columns['rating']}`")).alias("rating"),
        _seconds(F.col(f"`{columns['timestamp']}`")).alias("timestamp")
        if "timestamp" in columns
        else F.lit(None).cast("long").alias("timestamp"),
        *(F.col(f"`{columns[f]}`").cast("string").alias(f"_raw_{f}")
          for f in ("user", "item", "rating")),
    ).cache()  # fmt: skip
    reason = (
        F.when(F.col("user_id").isNull(), 1)
        .when(F.col("item_id").isNull(), 2)
        .when(F.col("rating").isNull(), 3)
        .otherwise(0)
    )
    typed = typed.withColumn("_reason", reason)
    # Bytes that are not UTF-8 are read as U+FFFD, which would merge or rename ids silently.
    replaced = F.col("_raw_user").contains(_REPLACED) | F.col("_raw_item").contains(_REPLACED)
    tallies = typed.groupBy("_reason").agg(
        F.count(F.lit(1)).alias("n"),
        F.sum((replaced if fmt == "text" else F.lit(False)).cast("int")).alias("replaced"),
    )
    tally_rows = tallies.collect()
    counts = {row["_reason"]: row["n"] for row in tally_rows}
    not_utf8 = sum(row["replaced"] or 0 for row in tally_rows)
    if not_utf8:
        first = typed.where(replaced).agg(F.min("_row")).first()[0]
        raise DataError(
            f"{name} is not UTF-8 throughout: {not_utf8:,} rows hold ids with bytes that are "
            f"not UTF-8 (the first at row {first + 1:,}, past the start that was checked): "
            "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8) or use --engine "
            "surprise, which detects the encoding."
        )
    rows_read = sum(counts.values()) + malformed[0]
    if not counts.get(0):
        raise DataError(
            f"{name} has no row with a user id, an item id and a numeric rating "
            f"(columns used: {columns['user']}, {columns['item']}, {columns['rating']}): "
            "check the column mapping and that ratings are numbers."
        )
    values = typed.where("_reason = 0").groupBy("rating").count().toArrow()
    distinct, weights = values.column("rating").to_numpy(), values.column("count").to_numpy()
    scale = detect_scale(distinct, options, counts=weights)
    notes += half_step_notes(distinct, scale, name, counts=weights)
    outside = (F.col("rating") < scale.low - _EPS) | (F.col("rating") > scale.high + _EPS)
    typed = typed.withColumn(
        "_reason", F.when((F.col("_reason") == 0) & outside, 4).otherwise(F.col("_reason"))
    )
    typed = _mark_duplicates(typed, options.duplicates).cache()
    kept = typed.where("_reason = 0")
    rejected, examples = _tally(typed, columns, empty="" if fmt == "text" else None)
    if malformed[0]:  # first, as load_dataset reports it
        rejected = {"malformed_row": malformed[0], **rejected}
        examples = {"malformed_row": malformed[1], **examples}
    users = _index(kept, "user_id", "u")
    items = _index(kept, "item_id", "i")
    ratings = (
        kept.join(users, "user_id")
        .join(items, "item_id")
        .select("u", "i", "rating", "timestamp")
        .cache()
    )
    rows_kept = rows_read - sum(rejected.values())
    _refuse_unlearnable(ratings, name, rows_kept)
    for kind, index in (("user", users), ("item", items)):
        notes += lookalike_notes(lookalike_groups(index, f"{kind}_id"), kind, name)
    report = LoadReport(
        files=[FileReport("ratings", name, fmt, None, delimiter, has_header, columns,
                          detection, ignored)],
        rows_read=rows_read, rows_kept=rows_kept, rejected=rejected, examples=examples,
        duplicate_policy=options.duplicates, scale=scale, warnings=notes,
    )  # fmt: skip
    return SparkRatings(ratings, users, items, report, name)


def _read(
    spark: SparkSession, path: Path | HadoopPath, options: LoadOptions, header: bool | None
) -> tuple[DataFrame, str, str | None, bool | None]:
    """Return ``(raw frame, format, delimiter, header)``; text cells are read as strings."""
    parquet = path.suffix.lower() == ".parquet" or (path.is_dir() and any(path.glob("*.parquet")))
    try:
        if parquet:
            return spark.read.parquet(str(path)), "parquet", None, None
        first = _first_lines(path)
        delimiter = options.delimiter or _sniff(first)
        if header is None:
            header = len(first) > 1 and _has_header(first, delimiter)
        if delimiter == " ":  # runs of blanks: Spark's CSV reader takes a fixed separator
            frame = _blank_separated(spark, path, header)
        else:
            frame = _csv(spark, path, delimiter, header)
        return frame, "text", delimiter, header
    except Exception as e:  # a Spark analysis error: one sentence, not a Java traceback
        from engine.errors import one_line

        raise DataError(
            f"Spark could not read {path.name} ({one_line(e, 120)}): give a CSV/TSV or "
            "Parquet rating file."
        ) from e


def _csv(spark: SparkSession, path: Path | HadoopPath, delimiter: str, header: bool) -> DataFrame:
    """Read delimited text as strings, flagging rows with more fields than the columns.

    The columns are the header's (else ``column_1``...), as many as the first line has.
    ``_fields`` is the field count of a row whose count is off (Spark's corrupt record),
    ``_corrupt`` is true when it is over the column count (fewer fields read as empty).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    # A row with a field too many is flagged only when every column is parsed; pruned to the
    # columns a query reads, it would be kept. Set here, so a session made elsewhere gets it.
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")
    reader = spark.read.option("header", header).option("inferSchema", False)
    reader = reader.option("sep", delimiter)
    names = reader.csv(str(path)).columns
    if not header:
        names = [f"column_{n + 1}" for n in range(len(names))]
    schema = StructType([StructField(n, StringType()) for n in [*names, _CORRUPT]])
    reader = reader.schema(schema).option("columnNameOfCorruptRecord", _CORRUPT)
    frame = reader.option("enforceSchema", True).csv(str(path))
    line = F.col(_CORRUPT)
    fields = F.when(line.isNotNull(), F.size(F.split(line, re.escape(delimiter), -1)))
    return frame.withColumn(_FIELDS, fields).withColumn(
        _CORRUPT, F.coalesce(F.col(_FIELDS) > len(names), F.lit(False))
    )


def _without_malformed(raw: DataFrame, header: bool | None) -> tuple[DataFrame, tuple[int, list]]:
    """Drop rows with more fields than the header (``load_dataset``'s ``malformed_row``).

    Returns the rows left, numbered again in file order, and ``(count, examples)`` where an
    example is ``{"line": 1-based line in the file, "fields": count}`` (blank lines aside).
    """
    from pyspark.sql import functions as F

    if _CORRUPT not in raw.columns:
        return raw, (0, [])
    bad = raw.where(F.col(_CORRUPT)).cache()
    count = bad.count()
    if not count:
        return raw.drop(_CORRUPT, _FIELDS), (0, [])
    first = 1 + (1 if header else 0)
    rows = bad.orderBy("_row").limit(MAX_EXAMPLES).select("_row", _FIELDS).collect()
    examples = [{"line": int(r["_row"]) + first, "fields": int(r[_FIELDS])} for r in rows]
    kept = raw.where(~F.col(_CORRUPT)).drop(_CORRUPT, _FIELDS, "_row")
    return _numbered(kept), (count, examples)


def _blank_separated(spark: SparkSession, path: Path | HadoopPath, header: bool) -> DataFrame:
    from pyspark.sql import functions as F

    lines = spark.read.text(str(path)).where(F.trim("value") != "")
    width = len(_first_lines(path)[0].split())
    parts = F.split(F.trim("value"), r"\s+")
    frame = lines.select(*(parts.getItem(n).alias(f"column_{n + 1}") for n in range(width)))
    if header:
        names = _first_lines(path)[0].split()
        frame = frame.toDF(*names).where(F.col(names[0]) != names[0])
    return frame


def _first_lines(path: Path | HadoopPath) -> list[str]:
    """Return the first two lines of the file (of a folder's first file by name), as UTF-8."""
    file = min(path.glob("*"), key=str) if path.is_dir() else path
    with file.open("rb") as handle:
        head = handle.read(FIRST_LINES_BYTES).decode("utf-8", errors="replace")
    lines = re.split(r"\r\n|\r|\n", head)  # universal newlines, as open() in text mode
    return (lines[:-1] if head.endswith(("\n", "\r")) else lines)[:2]


def _sniff(lines: list[str]) -> str:
    """Return the delimiter of ``DELIMITERS`` splitting the first line into most (>= 3) fields."""
    counts = {d: len(lines[0].split(d)) if d != " " else len(lines[0].split()) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    if counts[best] < 3:
        raise DataError(
            "The rating file's first line has fewer than 3 fields for any delimiter: give a "
            "file with user, item and rating columns (CLI: --delimiter)."
        )
    return best


def _has_header(lines: list[str], delimiter: str) -> bool:
    def numbers(line: str) -> int:
        fields = line.split() if delimiter == " " else line.split(delimiter)
        return sum(_is_number(f) for f in fields)

    return numbers(lines[0]) == 0 and numbers(lines[1]) > 0


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _id(column):
    """Ids as stripped strings; empty -> null; whole floats lose ``.0`` (``ids_as_strings``)."""
    from pyspark.sql import functions as F

    text = F.trim(column.cast("string"))
    text = F.regexp_replace(text, r"^(-?\d+)\.0+$", "$1")
    return F.when((text == "") | text.isin("nan", "NaN", "<NA>"), None).otherwise(text)


def _number(column):
    """Ratings as double; empty, non-numeric, NaN and infinite -> null."""
    from pyspark.sql import functions as F

    value = F.trim(column.cast("string")).try_cast("double")
    finite = ~F.isnan(value) & (F.abs(value) != float("inf"))
    return F.when(value.isNotNull() & finite, value)


def _seconds(column):
    """Epoch seconds as long: numbers as given, else an ISO date/time; null otherwise."""
    from pyspark.sql import functions as F

    text = F.trim(column.cast("string"))
    number = text.try_cast("double")
    return F.coalesce(F.floor(number).cast("long"), F.unix_timestamp(F.to_timestamp(text)))


def _mark_duplicates(typed: DataFrame, policy: str) -> DataFrame:
    """Reason 5 (duplicate) on all but one row per (user, item); ``mean`` averages the pair.

    Kept row per pair: ``first`` the earliest in file order, ``last`` the latest, ``latest``
    the largest timestamp (missing = earliest; ties by file order), ``mean`` the latest in
    file order with the pair's mean rating, as ``engine.data.validate``.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    pair = Window.partitionBy("user_id", "item_id")
    if policy == "first":
        order = pair.orderBy(F.col("_row").asc())
    elif policy == "latest":
        order = pair.orderBy(F.col("timestamp").desc_nulls_last(), F.col("_row").desc())
    else:
        order = pair.orderBy(F.col("_row").desc())
    valid = typed.where("_reason = 0").withColumn("_rank", F.row_number().over(order))
    if policy == "mean":
        valid = valid.withColumn("rating", F.avg("rating").over(pair))
    valid = valid.withColumn("_reason", F.when(F.col("_rank") == 1, 0).otherwise(5)).drop("_rank")
    return valid.unionByName(typed.where("_reason != 0"))


def _tally(
    typed: DataFrame, columns: dict[str, str], empty: str | None
) -> tuple[dict[str, int], dict[str, list]]:
    """Rejected rows per reason and up to ``MAX_EXAMPLES`` raw examples of each (file order).

    An absent cell is shown as ``empty`` (``""`` for text files, as the file holds it).
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = dict(typed.where("_reason != 0").groupBy("_reason").count().collect())
    rows = (
        typed.where("_reason != 0")
        .withColumn("_n", F.row_number().over(Window.partitionBy("_reason").orderBy("_row")))
        .where(F.col("_n") <= MAX_EXAMPLES)
        .orderBy("_reason", "_row")
        .collect()
    )
    rejected, examples = {}, {}
    shown = [f for f in ("user", "item", "rating") if f in columns]
    for code, why in enumerate(ROW_REASONS, start=1):
        if counts.get(code):
            rejected[why] = int(counts[code])
            examples[why] = [
                {"row": int(r["_row"]) + 1, **{f: _or(r[f"_raw_{f}"], empty) for f in shown}}
                for r in rows if r["_reason"] == code
            ]  # fmt: skip
    return rejected, examples


def _or(value: object, empty: str | None) -> object:
    return empty if value is None else value


def _index(kept: DataFrame, column: str, name: str) -> DataFrame:
    """``name, column``: consecutive integers over the distinct ids, in ascending id order."""
    distinct = kept.select(column).distinct().orderBy(column)
    indexed = distinct.rdd.map(lambda row: row[0]).zipWithIndex().toDF([column, name])
    return indexed.select(indexed[name].cast("int").alias(name), column).cache()


def lookalike_groups(index: DataFrame, column: str) -> list[list[str]]:
    """``engine.data.validate.lookalike_ids`` of ``index[column]``, keyed in the executors.

    Only the groups (ids sharing a key) come back, in key order, each sorted.
    """
    from pyspark.sql import functions as F

    def keyed(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            ids = frame[column].astype(object)
            yield pd.DataFrame({"id": ids, "key": lookalike_keys(ids)})

    shared = (
        index.select(column)
        .mapInPandas(keyed, "id string, key string")
        .groupBy("key")
        .agg(F.count(F.lit(1)).alias("n"), F.sort_array(F.collect_list("id")).alias("ids"))
        .where("n > 1")
        .orderBy("key")
    )
    return [list(row["ids"]) for row in shared.collect()]


def _numbered(raw: DataFrame) -> DataFrame:
    """``raw`` with ``_row``: each row's 0-based position in the file (as ``load_dataset``).

    ``RDD.zipWithIndex``'s numbering (partitions in order, rows in order within each),
    computed in the JVM: ``monotonically_increasing_id`` holds the partition index above
    bit 33 and the row's position in it below, so one counting pass gives each partition's
    offset. Rows never pass through Python: with ``zipWithIndex`` every later pass over the
    file did, and loading 25M ratings had not finished after 13 min (232 s now).
    """
    from pyspark.sql import functions as F

    tagged = raw.withColumn("_id", F.monotonically_increasing_id())
    part = F.shiftright(F.col("_id"), _POSITION_BITS)
    # Rows counted through a data column: Spark refuses a CSV query that reads only the
    # corrupt-record column, and simplifies a count of a never-null expression to count(1).
    column = F.col(f"`{next(c for c in raw.columns if c not in (_CORRUPT, _FIELDS))}`")
    rows = F.count(column) + F.count(F.when(column.isNull(), 1))
    sizes = sorted(tagged.groupBy(part.alias("p")).agg(rows).collect())
    offsets: list[object] = []
    start = 0
    for p, n in sizes:
        offsets += [F.lit(p), F.lit(start)]
        start += n
    offset = F.create_map(*offsets)[part] if offsets else F.lit(0)
    position = F.col("_id") - F.shiftleft(part, _POSITION_BITS)
    return tagged.withColumn("_row", (offset + position).cast("long")).drop("_id")


def _refuse_unlearnable(ratings: DataFrame, name: str, rows_kept: int) -> None:
    """Refuse as ``load_dataset`` does: nothing kept, one value only, < 2 users or items."""
    from pyspark.sql import functions as F

    if rows_kept == 0:
        raise DataError(
            f"{name} has no usable rating left after validation: see the rejected rows "
            "in the load report and fix the rating scale or column mapping."
        )
    stats = ratings.agg(
        F.min("rating"), F.max("rating"), F.countDistinct("u"), F.countDistinct("i")
    ).first()
    if stats[0] == stats[1]:
        raise DataError(
            f"All {rows_kept:,} ratings in {name} have the same value ({stats[0]:g}): this "
            "looks like implicit feedback (clicks or purchases), and SVD rating prediction needs "
            "graded ratings; supply explicit ratings such as 1-5 stars."
        )
    for kind, count in (("user", stats[2]), ("item", stats[3])):
        if count < 2:
            raise DataError(
                f"{name} has ratings for only {count} {kind}: collaborative filtering needs at "
                f"least two users and two items; supply the full rating export."
            )
