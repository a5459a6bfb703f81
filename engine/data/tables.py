"""Read one tabular file (delimited text, Parquet, JSON, Excel) into a raw DataFrame.

The format is recognised by content, not by extension: Parquet by its magic bytes, an
Excel workbook as a zip holding ``xl/workbook.xml``, JSON by a first character ``[`` or
``{`` (an array of records, an object of columns, or one record per line). Text is
decoded as UTF-8 (with or without BOM, or UTF-16 with BOM), otherwise
by detection (``charset_normalizer``), with Windows-1252 and then Latin-1 as the
fallback for Western text. The delimiter is sniffed among comma, tab,
semicolon, ``|``, ``::`` and runs of blanks; the header is detected by known
column names or by a first row that is text where the rest is numeric.
Every cell of a text file stays a string; typing happens in validation.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import charset_normalizer
import pandas as pd
import pyarrow.parquet as pq

from engine.data.types import DELIMITERS, DataFile, LoadOptions
from engine.errors import DataError, one_line

PARQUET_MAGIC = b"PAR1"
SNIFF_LINES = 200
_UNIT_SEP = "\x1f"
_DECIMAL_COMMA = re.compile(r"\d,\d")
_CSV_FIELD_LIMIT = 2**31 - 1  # the csv module's default of 131,072 characters is too small
_WESTERN = {"cp1252", "latin_1", "iso8859_15", "iso8859_1", "mac_roman", "cp1250", "ascii"}
_BAD_LINE = re.compile(r"Skipping line (\d+): expected (\d+) fields, saw (\d+)")
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


@dataclass
class RawTable:
    """A file's cells before typing.

    ``frame`` has one column per source column (text files: all strings, ``NaN``
    for absent fields); ``malformed`` lists ``(line, fields)`` of rows with more
    fields than the header (or JSON records that are not objects, with 0 fields),
    which were not read into ``frame``; ``notes`` are sentences for the load report.
    """

    frame: pd.DataFrame
    name: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    malformed: list[tuple[int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

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


@contextlib.contextmanager
def _long_fields() -> Iterator[None]:
    """Let the ``csv`` module read fields longer than its default 131,072 characters.

    Review texts and user bios exceed it; the limit is restored afterwards.
    """
    previous = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


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
    with _long_fields():
        return [len(row) for row in csv.reader(lines, delimiter=delimiter)]


def sniff_delimiter(lines: list[str], name: str) -> str:
    """Return the delimiter that splits the sample lines into the most consistent columns.

    A candidate must split at least 80% of the lines into the same number (>= 2)
    of fields; among those, the earliest in ``"::", tab, ",", ";", "|", blanks``, with
    one exception for European exports: when ``;`` gives more columns than ``,`` and every
    comma in the sample stands between two digits (a decimal comma, ``u1;i1;3,5``), the
    delimiter is ``;``.
    """
    consistent: dict[str, int] = {}
    for delimiter in DELIMITERS:
        counts = _field_counts(lines, delimiter)
        modal, hits = Counter(counts).most_common(1)[0]
        if modal >= 2 and hits >= 0.8 * len(counts):
            consistent[delimiter] = modal
    if consistent:
        first = next(iter(consistent))
        if first == "," and consistent.get(";", 0) > consistent[","]:
            commas = sum(line.count(",") for line in lines)
            if commas == sum(len(_DECIMAL_COMMA.findall(line)) for line in lines):
                return ";"
        return first
    other = _other_separator(lines)
    if other is not None:
        raise DataError(
            f"{name} separates its fields with {other!r}, which is not a supported delimiter: "
            "save it as CSV (comma), TSV (tab), or with ';', '|' or '::' between fields."
        )
    if all(max(_field_counts(lines, d)) == 1 for d in DELIMITERS):
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
    ignored = set(" .-_'\"") | set("".join(DELIMITERS))
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
    with _long_fields():
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
                index_col=False,  # a trailing delimiter must not shift the columns
                engine="c",
                quoting=csv.QUOTE_MINIMAL if delimiter not in ("::", " ") else csv.QUOTE_NONE,
            )
        except (pd.errors.ParserError, ValueError) as e:
            raise DataError(
                f"{file.name} could not be parsed as a table ({one_line(e)}): check that "
                "quotes are balanced and every row has the same fields."
            ) from e
    malformed = [
        (int(m.group(1)), int(m.group(3)))
        for w in caught
        for m in _BAD_LINE.finditer(str(w.message))
    ]
    notes = []
    if any("loss of data with index_col=False" in str(w.message) for w in caught):
        extra = sum(1 for row in sample_rows[1 if header else 0 :] if len(row) == width + 1)
        notes.append(
            f"Rows of {file.name} have one field more than its header (e.g. {extra:,} of the "
            "first lines; a delimiter at the end of each line?): that last field was ignored."
        )
    if header:
        frame.columns = [str(c).strip() for c in frame.columns]
        if len(frame) == 0 and not malformed:
            raise DataError(
                f"{file.name} holds only a header ({', '.join(frame.columns)}) and no data rows: "
                "export the file again with its rows."
            )
    return RawTable(frame, file.name, "text", encoding, delimiter, bool(header), malformed, notes)


def check_table_limits(file: DataFile, options: LoadOptions) -> None:
    """Refuse a table with more rows or columns than ``options`` allow, before parsing it.

    Text: rows are counted as line breaks (an upper bound of the data rows) and columns as
    the most fields any supported delimiter gives the first non-blank line. Parquet: its
    metadata. JSON and Excel are checked once parsed (a JSON array may be one line).
    Raises ``DataError`` naming the limit and how to raise it.
    """
    if is_json(file.content) or is_excel(file.content):
        return
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
        columns = max([first.count(d.encode()) + 1 for d in DELIMITERS if d != " "])
    if columns > options.max_columns:
        raise DataError(
            f"{file.name} has {columns:,} columns, over the limit of {options.max_columns:,}: a "
            "rating file needs user, item and rating columns (attribute files a few more); "
            "export only those, or raise LoadOptions(max_columns=...)."
        )
    check_row_limit(file.name, rows, options)


def check_row_limit(name: str, rows: int, options: LoadOptions) -> None:
    """Refuse a table of about ``rows`` rows over ``options.max_rows``, in one sentence."""
    if rows > options.max_rows:
        raise DataError(
            f"{name} has about {rows:,} rows, over the row limit of {options.max_rows:,}: "
            "load a sample of it, or raise LoadOptions(max_rows=...) (CLI: --max-rows) on a "
            "machine with the memory for it."
        )


def read_parquet_table(file: DataFile) -> RawTable:
    """Read a Parquet file; columns keep their stored types."""
    try:
        frame = pd.read_parquet(io.BytesIO(file.content))
    except Exception as e:  # pyarrow raises many types for corrupt files
        raise DataError(
            f"{file.name} is not a readable Parquet file ({type(e).__name__}: "
            f"{one_line(e)}): write it again or export it as CSV."
        ) from e
    frame.columns = [str(c).strip() for c in frame.columns]
    if len(frame) == 0:
        raise DataError(f"{file.name} has no rows: choose a file that holds rating rows.")
    return RawTable(frame, file.name, "parquet")


EXCEL_MEMBER = "xl/workbook.xml"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls (and other Office files)
_ROLE_SHEETS = {"ratings": ("ratings", "rating"), "users": ("users", "user"),
                "items": ("items", "item", "movies", "products", "books")}  # fmt: skip


def is_excel(content: bytes) -> bool:
    """Return True for an Excel ``.xlsx`` workbook (a zip holding ``xl/workbook.xml``)."""
    if content[:4] != b"PK\x03\x04":
        return False
    try:
        return EXCEL_MEMBER in zipfile.ZipFile(io.BytesIO(content)).namelist()
    except (zipfile.BadZipFile, EOFError, OSError, ValueError):
        return False


def is_json(content: bytes) -> bool:
    """Return True when the first non-blank character (after a BOM) is ``[`` or ``{``."""
    head = content[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"[", b"{")


def _frame_from_records(records: list[object], name: str) -> tuple[pd.DataFrame, list[int]]:
    """Return a frame of the dict (or list) records and the 1-based positions of the others."""
    dicts = [r for r in records if isinstance(r, dict)]
    lists = [r for r in records if isinstance(r, list)]
    if len(lists) > len(dicts):  # an array of arrays: a headerless table
        good = [k for k, r in enumerate(records) if isinstance(r, list)]
        width = max(len(r) for r in lists)
        columns = [f"column_{j + 1}" for j in range(width)]
        return pd.DataFrame(lists, columns=columns), [
            k + 1 for k in range(len(records)) if k not in set(good)
        ]
    bad = [k + 1 for k, r in enumerate(records) if not isinstance(r, dict)]
    frame = pd.json_normalize(dicts, max_level=1) if dicts else pd.DataFrame()
    return frame, bad


def read_json_table(file: DataFile, options: LoadOptions) -> RawTable:
    """Read JSON: an array of records, an object of columns, or JSON lines (one per line).

    Records that are not objects (or, in JSON lines, lines that do not parse) are counted as
    malformed rows; nested objects become ``parent.child`` columns; values keep their JSON
    types (numbers stay numbers), as Parquet columns do.
    """
    text, encoding = decode_text(file)
    malformed: list[tuple[int, int]] = []
    fmt = "json"
    try:
        document = json.loads(text)
    except RecursionError as e:
        raise DataError(
            f"{file.name} nests JSON deeper than Python can read: export the ratings as flat "
            "records (one object per rating) or as CSV."
        ) from e
    except json.JSONDecodeError as e:
        lines = [(k, line) for k, line in enumerate(text.splitlines(), start=1) if line.strip()]
        records: list[object] = []
        for k, line in lines:
            try:
                records.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError):
                malformed.append((k, 0))
        if not lines or len(malformed) > len(lines) / 2:
            raise DataError(
                f"{file.name} looks like JSON but is not valid JSON ({e.msg} at line {e.lineno}, "
                f"column {e.colno}): export it again, as an array of records or one record per "
                "line."
            ) from e
        document, fmt = records, "json-lines"
    if isinstance(document, dict):
        lists = [v for v in document.values() if isinstance(v, list)]
        if len(lists) == 1 and all(isinstance(r, dict) for r in lists[0][:100]):
            document = lists[0]  # {"ratings": [{...}, ...]}, as many APIs export
        else:
            try:
                document = pd.DataFrame(document).to_dict("records")
            except ValueError as e:
                raise DataError(
                    f"{file.name} is a JSON object that is not a table ({one_line(e)}): export "
                    "an array "
                    "of records, one object per rating."
                ) from e
    if not isinstance(document, list):
        raise DataError(
            f"{file.name} holds a single JSON value, not a table: export an array of records, "
            "one object per rating."
        )
    if len(document) > options.max_rows:
        raise DataError(
            f"{file.name} has {len(document):,} records, over the row limit of "
            f"{options.max_rows:,}: load a sample of it, or raise LoadOptions(max_rows=...) "
            "(CLI: --max-rows)."
        )
    frame, bad = _frame_from_records(document, file.name)
    malformed += [(k, 0) for k in bad]
    if frame.shape[1] > options.max_columns:
        raise DataError(
            f"{file.name} has {frame.shape[1]:,} columns, over the limit of "
            f"{options.max_columns:,}: export only the user, item and rating fields."
        )
    if frame.empty:
        raise DataError(f"{file.name} holds no JSON records: choose a file with rating rows.")
    frame.columns = [str(c).strip() for c in frame.columns]
    return RawTable(frame, file.name, fmt, encoding, None, True, malformed)


def read_excel_table(
    file: DataFile, known_names: set[str], options: LoadOptions, role: str = "ratings"
) -> RawTable:
    """Read one worksheet of an ``.xlsx`` workbook.

    The sheet is ``options.sheet`` if given, else one named like the role (``ratings``,
    ``users``, ``items``), else the first; the choice is noted when there are several.
    The header is detected as for text. Cells keep their Excel types.
    """
    from engine.data.archive import open_zip  # the zip checks (bombs, paths) come first

    open_zip(file, options)
    try:
        import openpyxl
    except ImportError as e:  # pragma: no cover - openpyxl is in requirements.txt
        raise DataError(
            f"{file.name} is an Excel workbook and openpyxl is not installed: "
            "pip install openpyxl, or save the sheet as CSV."
        ) from e
    try:
        book = openpyxl.load_workbook(io.BytesIO(file.content), read_only=True, data_only=True)
        sheets = list(book.sheetnames)
        visible = [name for name in sheets if book[name].sheet_state == "visible"] or sheets
    except Exception as e:  # openpyxl raises many types for damaged workbooks
        raise DataError(
            f"{file.name} is not a readable Excel workbook ({type(e).__name__}: "
            f"{one_line(e)}): open it in a spreadsheet program and save it again, or save the "
            "sheet as CSV."
        ) from e
    notes: list[str] = []
    if options.sheet is not None and role == "ratings":
        if options.sheet not in sheets:
            raise DataError(
                f"{file.name} has no sheet named {options.sheet!r} (sheets: "
                f"{', '.join(sheets)}): name one of them."
            )
        sheet = options.sheet
    else:
        wanted = _ROLE_SHEETS.get(role, ())
        sheet = next((s for s in visible if normalise_name(s) in wanted), visible[0])
        if len(sheets) > 1:
            notes.append(
                f"{file.name} has {len(sheets)} sheets ({', '.join(sheets)}); the sheet "
                f"{sheet!r} was read as the {role} (choose another with --sheet)."
            )
    try:
        cells = _sheet_cells(book[sheet], file.name, sheet, options)
    except DataError:
        raise
    except Exception as e:
        raise DataError(
            f"{file.name} sheet {sheet!r} could not be read ({type(e).__name__}: "
            f"{one_line(e)}): save the sheet as CSV and load that."
        ) from e
    finally:
        book.close()
    cells = cells.dropna(how="all").dropna(axis=1, how="all").reset_index(drop=True)
    if cells.empty:
        raise DataError(f"{file.name} sheet {sheet!r} is empty: choose the sheet with the ratings.")
    text = cells.head(SNIFF_LINES).astype("str").where(cells.head(SNIFF_LINES).notna(), "")
    header = detect_header(text.values.tolist(), known_names)
    if header:
        names = [str(c).strip() if pd.notna(c) else f"column_{j + 1}"
                 for j, c in enumerate(cells.iloc[0])]  # fmt: skip
        frame = cells.iloc[1:].reset_index(drop=True)
        frame.columns = names
        if frame.empty:
            raise DataError(
                f"{file.name} sheet {sheet!r} holds only a header ({', '.join(names)}) and no "
                "data rows: choose the sheet with the ratings."
            )
    else:
        frame = cells
        frame.columns = [f"column_{j + 1}" for j in range(cells.shape[1])]
    frame = frame.infer_objects()
    return RawTable(frame, f"{file.name} (sheet {sheet})", "excel", header=header, notes=notes)


def _sheet_cells(sheet: object, name: str, title: str, options: LoadOptions) -> pd.DataFrame:
    """Stream a read-only worksheet's values, refusing a sheet past the row/column limits.

    The declared dimensions are checked first (a 19 KB workbook can declare a cell at
    XFD1048576, whose full grid would not fit in memory); rows are then read one at a time,
    bounded by the limits whatever the declaration said.
    """
    rows_declared, cols_declared = sheet.max_row or 0, sheet.max_column or 0
    too_big = DataError(
        f"{name} sheet {title!r} spans {max(rows_declared, 1):,} rows and "
        f"{max(cols_declared, 1):,} columns, over the limits of {options.max_rows:,} rows and "
        f"{options.max_columns:,} columns (is a stray cell far from the table?): clear it or "
        "export the table as CSV, or raise LoadOptions(max_rows=...)."
    )
    if rows_declared > options.max_rows + 1 or cols_declared > options.max_columns:
        raise too_big
    rows = []
    bounds = {"max_col": cols_declared} if cols_declared else {}
    for row in sheet.iter_rows(values_only=True, **bounds):
        rows.append(row)
        if len(rows) > options.max_rows + 1 or len(row) > options.max_columns:
            raise too_big
    return pd.DataFrame(rows)


def read_table(
    file: DataFile,
    known_names: set[str],
    options: LoadOptions | None = None,
    role: str = "ratings",
) -> RawTable:
    """Read a text, Parquet, JSON or Excel file, recognised by content rather than extension.

    Raises
    ------
    DataError
        The file cannot be read as a table; a legacy ``.xls`` workbook is named as such.
    """
    options = options or LoadOptions()
    if file.content[:4] == PARQUET_MAGIC:
        return read_parquet_table(file)
    if is_excel(file.content):
        return read_excel_table(file, known_names, options, role)
    if file.content[:8] == OLE2_MAGIC:
        raise DataError(
            f"{file.name} is a legacy Excel .xls workbook (or another old Office file): save "
            "it as .xlsx or CSV and load that."
        )
    if is_json(file.content):
        return read_json_table(file, options)
    return read_text_table(file, known_names, delimiter=options.delimiter)
