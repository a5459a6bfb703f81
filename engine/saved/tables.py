"""DataFrames as Parquet with a recorded schema, read back exactly and checked.

A table's schema is recorded in the manifest when it is written: its row count, each
column's name and *kind* (the pandas dtype, see ``KINDS``) and its index (``None`` for the
default ``0..n-1`` range, else the index's name and kind, stored as the column
``INDEX_COLUMN``). Reading checks the Parquet file against that record before any data is
read (row count, column names, Arrow types, uncompressed size) and rebuilds every column
with its pandas dtype, so a round trip is exact: ``str`` columns stay ``str``, ``Int64``
keeps its ``<NA>``, NaN in a ``float64`` column stays NaN (it is not written as null), and
tuple cells (``genres``) come back as tuples. Pandas' own Parquet metadata is neither
written nor read.

A stage additionally declares what it requires of a table (``TableSpec``): columns with
their kinds, columns that must be finite and columns that must not be missing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from engine.ids import arrow_strings
from engine.saved.errors import SavedAnalysisError, refuse

#: Name of the Parquet column holding a table's index when it is not ``0..n-1``.
INDEX_COLUMN = "__index__"
#: Rows converted to Arrow and written at a time, one Parquet row group each (pyarrow's
#: default largest row group): a table is never held a second time as a whole in Arrow (on
#: 4M ratings, saving the analysis took 0.9 GB more than the analysis held).
ROWS_PER_GROUP = 1024 * 1024
_NUMPY = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
)
_MASKED = (
    "boolean",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "UInt8",
    "UInt16",
    "UInt32",
    "UInt64",
    "Float32",
    "Float64",
)
_TEXT = ("str", "string", "object[str]")
_SEQUENCES = ("tuple[str]", "list[str]")
#: Every column kind a table may have: numpy dtypes (no missing values, except NaN in
#: floats), pandas nullable dtypes, text (``str`` is pandas' default string dtype,
#: ``object[str]`` an object column of strings) and cells that are tuples or lists of str.
KINDS: tuple[str, ...] = (*_NUMPY, *_MASKED, *_TEXT, *_SEQUENCES)
#: A ``TableSpec`` kind met by any signed numpy integer kind.
SIGNED_INT = "signed int"
_SIGNED = ("int8", "int16", "int32", "int64")
_STR = pd.Series([], dtype="str").dtype
_STRING = pd.StringDtype()


@dataclass(frozen=True)
class TableSpec:
    """What a stage requires of one table (other columns are allowed unless ``exact``).

    ``columns`` maps each required column to its kind (checked only when the table has
    rows: an empty table may have object columns), or to ``SIGNED_INT`` for any signed
    integer kind (``int8`` to ``int64``: evaluations keep folds and ranks small);
    ``finite`` columns hold no NaN or infinity, ``present`` columns no missing value;
    ``index`` is the required index as ``(name, kind)``, ``None`` for ``0..n-1``.
    """

    columns: dict[str, str]
    finite: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    index: tuple[str, str] | None = None
    exact: bool = False


def _kind(values: pd.Series | pd.Index, where: str) -> str:
    """Return the kind of a column (or index), or refuse it naming it."""
    dtype = values.dtype
    if dtype == _STR or (isinstance(dtype, pd.CategoricalDtype) and dtype.categories.dtype == _STR):
        return "str"  # a categorical of strings is stored as its strings (Evaluation's labels)
    if dtype == _STRING:
        return "string"
    if isinstance(dtype, np.dtype) and dtype.name in _NUMPY:
        return dtype.name
    if str(dtype) in _MASKED:
        return str(dtype)
    if dtype == np.dtype(object):
        cells = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
        for kind, cell_type in (("object[str]", str), ("tuple[str]", tuple), ("list[str]", list)):
            if all(isinstance(v, cell_type) for v in cells) and (
                cell_type is str or all(isinstance(s, str) for v in cells for s in v)
            ):
                return kind
    raise SavedAnalysisError(
        f"{where} has dtype {dtype}, which a saved analysis cannot store exactly: use one of "
        f"{', '.join(KINDS)}."
    )


def _base(kind: str) -> np.dtype:
    """Return the numpy dtype holding a masked kind's values (``Int64`` -> ``int64``)."""
    return np.dtype("bool" if kind == "boolean" else kind.lower())


def _arrow_type(kind: str) -> pa.DataType:
    if kind in _SEQUENCES:
        return pa.list_(pa.string())
    if kind in _TEXT:
        return pa.string()
    if kind in _MASKED:
        return pa.from_numpy_dtype(_base(kind))
    return pa.from_numpy_dtype(np.dtype(kind))


