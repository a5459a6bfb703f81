"""Fixtures for browser tests: a `streamlit run` server on a free port and Debian's Chromium.

Tests wait for conditions, never for a fixed time. ``open_app`` loads a page and waits for
its first script run; ``run(page, action)`` does an action and waits for the script run it
caused to end (``put_file`` for an upload, which can cause two), read from the app's
websocket (the server's ``script_finished`` message, not a run cut short by
``st.rerun()``), because the page's own "running" state can skip a
short run entirely (React batches the two updates); Playwright's ``expect`` /
``wait_for`` wait for what a run shows; ``wait_until`` polls a condition outside the
browser (server health, memory).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from google.protobuf.message import DecodeError
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "e2e" / "artifacts"
#: The Data page's expander that holds the rating file uploaders and the Load button.
UPLOAD_EXPANDER = "Load your own rating data"
#: The file input of that expander's Ratings uploader (key ``upload_ratings``). Named by its
#: key: the first file input on the page was once the User attributes uploader's (a local
#: suite run put the ratings there; the preview and its Load button never came).
RATINGS_DROPZONE = ".st-key-upload_ratings [data-testid='stFileUploaderDropzoneInput']"
READY = "[data-testid='stApp'][data-test-script-state='notRunning']"
BROWSER_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def wait_until(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Return ``condition()``'s first truthy value, polling every ``interval`` seconds.

    Fails the test after ``timeout`` seconds, naming ``what`` was awaited.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)  # the poll interval of a condition, not a fixed wait
    return value


def _healthy(url: str) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok"
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(log_name: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
    """Run ``streamlit run dashboard/app.py [-- args]`` on a free port; yield ``(url, process)``.

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
         "--browser.gatherUsageStats", "false", *(("--", *args) if args else ())],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(url), 60, f"streamlit's health check (log: {log_path})")
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


#: How long ``expect`` waits for what a finished run shows (Playwright's default is 5 s).
EXPECT_TIMEOUT_MS = 30_000


@pytest.fixture(scope="session")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    sync_api.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
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
    """Wait until the script is not running: after ``page.goto``, its first run has ended.

    After an action, use ``run`` instead: the app is still "not running" in the moment
    before the rerun the action asked for starts.
    """
    page.wait_for_selector(READY, timeout=timeout)


#: The websocket of each page opened by ``open_app`` / ``reload_app`` (read by ``run``).
_SOCKETS: dict[object, object] = {}


def _is_app_socket(ws) -> bool:
    return "_stcore/stream" in ws.url


def _parsed(payload: str | bytes, message: T) -> T | None:
    """``payload`` (a websocket frame) parsed into ``message``; ``None`` if it is not one."""
    if isinstance(payload, str):
        return None
    try:
        message.ParseFromString(payload)
    except DecodeError:
        return None
    return message


def _run_ended(payload: str | bytes) -> bool:
    """Whether a frame from the server ends a script run (not one cut short for a rerun)."""
    message = _parsed(payload, ForwardMsg())
    return (
        message is not None
        and message.WhichOneof("type") == "script_finished"
        and message.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN
    )


def _run_started(payload: str | bytes) -> bool:
    """Whether a frame from the server starts a script run (its ``new_session`` message)."""
    message = _parsed(payload, ForwardMsg())
    return message is not None and message.WhichOneof("type") == "new_session"


def _asks_run_with_file(payload: str | bytes, name: str) -> bool:
    """Whether a frame to the server asks for a run with a file ``name`` in an uploader."""
    message = _parsed(payload, BackMsg())
    if message is None or message.WhichOneof("type") != "rerun_script":
        return False
    return any(
        info.name == name
        for widget in message.rerun_script.widget_states.widgets
        if widget.WhichOneof("value") == "file_uploader_state_value"
        for info in widget.file_uploader_state_value.uploaded_file_info
    )


def open_app(page, url: str, timeout: float = 180_000):
    """Go to ``url``, keep the app's websocket for ``run``, wait for the first run; return page."""
    with page.expect_websocket(_is_app_socket, timeout=timeout) as socket_info:
        page.goto(url)
    _SOCKETS[page] = socket_info.value
    wait_ready(page, timeout)
    return page


def reload_app(page, timeout: float = 180_000) -> None:
    """Reload the page (a new websocket, a new browser session) and wait for its first run."""
    with page.expect_websocket(_is_app_socket, timeout=timeout) as socket_info:
        page.reload()
    _SOCKETS[page] = socket_info.value
    wait_ready(page, timeout)


@contextlib.contextmanager
def runs_of(pages, timeout: float = 180_000):
    """Wait, on leaving the block, until each page's app ended the script run the block caused.

    For actions on several pages at once; ``run`` is the one-page form. Pages must have
    been opened with ``open_app``. On leaving, each page is also painted after its run.
    """
    missing = [page for page in pages if page not in _SOCKETS]
    assert not missing, "open pages with open_app() so their script runs can be followed"
    with contextlib.ExitStack() as waits:
        for page in pages:
            waits.enter_context(
                _SOCKETS[page].expect_event("framereceived", predicate=_run_ended, timeout=timeout)
            )
        yield
    for page in pages:
        wait_ready(page, timeout)
        page.evaluate(_PAINTED)


def run(page, action: Callable[[], object], timeout: float = 180_000) -> None:
    """Do ``action()`` and wait until the script run it caused has ended and been painted.

    A run that calls ``st.rerun()`` counts once it has run again to its end.
    """
    with runs_of([page], timeout):
        action()


