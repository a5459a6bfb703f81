"""The janitor releases a closed session's store once it can no longer reconnect.

It rests on Streamlit internals; the ``test_streamlit_*`` tests pin each one it touches,
so an upgrade that renames or changes one fails here rather than silently leaking memory.
"""

from __future__ import annotations

import dataclasses
import inspect
from unittest import mock

import streamlit as st
from streamlit import config
from streamlit.runtime import Runtime
from streamlit.runtime.memory_session_storage import MemorySessionStorage
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.runtime.scriptrunner_utils.script_run_context import ScriptRunContext
from streamlit.runtime.session_manager import ActiveSessionInfo
from streamlit.runtime.websocket_session_manager import WebsocketSessionManager

from dashboard import janitor


class Store:
    """A stand-in for a session's store: counts how often it was released."""

    def __init__(self) -> None:
        self.released = 0

    def release(self) -> None:
        self.released += 1


def test_sweep_releases_only_sessions_inactive_for_longer_than_the_ttl(monkeypatch):
    stores = {sid: Store() for sid in "abc"}
    monkeypatch.setattr(janitor, "_TRACKED", {s: janitor._Entry(st) for s, st in stores.items()})
    active = {"a"}
    assert janitor.sweep(100.0, active.__contains__, ttl=5) == 0  # b, c stamped inactive
    active.add("c")  # c reconnects: its stamp is cleared
    assert janitor.sweep(104.0, active.__contains__, ttl=5) == 0  # b only 4 s inactive
    active.discard("c")
    assert janitor.sweep(106.0, active.__contains__, ttl=5) == 1  # b released, c restamped
    assert [stores[s].released for s in "abc"] == [0, 1, 0]
    assert janitor.tracked_sessions() == 2
    assert janitor.sweep(112.0, active.__contains__, ttl=5) == 1  # now c
    assert [stores[s].released for s in "abc"] == [0, 1, 1] and janitor.tracked_sessions() == 1


def test_track_outside_a_script_run_tracks_nothing(monkeypatch):
    monkeypatch.setattr(janitor, "_TRACKED", {})
    janitor.track(Store())
    assert janitor.tracked_sessions() == 0


# --- Streamlit internals the janitor relies on -------------------------------------------


def test_streamlit_runtime_singleton_accessors_exist():
    for name in ("exists", "instance"):
        attribute = inspect.getattr_static(Runtime, name)
        assert isinstance(attribute, classmethod), name
        assert list(inspect.signature(getattr(Runtime, name)).parameters) == [], name
    assert isinstance(Runtime.exists(), bool)


def test_streamlit_runtime_is_active_session_asks_the_session_manager():
    assert list(inspect.signature(Runtime.is_active_session).parameters) == [
        "self",
        "session_id",
    ]
    runtime = Runtime.__new__(Runtime)  # no server: only the delegation is checked
    runtime._session_mgr = mock.Mock(**{"is_active_session.side_effect": {"live"}.__contains__})
    assert runtime.is_active_session("live") is True
    assert runtime.is_active_session("gone") is False


def test_streamlit_a_disconnected_session_is_inactive_but_kept_for_reconnecting():
    """The janitor's premise: after a disconnect the session is no longer active, yet it
    stays stored (with its state) for the TTL instead of being shut down."""
    storage = MemorySessionStorage(ttl_seconds=5)
    manager = WebsocketSessionManager(
        session_storage=storage,
        uploaded_file_manager=mock.Mock(),
        script_cache=mock.Mock(),
        message_enqueued_callback=None,
    )
    session = mock.Mock(id="s1", **{"is_resumable.return_value": True})
    manager._active_session_info_by_id["s1"] = ActiveSessionInfo(mock.Mock(), session, 1)
    assert manager.is_active_session("s1")
    manager.disconnect_session("s1")
    assert not manager.is_active_session("s1")
    assert storage.get("s1").session is session  # kept for a reconnect
    session.shutdown.assert_not_called()


def test_streamlit_script_run_context_has_a_session_id_and_is_none_outside_a_run():
    assert get_script_run_ctx() is None
    assert "suppress_warning" in inspect.signature(get_script_run_ctx).parameters
    assert dataclasses.is_dataclass(ScriptRunContext)
    fields = {f.name: f.type for f in dataclasses.fields(ScriptRunContext)}
    assert fields["session_id"] in (str, "str")


def test_streamlit_disconnected_session_ttl_option_is_an_int_defaulting_to_120_s():
    option = config.get_config_options()["server.disconnectedSessionTTL"]
    assert option.type is int and option.default_val == 120
    assert isinstance(st.get_option("server.disconnectedSessionTTL"), int)


# --- allocator tuning -----------------------------------------------------------------


def test_the_server_tunes_the_allocator_only_when_enabled(monkeypatch):
    tune = mock.Mock(return_value=True)
    monkeypatch.setattr(janitor, "tune_allocator", tune)
    monkeypatch.setenv(janitor.ALLOCATOR_TUNING_ENV, "0")
    assert janitor._configure_allocator() is False
    tune.assert_not_called()
    monkeypatch.delenv(janitor.ALLOCATOR_TUNING_ENV)
    assert janitor._configure_allocator() is True
    tune.assert_called_once_with()
