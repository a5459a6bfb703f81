"""Fixtures for browser tests: a `streamlit run` server on a free port and Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(log_name: str, env: dict[str, str] | None = None):
    """Run ``streamlit run dashboard/app.py`` on a free port; yield ``(url, process)``.

    Waits for ``/_stcore/health``; on exit stops the server and fails on a traceback in
    its log (``ARTIFACTS/log_name``).
    """
    port = free_port()
    log_path = ARTIFACTS / log_name
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"streamlit did not become healthy; see {log_path}")
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
    assert "Traceback" not in log_path.read_text(), f"server log has a traceback: {log_path}"


@pytest.fixture(scope="session")
def server():
    """Start the dashboard; yield its URL; stop it and fail on tracebacks in its log."""
    with streamlit_server("server.log") as (url, _):
        yield url


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(
            f"{CHROMIUM} not found: install Debian's chromium "
            "(apt-get update && apt-get install -y chromium)"
        )
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield browser
        browser.close()


def wait_ready(page, timeout: float = 180_000) -> None:
    """Wait until the script has finished running (twice, to outlast reruns)."""
    page.wait_for_timeout(300)
    page.wait_for_selector(READY, timeout=timeout)
    page.wait_for_timeout(500)
    page.wait_for_selector(READY, timeout=timeout)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


#: Records every change of the app's script state with the page's clock (``performance.now``).
OBSERVE_SCRIPT_STATE = """() => { window.__states = [];
  const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => window.__states.push(
      [app.getAttribute('data-test-script-state'), performance.now()]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']}); }"""
_RERUN_DONE = """(t0) => { let ran = false;
  for (const [state, t] of window.__states) { if (t < t0) continue;
    if (state === 'running') ran = true; if (ran && state === 'notRunning') return true; }
  return false; }"""
_PAINTED = """() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
  () => done(performance.now()))))"""


def timed_rerun(page, action, timeout: float = 60_000) -> float:
    """Seconds from ``action()`` to the rerun it starts being finished and painted.

    Needs ``page.evaluate(OBSERVE_SCRIPT_STATE)`` once after the page loaded. The clock is
    the page's own; "painted" is two animation frames after the script state returned to
    ``notRunning``, so the new elements are on screen.
    """
    start = page.evaluate("performance.now()")
    action()
    page.wait_for_function(_RERUN_DONE, arg=start, timeout=timeout)
    return (page.evaluate(_PAINTED) - start) / 1000


def type_into_grid_cell(page, grid, row: int, right: int, text: str) -> None:
    """Select a cell of a ``st.data_editor`` grid and type ``text`` into it (not committed).

    Glide's grid is a canvas: click the first data column of ``row`` (0-based; rows and the
    header are 35 px, the row-marker column of a dynamic editor ~36 px), move ``right``
    columns with the arrow key, then type and wait for the overlay editor to hold the text.
    Press Enter to commit.
    """
    box = None
    for _ in range(50):  # wait until the grid stops moving (expanders animate open)
        page.wait_for_timeout(100)
        previous, box = box, grid.bounding_box()
        if box and previous == box:
            break
    page.mouse.click(box["x"] + 60, box["y"] + 35 + 17 + 35 * row)
    page.wait_for_timeout(300)  # the grid takes focus and selects the cell
    for _ in range(right):
        page.keyboard.press("ArrowRight")
    page.keyboard.type(text)
    # Typing opens the cell's overlay editor; Enter only commits once it has focus.
    page.wait_for_function(
        "document.activeElement && ['INPUT', 'TEXTAREA'].includes(document.activeElement.tagName)"
        f" && document.activeElement.value === {text!r}",
        timeout=10_000,
    )