def put_file(page, dropzone, file: dict, timeout: float = 180_000) -> None:
    """Put ``file`` into an uploader's ``dropzone``; wait until a run that has it has ended.

    Replacing an uploader's file asks for two runs: one with the uploader emptied, then,
    once the upload has ended, one with the new file. ``run`` would stop waiting after the
    first when it ends before the upload does (a busy machine), and the page would not show
    the new file yet. This waits for the end of a run started after the browser asked for
    a run with the file.
    """
    socket = _SOCKETS[page]
    asked = started = False

    def on_sent(payload: str | bytes) -> None:
        nonlocal asked
        asked = asked or _asks_run_with_file(payload, file["name"])

    def ended(payload: str | bytes) -> bool:
        nonlocal started
        started = started or (asked and _run_started(payload))
        return started and _run_ended(payload)

    socket.on("framesent", on_sent)
    try:
        with socket.expect_event("framereceived", predicate=ended, timeout=timeout):
            dropzone.set_input_files(file)
    finally:
        socket.remove_listener("framesent", on_sent)
    wait_ready(page, timeout)
    page.evaluate(_PAINTED)


def open_expander(page, label: str, timeout: float = EXPECT_TIMEOUT_MS) -> None:
    """Open the expander labelled ``label`` unless it is open, and wait until it is.

    Clicking the label toggles the expander, so this clicks only when it is closed: it can
    be called again before using what the expander holds, and a failure says "closed"
    rather than "not found".
    """
    summary = page.locator("summary", has_text=label)
    expander = page.locator("[data-testid='stExpander']").filter(has=summary).first
    if expander.locator("details").get_attribute("open", timeout=timeout) is None:
        expander.locator("summary").click(timeout=timeout)
    expander.locator("details[open]").wait_for(timeout=timeout)


def load_ratings_file(page, file: dict, timeout: float = 400_000) -> None:
    """Upload ``file`` (``set_input_files``'s dict) as the ratings on the Data page and load it.

    Opens the upload expander, puts the file into the Ratings uploader (``put_file`` waits for
    the run that draws its preview and the Load button), then clicks Load and waits up to
    ``timeout`` ms for that run (training can follow on a busy machine).
    """
    open_expander(page, UPLOAD_EXPANDER)
    put_file(page, page.locator(RATINGS_DROPZONE), file)
    open_expander(page, UPLOAD_EXPANDER)
    load = page.get_by_role("button", name="Load", exact=True)
    load.wait_for(state="visible", timeout=EXPECT_TIMEOUT_MS)
    run(page, load.click, timeout=timeout)


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


#: Records every change of the app's script state with the page's clock (``performance.now``).
#: Idempotent: a second call keeps the first observer and its record.
OBSERVE_SCRIPT_STATE = """() => { if (window.__states) return; window.__states = [];
  const app = document.querySelector("[data-testid='stApp']");
  new MutationObserver(() => window.__states.push(
      [app.getAttribute('data-test-script-state'), performance.now()]))
    .observe(app, {attributes: true, attributeFilter: ['data-test-script-state']}); }"""
RERUN_DONE = """(t0) => { let ran = false;
  for (const [state, t] of window.__states) { if (t < t0) continue;
    if (state === 'running') ran = true; if (ran && state === 'notRunning') return true; }
  return false; }"""
_PAINTED = """() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(
  () => done(performance.now()))))"""


def timed_rerun(page, action: Callable[[], object], timeout: float = 180_000) -> float:
    """Do ``action()``, wait for the rerun it starts to finish and be painted; return seconds.

    For timing (``tests/benchmarks``): the clock is the page's own; "painted" is two
    animation frames after the script state returned to ``notRunning``, so the new
    elements are on screen. Installs the script-state observer (``OBSERVE_SCRIPT_STATE``)
    if the page has none. It sees only runs long enough for the page to show "running"
    (React can batch a very short run away) and ends at the first run of a script that
    calls ``st.rerun()``; tests wait with ``run`` instead.
    """
    page.evaluate(OBSERVE_SCRIPT_STATE)
    start = page.evaluate("performance.now()")
    action()
    page.wait_for_function(RERUN_DONE, arg=start, timeout=timeout)
    return (page.evaluate(_PAINTED) - start) / 1000


#: Resolves once the element's box is the same for 5 animation frames in a row.
_STILL = """(el) => new Promise(done => { let last = '', same = 0;
  const frame = () => { const r = el.getBoundingClientRect();
    const box = [r.x, r.y, r.width, r.height].join();
    same = box === last && r.width > 0 ? same + 1 : 0; last = box;
    if (same >= 5) done(true); else requestAnimationFrame(frame); };
  requestAnimationFrame(frame); })"""


def type_into_grid_cell(page, grid, row: int, right: int, text: str) -> None:
    """Select a cell of a ``st.data_editor`` grid and type ``text`` into it (not committed).

    Glide's grid is a canvas: wait until it stops moving (expanders animate open), click
    the first data column of ``row`` (0-based; rows and the header are 35 px, the
    row-marker column of a dynamic editor ~36 px), wait until the grid has the keyboard
    focus, move ``right`` columns with the arrow key, then type and wait for the overlay
    editor to hold the text. Press Enter to commit.
    """
    grid.evaluate(_STILL)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 60, box["y"] + 35 + 17 + 35 * row)
    page.wait_for_function(
        "(el) => el.contains(document.activeElement)", arg=grid.element_handle(), timeout=10_000
    )
    for _ in range(right):
        page.keyboard.press("ArrowRight")
    page.keyboard.type(text)
    # Typing opens the cell's overlay editor; Enter only commits once it has focus.
    page.wait_for_function(
        "document.activeElement && ['INPUT', 'TEXTAREA'].includes(document.activeElement.tagName)"
        f" && document.activeElement.value === {text!r}",
        timeout=10_000,
    )
