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

The allocator tuning changes the whole server process. Set the environment variable
``RECSYS_ALLOCATOR_TUNING=0`` (or ``false``, ``no``, ``off``) before ``streamlit run`` to
leave glibc's defaults alone, e.g. to compare memory with and without it, or where
another component of the process tunes ``mallopt`` itself; the janitor still releases
closed sessions' stores and trims the heap.

Streamlit internals used (``tests/test_janitor.py`` pins each, so an upgrade that changes
one fails there): ``Runtime.exists()``, ``Runtime.instance().is_active_session(id)``
(true only while the session's websocket is connected), ``get_script_run_ctx()`` and its
``session_id``, and the ``server.disconnectedSessionTTL`` option.
"""

from __future__ import annotations

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

from engine.memory import (
    ALLOCATOR_TUNING_ENV,
    allocator_tuning_enabled,
    release_free_memory,
    tune_allocator,
)

_LOGGER = logging.getLogger(__name__)


class Releasable(Protocol):
    """A per-session store that can drop everything it holds."""

    def release(self) -> None:
        """Drop every dataset and result."""


@dataclass
class _Entry:
    store: Releasable
    inactive_since: float | None = None


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
    """Collect garbage, then hand freed memory back to the OS (``release_free_memory``)."""
    gc.collect()
    release_free_memory()


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


def _configure_allocator() -> bool:
    """Tune glibc for this server process (``engine.memory.tune_allocator``); whether it did."""
    if not allocator_tuning_enabled():
        _LOGGER.info("session janitor: allocator tuning off (%s)", ALLOCATOR_TUNING_ENV)
        return False
    return tune_allocator()


def _start() -> None:
    global _THREAD
    with _LOCK:
        if _THREAD is None:
            _configure_allocator()
            _THREAD = threading.Thread(target=_loop, name="session-janitor", daemon=True)
            _THREAD.start()