def _to_arrow(values: pd.Series | pd.Index, kind: str) -> pa.Array:
    if kind in _SEQUENCES:
        cells = [None if v is None or isinstance(v, float) else list(v) for v in values]
        return pa.array(cells, type=pa.list_(pa.string()))
    if kind in ("str", "string"):
        # the column's own Arrow data, not a Python str per row first (on 50M held-out
        # predictions that was several GB at once, per id column)
        return arrow_strings(values)
    if kind in _TEXT:
        text = np.asarray(values.to_numpy(dtype=object, na_value=None), dtype=object)
        return pa.array(text, type=pa.string(), from_pandas=True)
    if kind in _MASKED:
        mask = np.asarray(pd.isna(values))
        data = values.to_numpy(dtype=_base(kind), na_value=_base(kind).type(0))
        return pa.array(data, mask=mask, type=_arrow_type(kind))
    return pa.array(np.asarray(values, dtype=np.dtype(kind)), type=_arrow_type(kind))


def _from_arrow(column: pa.ChunkedArray, kind: str) -> Any:
    """Rebuild a column's values (an array, for a column or the index) with their dtype."""
    if kind in _SEQUENCES:
        make = tuple if kind == "tuple[str]" else list
        values: Any = pd.array(
            [None if v is None else make(v) for v in column.to_pylist()], dtype=object
        )
    elif kind in ("str", "string"):
        values = pd.array(column.to_numpy(zero_copy_only=False), dtype=kind)
    elif kind == "object[str]":
        values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    elif kind in _MASKED:
        mask = column.is_null().to_numpy(zero_copy_only=False)
        data = column.fill_null(False if kind == "boolean" else 0).to_numpy(zero_copy_only=False)
        values = pd.array(data, dtype=kind)
        values[mask] = pd.NA
    else:
        values = np.array(column.to_numpy(zero_copy_only=False), dtype=np.dtype(kind))
    return values


def encode_table(frame: pd.DataFrame, where: str) -> tuple[bytes, dict[str, Any]]:
    """Return ``(Parquet bytes, schema record)`` of ``frame`` (``write_table`` to memory)."""
    buffer = io.BytesIO()
    record = write_table(frame, where, buffer)
    return buffer.getvalue(), record


def write_table(frame: pd.DataFrame, where: str, sink: BinaryIO) -> dict[str, Any]:
    """Write ``frame`` to ``sink`` as Parquet; return its schema record.

    ``ROWS_PER_GROUP`` rows are converted and written at a time, so a large table is never
    held again as a whole, neither in Arrow nor as the file's bytes.

    Raises
    ------
    SavedAnalysisError
        A column name that is not a unique string, a multi-level index or columns, or a
        column of a dtype outside ``KINDS`` (the message names it).
    """
    names = list(frame.columns)
    if isinstance(frame.columns, pd.MultiIndex) or not all(isinstance(n, str) for n in names):
        raise SavedAnalysisError(
            f"{where} has column names that are not plain strings ({names[:5]!r}): a saved "
            "analysis stores tables with string column names only."
        )
    if len(set(names)) < len(names) or INDEX_COLUMN in names:
        raise SavedAnalysisError(
            f"{where} has a repeated column name or one called {INDEX_COLUMN!r}: rename it "
            "before saving."
        )
    columns = [[name, _kind(frame[name], f"{where} column {name!r}")] for name in names]
    fields_ = [pa.field(name, _arrow_type(kind)) for name, kind in columns]
    index = frame.index
    default = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
    record_index = None
    if not default:
        if isinstance(index, pd.MultiIndex) or not isinstance(index.name, str | None):
            raise SavedAnalysisError(
                f"{where} has a multi-level or unnamed-by-string index: reset it before saving."
            )
        record_index = [index.name, _kind(index, f"{where} index")]
        fields_.append(pa.field(INDEX_COLUMN, _arrow_type(record_index[1])))
    schema = pa.schema(fields_)
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for start in range(0, len(frame), ROWS_PER_GROUP) or [0]:
            rows = frame.iloc[start : start + ROWS_PER_GROUP]
            arrays = [_to_arrow(rows[name], kind) for name, kind in columns]
            if record_index is not None:
                arrays.append(_to_arrow(rows.index, record_index[1]))
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    return {"rows": len(frame), "columns": columns, "index": record_index}


