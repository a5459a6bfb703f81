"""Keep the process's memory low: give freed heap memory back, join tables column by column.

CPython and numpy allocate through the C library's ``malloc``. glibc keeps memory freed
in its heaps (and, after large blocks are freed, raises its threshold for serving blocks
from fresh ``mmap`` calls, so later tables of up to 32 MB also come from the heaps) and does
not return it to the system until the top of a heap is free. After a stage that built and
dropped large intermediate tables the resident set then stays well above what is in use:
measured on 1M ratings with the Spark engine, 829 MiB after the evaluation and 660 MiB
after ``malloc_trim(0)``; 938 and 714 MiB after the audit. That is what the kernel's
out-of-memory killer counts. ``release_free_memory`` calls ``malloc_trim(0)``, which
returns every free page of every heap (the remedy Dask documents for its workers'
"unmanaged memory"); elsewhere than glibc it does nothing. It first asks Arrow's memory
pool (pandas' ``str`` columns live there) to release what it keeps unused.

``tune_allocator`` fixes glibc's mmap threshold, so large freed blocks go back at once
(the dashboard's server and the command line both call it; ``RECSYS_ALLOCATOR_TUNING=0``
leaves glibc's defaults).

``ColumnParts`` joins the row blocks of one table (the evaluation's splits) with a peak of
the table plus one column, where ``pd.concat`` holds every block and the whole result.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Iterable, Mapping

import pandas as pd
import pyarrow


def _libc() -> ctypes.CDLL | None:
    """Return the C library, or ``None`` where it cannot be found or opened."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name is not None else None
    except OSError:
        return None


@functools.cache
def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """Return glibc's ``malloc_trim``, or ``None`` where the C library has none (macOS, musl)."""
    return getattr(_libc(), "malloc_trim", None)


#: Environment variable that switches the allocator tuning off (``0``, ``false``, ``no``, ``off``).
ALLOCATOR_TUNING_ENV = "RECSYS_ALLOCATOR_TUNING"
_OFF = frozenset({"0", "false", "no", "off"})
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters (malloc.h)
MMAP_THRESHOLD_BYTES = 128 * 1024
ARENA_MAX = 4


def allocator_tuning_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``tune_allocator`` may tune glibc (``RECSYS_ALLOCATOR_TUNING``).

    On unless the variable is ``0``, ``false``, ``no`` or ``off`` (any case, spaces
    ignored); ``environ`` defaults to ``os.environ``.
    """
    value = (os.environ if environ is None else environ).get(ALLOCATOR_TUNING_ENV, "1")
    return value.strip().lower() not in _OFF


def tune_allocator() -> bool:
    """Make glibc return large blocks to the OS when they are freed; return whether it did.

    glibc raises its mmap threshold dynamically (up to 32 MiB) after large blocks are
    freed, so later numpy arrays and Arrow buffers land in its heaps, where freed space
    mostly stays resident until ``release_free_memory``; a fixed threshold
    (``MMAP_THRESHOLD_BYTES``) keeps larger blocks in their own mappings, which ``free``
    unmaps. Fewer arenas (``ARENA_MAX``) also limit fragmentation across threads. Measured
    on the command line's ``run`` of 4M ratings with the Spark engine: see the README.
    Skipped when ``RECSYS_ALLOCATOR_TUNING=0``; no effect where the C library is not glibc.
    """
    mallopt = getattr(_libc(), "mallopt", None)  # glibc's
    if not allocator_tuning_enabled() or mallopt is None:
        return False
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    mallopt(_M_ARENA_MAX, ARENA_MAX)
    return True


def release_free_memory() -> bool:
    """Return freed memory to the operating system; whether glibc released any.

    Arrow's pool releases its unused memory, then glibc its free heap pages.
    """
    pyarrow.default_memory_pool().release_unused()
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


class ColumnParts:
    """Row blocks of one table, held column by column and joined with a low peak.

    ``pd.concat`` of row blocks holds every block and the whole result at once, twice the
    table (on 25M ratings, the evaluation's 50M held-out predictions: about 2.4 GB more).
    ``append`` copies each column of a block into its own array, so the block's
    consolidated storage is freed once the caller drops it; ``concat`` builds the table
    one column at a time and drops that column's blocks as soon as it is built, so the peak
    is the table plus one column's blocks. The result equals
    ``pd.concat(blocks, ignore_index=True)`` (the same column-wise concatenation, so the
    same dtypes: a categorical stays one where every block has the same categories).
    Every block must have the same columns, in the same order.
    """

    def __init__(self) -> None:
        self._columns: dict[str, list[pd.Series]] = {}

    def append(self, frame: pd.DataFrame) -> None:
        """Add ``frame``'s rows (its columns copied; ``frame`` itself is not kept).

        Raises
        ------
        ValueError
            ``frame``'s columns differ from those of the blocks already added.
        """
        if self._columns and list(frame.columns) != list(self._columns):
            raise ValueError(
                f"columns {list(frame.columns)} differ from the table's {list(self._columns)}"
            )
        for name in frame.columns:
            self._columns.setdefault(name, []).append(frame[name].copy(deep=True))

    def concat(self) -> pd.DataFrame:
        """Return the joined table (index ``0..n-1``) and empty this holder.

        With no block appended: an empty frame without columns.
        """
        return ColumnParts.joined([self])

    @staticmethod
    def joined(holders: Iterable[ColumnParts]) -> pd.DataFrame:
        """Return the blocks of ``holders``, one after the other, as one table; empty them.

        As ``concat`` of one holder given every block in turn; holders without blocks
        are skipped (so is their lack of columns).
        """
        holders = [h for h in holders if h._columns]
        columns = list(holders[0]._columns) if holders else []
        if any(list(h._columns) != columns for h in holders):
            raise ValueError("the holders' tables have different columns")
        built: dict[str, pd.Series] = {}
        for name in columns:
            blocks = [block for h in holders for block in h._columns.pop(name)]
            built[name] = pd.concat(blocks, ignore_index=True)
            del blocks  # this column's blocks are freed before the next one is built
        return pd.DataFrame(built, copy=False)
