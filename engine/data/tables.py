"""Read one tabular file (delimited text or Parquet) into a raw DataFrame.

Text is decoded as UTF-8 (with or without BOM, or UTF-16 with BOM), otherwise
by detection (``charset_normalizer``), with Windows-1252 and then Latin-1 as the
fallback for Western text. The delimiter is sniffed among comma, tab,
semicolon, ``|``, ``::`` and runs of blanks; the header is detected by known
column names or by a first row that is text where the rest is numeric.
Every cell of a text file stays a string; typing happens in validation.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field

import charset_normalizer
import pandas as pd
import pyarrow.parquet as pq

from engine.data.types import DataFile, LoadOptions
from engine.errors import DataError

PARQUET_MAGIC = b"PAR1"
SNIFF_LINES = 200
_UNIT_SEP = "\x1f"
_DELIMITERS: tuple[str, ...] = ("::", "\t", ",", ";", "|", " ")
_WESTERN = {"cp1252", "latin_1", "iso8859_15", "iso8859_1", "mac_roman", "cp1250", "ascii"}
_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


@dataclass
class RawTable:
    """A file's cells before typing.

    ``frame`` has one column per source column (text files: all strings, ``NaN``
    for absent fields); ``malformed`` lists ``(line, fields)`` of rows with more
    fields than the header, which were not read into ``frame``.
    """

    frame: pd.DataFrame
    name: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    malformed: list[tuple[int, int]] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        """Data rows in the file, including malformed ones."""
        return len(self.frame) + len(self.malformed)


def decode_text(file: DataFile) -> tuple[str, str]:
    """Decode a text file; return ``(text, encoding)``.

    Raises
    ------
    DataError
        Empty file, or binary content (NUL bytes outside UTF-16, or control characters).
    """
    data = file.content
    if not data.strip():
        raise DataError(f"{file.name} is empty: choose a file that holds rating rows.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as e:
            raise DataError(
                f"{file.name} starts like UTF-16 text but does not decode ({e.reason}): "
                "save it again as UTF-8 CSV."
            ) from e
    if b"\x00" in data[:1_000_000]:
        raise DataError(
            f"{file.name} is binary, not a text table (it contains NUL bytes): "
            "export the ratings as CSV, TSV or Parquet."
        )
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        guess = charset_normalizer.from_bytes(data[:200_000]).best()
        guessed = guess.encoding if guess is not None else None
        candidates = [] if guessed is None or guessed in _WESTERN else [guessed]
        for encoding in [*candidates, "cp1252", "latin_1"]:
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
    sample = text[:100_000]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\r\n")
    if controls > max(3, len(sample) // 200):
        raise DataError(
            f"{file.name} is binary, not a text table ({controls} control characters in its "
            "first 100,000): export the ratings as CSV, TSV or Parquet."
        )
    return text, encoding


def _sample_lines(text: str) -> list[str]:
    lines = []
    for line in io.StringIO(text):
        if line.strip():
            lines.append(line.rstrip("\r\n"))
            if len(lines) >= SNIFF_LINES:
                break
    return lines


def _field_counts(lines: list[str], delimiter: str) -> list[int]:
    if delimiter == "::":
        return [line.count("::") + 1 for line in lines]
    if delimiter == " ":
        return [len(line.split()) for line in lines]
    return [len(row) for row in csv.reader(lines, delimiter=delimiter)]


def sniff_delimiter(lines: list[str], name: str) -> str:
    """Return the delimiter that splits the sample lines into the most consistent columns.

    A candidate must split at least 80% of the lines into the same number (>= 2)
    of fields; among those, the earliest in ``"::", tab, ",", ";", "|", blanks``.
    """
    for delimiter in _DELIMITERS:
        counts = _field_counts(lines, delimiter)
        modal, hits = Counter(counts).most_common(1)[0]
        if modal >= 2 and hits >= 0.8 * len(counts):
            return delimiter
    other = _other_separator(lines)
    if other is not None:
        raise DataError(
            f"{name} separates its fields with {other!r}, which is not a supported delimiter: "
            "save it as CSV (comma), TSV (tab), or with ';', '|' or '::' between fields."
        )
    if all(max(_field_counts(lines, d)) == 1 for d in _DELIMITERS):
        raise DataError(
            f"{name} has only one column: a rating file needs user, item and rating "
            "columns separated by comma, tab, semicolon, '|' or '::'."
        )
    raise DataError(
        f"{name} has no delimiter that splits its lines into the same number of columns: "
        "check that quotes are balanced and every row has the same fields."
    )


def _other_separator(lines: list[str]) -> str | None:
    """Return a punctuation character that occurs equally often (>= 1) on every sample line."""
    ignored = set(" .-_'\"") | set("".join(_DELIMITERS))
    counts = Counter(ch for ch in lines[0] if not ch.isalnum() and ch not in ignored)
    for ch, n in counts.most_common():
        if all(line.count(ch) == n for line in lines):
            return ch
    return None


def _is_number(value: str) -> bool:
    return bool(_NUMBER.match(value))


def detect_header(rows: list[list[str]], known_names: set[str]) -> bool:
    """Return True when the first row is a header.

    It is one when a cell is a known column name (normalised), or when some column
    is numeric in at least 90% of the following rows but not in the first.
    """
    first = rows[0]
    if any(normalise_name(cell) in known_names for cell in first):
        return True
    rest = rows[1:]
    if not rest:
        return not any(_is_number(cell) for cell in first)
    for j, cell in enumerate(first):
        column = [r[j] for r in rest if j < len(r) and r[j].strip()]
        numeric = sum(_is_number(v) for v in column)
        if column and numeric >= 0.9 * len(column) and not _is_number(cell):
            return True
    return False


def normalise_name(name: object) -> str:
    """Lower-case a column name and drop everything but letters and digits."""
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _split_rows(lines: list[str], delimiter: str) -> list[list[str]]:
    if delimiter == "::":
        return [line.split("::") for line in lines]
    if delimiter == " ":
        return [line.split() for line in lines]
    return list(csv.reader(lines, delimiter=delimiter))


def read_text_table(
    file: DataFile,
    known_names: set[str],
    *,
    delimiter: str | None = None,
    header: bool | None = None,
    encoding: str | None = None,
) -> RawTable:
    """Read a delimited text file into a ``RawTable`` of strings.

    ``delimiter``, ``header`` and ``encoding`` override detection. Columns of a
    headerless file are named ``column_1``, ``column_2``, ...
    """
    if encoding is None:
        text, encoding = decode_text(file)
    else:
        text = file.content.decode(encoding)
    if "\r" in text:  # Windows (\r\n) and old Mac (\r) line ends, even mixed in one file
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = _sample_lines(text)
    if not lines:
        raise DataError(f"{file.name} is empty: choose a file that holds rating rows.")
    if delimiter is None:
        delimiter = sniff_delimiter(lines, file.name)
    sample_rows = _split_rows(lines, delimiter)
    if header is None:
        header = detect_header(sample_rows, known_names)
    width = len(sample_rows[0])
    sep = delimiter
    if delimiter == "::":
        text, sep = text.replace("::", _UNIT_SEP), _UNIT_SEP
    elif delimiter == " ":
        sep = r"\s+"
    names = None if header else [f"column_{j + 1}" for j in range(width)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            frame = pd.read_csv(
                io.StringIO(text),
                sep=sep,
                header=0 if header else None,
                names=names,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=True,
                on_bad_lines="warn",
                engine="c",
                quoting=csv.QUOTE_MINIMAL if delimiter not in ("::", " ") else csv.QUOTE_NONE,
            )
        except (pd.errors.ParserError, ValueError) as e:
            raise DataError(
                f"{file.name} could not be parsed as a table ({str(e).strip()}): check that "
                "quotes are balanced and every row has the same fields."
            ) from e
    malformed = [
        (int(m.group(1)), int(m.group(3)))
        for w in caught
        for m in _BAD_LINE.finditer(str(w.message))
    ]
    if header:
        frame.columns = [str(c).strip() for c in frame.columns]
        if len(frame) == 0 and not malformed:
            raise DataError(
                f"{file.name} holds only a header ({', '.join(frame.columns)}) and no data rows: "
                "export the file again with its rows."
            )
    return RawTable(frame, file.name, "text", encoding, delimiter, bool(header), malformed)


def check_table_limits(file: DataFile, options: LoadOptions) -> None:
    """Refuse a table with more rows or columns than ``options`` allow, before parsing it.

    Text: rows are counted as line breaks (an upper bound of the data rows) and columns as
    the most fields any supported delimiter gives the first non-blank line. Parquet: its
    metadata. Raises ``DataError`` naming the limit and how to raise it.
    """
    if file.content[:4] == PARQUET_MAGIC:
        try:
            meta = pq.ParquetFile(io.BytesIO(file.content)).metadata
        except Exception:  # unreadable: read_parquet_table says so
            return
        rows, columns = meta.num_rows, meta.num_columns
    else:
        content = file.content
        rows = max(content.count(b"\n"), content.count(b"\r"))
        first = next((line for line in content[:4_000_000].splitlines() if line.strip()), b"")
        columns = max([first.count(d.encode()) + 1 for d in _DELIMITERS if d != " "])
    if columns > options.max_columns:
        raise DataError(
            f"{file.name} has {columns:,} columns, over the limit of {options.max_columns:,}: a "
            "rating file needs user, item and rating columns (attribute files a few more); "
            "export only those, or raise LoadOptions(max_columns=...)."
        )
    if rows > options.max_rows:
        raise DataError(
            f"{file.name} has about {rows:,} rows, over the row limit of {options.max_rows:,}: "
            "load a sample of it, or raise LoadOptions(max_rows=...) (CLI: --max-rows) on a "
            "machine with the memory for it."
        )


def read_parquet_table(file: DataFile) -> RawTable:
    """Read a Parquet file; columns keep their stored types."""
    try:
        frame = pd.read_parquet(io.BytesIO(file.content))
    except Exception as e:  # pyarrow raises many types for corrupt files
        raise DataError(
            f"{file.name} is not a readable Parquet file ({type(e).__name__}: {e}): "
            "write it again or export it as CSV."
        ) from e
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{file.name} has no rows: choose a file that holds rating rows.")
    return RawTable(frame, file.name, "parquet")


def read_table(file: DataFile, known_names: set[str]) -> RawTable:
    """Read a text or Parquet file, recognised by its content rather than its extension."""
    if file.content[:4] == PARQUET_MAGIC:
        return read_parquet_table(file)
    return read_text_table(file, known_names)
