"""The janitor releases a closed session's store once it can no longer reconnect."""

from __future__ import annotations

from dashboard import janitor
from dashboard.state import SessionStore


def test_sweep_releases_only_sessions_inactive_for_longer_than_the_ttl(monkeypatch):
    stores = {sid: SessionStore(data=object(), results={("k",): 1}) for sid in "abc"}
    monkeypatch.setattr(janitor, "_TRACKED", {s: janitor._Entry(st) for s, st in stores.items()})
    active = {"a"}
    assert janitor.sweep(100.0, active.__contains__, ttl=5) == 0  # b, c stamped inactive
    active.add("c")  # c reconnects: its stamp is cleared
    assert janitor.sweep(104.0, active.__contains__, ttl=5) == 0  # b only 4 s inactive
    active.discard("c")
    assert janitor.sweep(106.0, active.__contains__, ttl=5) == 1  # b released, c restamped
    assert stores["b"].data is None and stores["b"].results == {}
    assert stores["a"].results and stores["c"].results
    assert janitor.tracked_sessions() == 2
    assert janitor.sweep(112.0, active.__contains__, ttl=5) == 1  # now c
    assert stores["c"].results == {} and janitor.tracked_sessions() == 1