def check_record(record: object, file: object) -> dict[str, Any]:
    """Check a table's schema record from the manifest; return it."""
    ok = (
        isinstance(record, dict)
        and set(record) == {"rows", "columns", "index"}
        and type(record["rows"]) is int
        and record["rows"] >= 0
        and isinstance(record["columns"], list)
        and all(
            isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and c[1] in KINDS
            for c in record["columns"]
        )
        and (
            record["index"] is None
            or (
                isinstance(record["index"], list)
                and len(record["index"]) == 2
                and isinstance(record["index"][0], str | None)
                and record["index"][1] in KINDS
            )
        )
    )
    if not ok:
        raise refuse(file, "has a table description in manifest.json that is not valid")
    names = [c[0] for c in record["columns"]]
    if len(set(names)) < len(names) or INDEX_COLUMN in names:
        raise refuse(file, "has a repeated column name in its table description")
    return record


def decode_table(
    content: bytes, record: dict[str, Any], file: object, max_bytes: int
) -> pd.DataFrame:
    """Read a table written by ``encode_table``, checking it against its ``record`` first.

    Raises
    ------
    SavedAnalysisError
        Not a Parquet file; a row count, column, type or missing value that does not match
        the record; more than ``max_bytes`` once decompressed.
    """
    expected = [(name, kind) for name, kind in record["columns"]]
    if record["index"] is not None:
        expected.append((INDEX_COLUMN, record["index"][1]))
    schema = pa.schema([pa.field(name, _arrow_type(kind)) for name, kind in expected])
    try:
        parquet = pq.ParquetFile(io.BytesIO(content))
        meta = parquet.metadata
        found = parquet.schema_arrow
        size = sum(
            group.column(c).total_uncompressed_size
            for group in map(meta.row_group, range(meta.num_row_groups))
            for c in range(group.num_columns)
        )
        if meta.num_rows != record["rows"]:
            raise refuse(
                file, f"holds {meta.num_rows:,} rows, where its record says {record['rows']:,}"
            )
        if size > max_bytes:
            raise refuse(
                file,
                f"decompresses to {size:,} bytes, over the limit of {max_bytes:,} "
                "(open_analysis(max_bytes=...))",
                "raise the limit if the analysis is genuine",
            )
        if not found.remove_metadata().equals(schema):
            want = ", ".join(f"{f.name}: {f.type}" for f in schema)
            got = ", ".join(f"{f.name}: {f.type}" for f in found)
            raise refuse(file, f"has the columns ({got}), where ({want}) are recorded")
        table = parquet.read(use_threads=False)
    except SavedAnalysisError:
        raise
    except (pa.ArrowException, OSError, ValueError, IndexError) as e:
        raise refuse(
            file, f"is not a readable Parquet file ({' '.join(str(e).split())[:120]})"
        ) from e
    out: dict[str, Any] = {}
    for (name, kind), column in zip(expected, table.columns, strict=True):
        if kind in _NUMPY and column.null_count:
            raise refuse(
                file, f"has {column.null_count:,} missing value(s) in {name}, of kind {kind}"
            )
        out[name] = _from_arrow(column, kind)
    index: pd.Index = pd.RangeIndex(record["rows"])
    if record["index"] is not None:
        index = pd.Index(out.pop(INDEX_COLUMN), name=record["index"][0], copy=False)
    return pd.DataFrame(out, index=index, copy=False)


def check_spec(frame: pd.DataFrame, spec: TableSpec, file: object) -> None:
    """Refuse a table that lacks what ``spec`` requires (the first problem found)."""
    missing = [c for c in spec.columns if c not in frame.columns]
    if missing:
        raise refuse(file, f"lacks the column(s) {', '.join(missing)}")
    if spec.exact and list(frame.columns) != list(spec.columns):
        raise refuse(
            file, f"has the columns {list(frame.columns)}, where {list(spec.columns)} are expected"
        )
    if len(frame):
        for name, kind in spec.columns.items():
            found = _kind(frame[name], f"{file} column {name!r}")
            if found != kind and not (kind == SIGNED_INT and found in _SIGNED):
                expected = kind if kind != SIGNED_INT else f"one of {', '.join(_SIGNED)}"
                raise refuse(file, f"holds {name} as {found}, where {expected} is expected")
    if spec.index is not None:
        name, kind = spec.index
        if frame.index.name != name or (len(frame) and _kind(frame.index, str(file)) != kind):
            raise refuse(file, f"is not indexed by {name} ({kind})")
    for name in spec.finite:
        bad = int(np.count_nonzero(~np.isfinite(frame[name].to_numpy(dtype=np.float64))))
        if bad:
            raise refuse(file, f"holds {bad:,} NaN or infinite value(s) in {name}")
    for name in spec.present:
        bad = int(frame[name].isna().sum())
        if bad:
            raise refuse(file, f"has {bad:,} missing value(s) in {name}")
