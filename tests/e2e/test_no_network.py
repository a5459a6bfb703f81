"""Nothing leaves the machine: the engine and the dashboard run with outbound connections
blocked (``tests/netguard``), and the page itself requests nothing but its own server."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, SAMPLE_DIR
from tests.e2e.conftest import open_app, run, shot, streamlit_server

NETGUARD = ROOT / "tests" / "netguard"


def guarded(log) -> dict[str, str]:
    return {**os.environ, "NETGUARD_LOG": str(log),
            "PYTHONPATH": os.pathsep.join([str(NETGUARD), str(ROOT)])}  # fmt: skip


def test_the_guard_blocks_and_records_an_outbound_connection(tmp_path):
    log = tmp_path / "net.log"
    probe = "import urllib.request; urllib.request.urlopen('http://example.com', timeout=5)"
    done = subprocess.run([sys.executable, "-c", probe], env=guarded(log), capture_output=True)
    assert done.returncode != 0 and b"netguard" in done.stderr
    assert "example.com" in log.read_text()


def test_engine_cli_pipeline_tries_no_connection(tmp_path):
    log = tmp_path / "net.log"
    command = [sys.executable, "-m", "engine", "audit", str(SAMPLE_DIR), "--out",
               str(tmp_path / "out"), "--format", "html,json,csv", "--bootstrap", "30",
               "--models", "SVD,BaselineOnly"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=guarded(log), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert (tmp_path / "out" / "report.html").exists()
    assert not log.exists(), log.read_text()


def test_dashboard_server_and_browser_stay_on_the_machine(browser, tmp_path):
    log = tmp_path / "net.log"
    with streamlit_server("server_netguard.log", guarded(log)) as (url, _):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        outside: list[str] = []

        def route(route):
            if route.request.url.startswith(url):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", route)
        page = context.new_page()
        for path in ("", "/model", "/user", "/recommendations", "/audit"):
            open_app(page, f"{url}{path}")
        run(page, page.get_by_role("button", name="Run the audit").click, timeout=400_000)
        page.get_by_text("Flagged disparities").wait_for()
        run(page, page.get_by_role("link", name="Report").click)
        shot(page, "07_no_network_report")
        context.close()
    assert outside == []
    assert not log.exists(), log.read_text()
