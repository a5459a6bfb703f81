"""The dashboard's session state: one analysis per session, kept across a refresh.

Pages run in Streamlit's AppTest; a "refresh" is a new AppTest (a new browser session)
opened with the first session's URL query parameters.
"""

from __future__ import annotations

import os
import time

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import sessions
from engine.text import literal_markdown
from tests.conftest import ROOT

APP = str(ROOT / "dashboard" / "app.py")
CSV = "who,what,stars\n" + "\n".join(
    f"p{u},m{i},{(u * 7 + i) % 5 + 1}" for u in range(12) for i in range(9) if (u + i) % 4
)


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """Session work goes to a fresh folder."""
    monkeypatch.setenv("RECSYS_SESSION_DIR", str(tmp_path / "sessions"))
    return tmp_path / "sessions"


def new_session(token: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    if token is not None:
        at.query_params["session"] = token
    return at.run()


def users(at: AppTest) -> str:
    return {m.label: m.value for m in at.metric}["Users"]


def upload(at: AppTest) -> AppTest:
    at.file_uploader(key="upload_ratings").set_value(("mine.csv", CSV.encode(), "text/csv"))
    at.run()
    at.button(key="load_upload").click().run()
    assert not at.exception, at.exception
    return at


def test_the_sample_keeps_nothing_and_gets_no_token(kept):
    at = new_session()
    assert "session" not in at.query_params
    assert not kept.exists() or not any(kept.iterdir())
    assert any("Nothing of yours is kept" in c.value for c in at.sidebar.caption)


def test_visiting_every_page_with_default_settings_keeps_nothing(kept):
    from dashboard.routes import PAGES

    at = new_session()
    for route in PAGES:
        at.switch_page(route.path).run()
        assert not at.exception, at.exception
    assert "session" not in at.query_params  # default settings: the shared sample analysis
    assert not kept.exists() or not any(kept.iterdir())


def test_an_upload_is_kept_under_a_token_and_a_refresh_restores_it(kept):
    first = upload(new_session())
    assert users(first) == "12"
    token = first.query_params["session"]
    assert sessions.is_token(token)
    folder = sessions.folder_of(token, sessions.SessionLimits(kept))
    assert (folder / "manifest.json").is_file()
    assert token not in {p.name for p in kept.iterdir()}  # the folder is named by a hash
    again = new_session(token)
    assert users(again) == "12"
    assert not any("Synthetic sample data" in i.value for i in again.info)


def test_another_session_never_reads_the_work(kept):
    token = upload(new_session()).query_params["session"]
    stranger = new_session()
    assert users(stranger) == "1,000"  # the sample
    guess = new_session(sessions.new_token())
    assert users(guess) == "1,000"
    assert any("No work is saved for this link" in w.value for w in guess.warning)
    crafted = new_session("../../" + token[:16])
    assert users(crafted) == "1,000"
    assert any("not valid" in w.value for w in crafted.warning)
    assert "session" not in crafted.query_params


def test_forget_my_data_deletes_the_work_on_the_server(kept):
    first = upload(new_session())
    token = first.query_params["session"]
    first.sidebar.button(key="forget_my_data").click().run()
    assert not sessions.folder_of(token, sessions.SessionLimits(kept)).exists()
    assert users(first) == "1,000"
    assert any("deleted from this server" in s.value for s in first.success)
    assert users(new_session(token)) == "1,000"


def test_work_over_the_size_cap_is_not_kept_and_the_page_says_so(kept, monkeypatch):
    monkeypatch.setenv("RECSYS_SESSION_MAX_MB", "0.001")
    at = upload(new_session())
    said = literal_markdown("more than the 0.001 MB kept per session")  # shown literally
    assert any(said in w.value for w in at.warning)
    assert "session" not in at.query_params  # the URL promises no restore
    assert not any((kept / d / "manifest.json").exists() for d in os.listdir(kept))


def test_work_older_than_the_retention_is_deleted(kept):
    token = upload(new_session()).query_params["session"]
    limits = sessions.SessionLimits(kept, retention_hours=24)
    assert sessions.forget_expired(limits, now=time.time() + 23 * 3600) == 0
    assert sessions.forget_expired(limits, now=time.time() + 25 * 3600) == 1
    assert sessions.restore_work(token, limits) is None


def test_limits_come_from_the_environment_and_bad_values_fall_back(monkeypatch, tmp_path):
    monkeypatch.setenv("RECSYS_SESSION_DIR", str(tmp_path))
    monkeypatch.setenv("RECSYS_SESSION_RETENTION_HOURS", "2.5")
    monkeypatch.setenv("RECSYS_SESSION_MAX_MB", "-3")
    limits = sessions.SessionLimits.from_environment()
    assert (limits.folder, limits.retention_hours, limits.max_mb) == (tmp_path, 2.5, 500.0)
    with pytest.raises(ValueError):
        sessions.folder_of("../../etc/passwd", limits)


def _settings_script():
    from dataclasses import replace

    import streamlit as st

    from dashboard import state
    from engine import AuditConfig, ModelConfig
    from engine.analysis import AnalysisSettings

    small = AnalysisSettings(model=ModelConfig(n_factors=3, n_epochs=3))
    state.set_settings(small)
    model = state.trained_model()
    state.set_settings(replace(small, audit=AuditConfig(min_group_size=7)))
    st.write(f"kept model: {state.trained_model() is model}")
    state.set_settings(replace(small, model=ModelConfig(n_factors=4, n_epochs=3)))
    st.write(f"computed after a model change: {state.analysis().computed()}")


def test_new_settings_keep_the_stages_they_do_not_touch(kept):
    at = AppTest.from_function(_settings_script, default_timeout=180).run()
    assert not at.exception, at.exception
    shown = [m.value for m in at.markdown]
    assert shown == ["kept model: True", "computed after a model change: []"]
    assert at.query_params["session"]  # changed settings on the sample are kept too


def _report_script(path):
    import streamlit as st

    from dashboard import state
    from engine import AuditConfig, load_dataset
    from engine.report import render

    state.set_data(load_dataset(path))
    state.audit_settings(AuditConfig())  # what the Bias audit page sends with every attribute
    state.audit()
    st.text(render(state.report(None), ("json",))["report.json"].decode())


def test_the_dashboard_and_the_cli_write_the_same_report(kept, tmp_path):
    import json

    from engine.cli import main
    from tests.conftest import synth_ratings

    ratings = tmp_path / "ratings.csv"
    synth_ratings(80, 50, 2400, seed=5).to_csv(ratings, index=False)
    at = AppTest.from_function(_report_script, args=(str(ratings),), default_timeout=300).run()
    assert not at.exception, at.exception
    dashboard = json.loads(at.text[0].value)
    assert main(["audit", str(ratings), "--out", str(tmp_path / "cli"), "--format", "json"]) == 0
    cli = json.loads((tmp_path / "cli" / "report.json").read_text())
    for report in (dashboard, cli):
        assert report.pop("created") == report["provenance"].pop("created")
    assert dashboard == cli
    assert dashboard["metrics"]  # a real audit, not two empty reports


@pytest.mark.parametrize(("value", "threads"), [(None, 1), ("3", 3), ("0", 1), ("many", 1)])
def test_blas_threads_come_from_the_environment(monkeypatch, value, threads):
    from engine.checks import blas_threads

    if value is None:
        monkeypatch.delenv("RECSYS_BLAS_THREADS", raising=False)
    else:
        monkeypatch.setenv("RECSYS_BLAS_THREADS", value)
    assert blas_threads() == threads
