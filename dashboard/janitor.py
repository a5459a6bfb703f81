"""Free what abandoned browser sessions hold, so a shared server's memory comes back.

Streamlit 1.67 keeps a disconnected session for ``server.disconnectedSessionTTL`` seconds
(default 120) so a tab can reconnect; after that it drops the session from a TTL cache
without shutting it down, and only when that cache is next written to, so its
``st.session_state`` can stay in memory indefinitely (streamlit#12506). Every session's
``SessionStore`` is therefore also tracked here; a daemon thread releases a store once its
session has been inactive for longer than the TTL (it could no longer reconnect), then
collects garbage and returns freed heap pages to the operating system. Two habits make
that release real: every page lays itself out inside a function (a page's module
namespace from its last run is otherwise kept with the session, holding its data and
model), and glibc is told to keep large blocks in their own mappings (see
``_configure_allocator``). Measured with five concurrent sessions in
``tests/e2e/test_concurrency.py``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

_LOGGER = logging.getLogger(__name__)


class Releasable(Protocol):
    """A per-session store that can drop everything it holds."""

    def release(self) -> None:
        """Drop every dataset and result."""


@dataclass
class _Entry:
    store: Releasable
    inactive_since: float | None = None


_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8  # mallopt parameters (malloc.h)
_MMAP_THRESHOLD_BYTES = 128 * 1024
_ARENA_MAX = 4
_TRACKED: dict[str, _Entry] = {}
_LOCK = threading.Lock()
_THREAD: threading.Thread | None = None


def track(store: Releasable) -> None:
    """Register the running session's store (called on every script run)."""
    ctx = get_script_run_ctx()
    if ctx is None:  # bare mode (tests calling pages directly)
        return
    with _LOCK:
        _TRACKED[ctx.session_id] = _Entry(store)
    _start()


def sweep(now: float, is_active: Callable[[str], bool], ttl: float) -> int:
    """Release the stores of sessions inactive for more than ``ttl`` seconds; return how many.

    A session seen inactive for the first time is stamped with ``now``; one that is active
    again loses its stamp (it reconnected).
    """
    released = 0
    with _LOCK:
        for session_id, entry in list(_TRACKED.items()):
            if is_active(session_id):
                entry.inactive_since = None
            elif entry.inactive_since is None:
                entry.inactive_since = now
            elif now - entry.inactive_since > ttl:
                entry.store.release()
                del _TRACKED[session_id]
                released += 1
    return released


def tracked_sessions() -> int:
    """Return how many sessions' stores are tracked (for tests and diagnostics)."""
    with _LOCK:
        return len(_TRACKED)


def return_memory() -> None:
    """Collect garbage, then hand freed memory back to the OS (glibc, Arrow's pool)."""
    gc.collect()
    with contextlib.suppress(ImportError, AttributeError):
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _loop() -> None:
    ttl = float(st.get_option("server.disconnectedSessionTTL"))
    interval = max(1.0, min(10.0, ttl / 2))
    while True:
        time.sleep(interval)
        try:
            if not Runtime.exists():
                continue
            if sweep(time.monotonic(), Runtime.instance().is_active_session, ttl):
                return_memory()
        except Exception:  # the janitor must outlive any one failure
            _LOGGER.exception("session janitor: sweep failed")


def _configure_allocator() -> None:
    """Make glibc return large blocks to the OS when they are freed.

    glibc raises its mmap threshold dynamically (up to 32 MiB) after large blocks are
    freed, so later numpy arrays and Arrow buffers land in its heaps, where freed space
    mostly stays resident; a fixed threshold keeps blocks over 128 KiB in their own
    mappings, which ``free`` unmaps. Fewer arenas also limit fragmentation across the
    script threads. No effect where the C library is not glibc.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
        libc.mallopt(_M_ARENA_MAX, _ARENA_MAX)


def _start() -> None:
    global _THREAD
    with _LOCK:
        if _THREAD is None:
            _configure_allocator()
            _THREAD = threading.Thread(target=_loop, name="session-janitor", daemon=True)
            _THREAD.start()
