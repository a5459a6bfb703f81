"""Browser benchmark cases (issue #13, item 7): the first page, user switches and what-if edits.

Imported by ``tests/benchmarks/__main__.py`` so that the parent and each ``--case`` child
see them. Every figure is measured through Chromium: an open is the page's own clock from
navigation start to the first script run finished (the server's ``script_finished``
message) and painted; a switch or an edit is ``timed_rerun`` (key press to the rerun
finished and painted). The machine's load average is put next to the figures.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tests.benchmarks.cases import CASES, ROOT, WORK, latest_small_like

#: The latest-small-like ratings and their saved analysis (``python -m engine run``).
LATEST_SMALL_CSV = WORK / "latest_small_like.csv"
LATEST_SMALL_ANALYSIS = WORK / "latest_small_like_analysis"
#: Opens per kind (first visitor of a fresh server, later new session): medians of 5.
OPENS = 5
VIEWPORT = {"width": 1400, "height": 1000}


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}/{five:.2f}/{fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def ensure_latest_small_analysis() -> Path:
    """Write the latest-small-like CSV and its saved analysis once (about a minute)."""
    if not (LATEST_SMALL_ANALYSIS / "manifest.json").exists():
        WORK.mkdir(parents=True, exist_ok=True)
        latest_small_like().to_csv(LATEST_SMALL_CSV, index=False)
        subprocess.run(
            [sys.executable, "-m", "engine", "run", str(LATEST_SMALL_CSV),
             "--out", str(LATEST_SMALL_ANALYSIS)],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
    return LATEST_SMALL_ANALYSIS


@contextlib.contextmanager
def _server(log_name: str, analysis: Path | None = None):
    """``streamlit_server``, with ``-- --analysis DIR`` when ``analysis`` is given."""
    from tests.e2e.conftest import ARTIFACTS, _healthy, free_port, wait_until

    port = free_port()
    log_path = ARTIFACTS / log_name
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    extra = [] if analysis is None else ["--", "--analysis", str(analysis)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless",
             "true", "--server.port", str(port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", *extra],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _healthy(url), 60, f"streamlit's health check (log: {log_path})")
            yield url
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert "Traceback" not in log_path.read_text(), f"server log has a traceback: {log_path}"


#: Per page opened by ``_timed_open``: one entry per script run the server said had ended.
_FINISHED: dict[object, list[bool]] = {}


def _wait_finished(page, count: int, timeout: float = 180) -> bool:
    """Wait until the page's socket has brought more than ``count`` ended script runs;
    return whether it did within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while len(_FINISHED[page]) <= count:  # Playwright delivers frames while the page waits
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(5)
    return True


def _timed_fragment_run(page, action) -> float | None:
    """Do ``action()``; return seconds (page clock) until the run it caused ended and painted.

    For fragment reruns, which the page's script state does not always show as running
    (so ``timed_rerun`` cannot see them): the end is the server's ``script_finished``.
    ``None`` when no run came within 30 s (the typed value was lost: the grid redrew
    under the click, so the cell kept its value and nothing was sent).
    """
    from tests.e2e.conftest import _PAINTED, READY

    count = len(_FINISHED[page])
    start = page.evaluate("performance.now()")
    action()
    if not _wait_finished(page, count, timeout=30):
        page.keyboard.press("Escape")
        return None
    page.wait_for_selector(READY, timeout=180_000)
    return (page.evaluate(_PAINTED) - start) / 1000


def _timed_open(browser, url: str, text: str) -> tuple[object, float]:
    """Open ``url`` in a new page (a new session); return it and the seconds from navigation
    start to the first script run finished and painted, with ``text`` on screen."""
    from tests.e2e.conftest import _PAINTED, READY, _is_app_socket, _run_ended

    page = browser.new_page(viewport=VIEWPORT)
    finished = _FINISHED[page] = []

    def watch(ws) -> None:
        if _is_app_socket(ws):
            ws.on("framereceived", lambda payload: _run_ended(payload) and finished.append(True))

    page.on("websocket", watch)
    page.goto(url)
    assert _wait_finished(page, 0), "no script_finished within 180 s"
    page.wait_for_selector(READY, timeout=180_000)
    page.get_by_text(text).first.wait_for()
    return page, page.evaluate(_PAINTED) / 1000


def _median_range(values: list[float]) -> str:
    return f"median {np.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def _percentiles(values: list[float]) -> str:
    p50, p95 = np.percentile(values, [50, 95])
    return f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(values):.2f} s"


def browser_first_page() -> tuple[int, str, float]:
    """The sample's first page (Data, at ``/``): 5 fresh servers' first visitors, and 5 new
    sessions on the last server (the starting analysis is shared, computed once per server)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import BROWSER_ARGS, CHROMIUM

    firsts, later = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        for n in range(OPENS):
            with _server("benchmark_first_page.log") as url:
                page, seconds = _timed_open(browser, url, "Data")
                firsts.append(seconds)
                page.close()
                if n == OPENS - 1:
                    for _ in range(OPENS):
                        page, seconds = _timed_open(browser, url, "Data")
                        later.append(seconds)
                        page.close()
        browser.close()
    return (
        len(firsts) + len(later),
        f"navigation to the Data page's first run finished and painted: fresh server's first "
        f"visitor {_median_range(firsts)}; later new session {_median_range(later)}; "
        f"{_load()}",
        float(np.median(later)),
    )


def _switch_users(page, users: list[str]) -> list[float]:
    from tests.e2e.conftest import timed_rerun

    times = []
    for user in users:
        box = page.locator("[data-testid='stSelectbox']").filter(has_text="User").first
        box.click()
        page.keyboard.type(user)
        times.append(timed_rerun(page, lambda: page.keyboard.press("Enter")))
    return times


def _edits(page, values: list[float]) -> list[float]:
    """Rows 0-4 of the editor (whose ratings are ``values``): to another value, then back,
    twice (rows 0-4 only: Enter on a lower row scrolls the grid, and clicks miss their row)."""
    from tests.e2e.conftest import type_into_grid_cell

    editor = page.locator("[data-testid='stDataFrame']").first
    page.get_by_text("What-if editor").click()
    times = []
    for n in range(20):
        row = n % 5
        value = values[row] if (n // 5) % 2 else (1 if values[row] != 1 else 5)
        type_into_grid_cell(page, editor, row=row, right=1, text=f"{value:g}")
        seconds = _timed_fragment_run(page, lambda: page.keyboard.press("Enter"))
        if seconds is not None:
            times.append(seconds)
    return times


def browser_sample_switch() -> tuple[int, str, float]:
    """The sample's Recommendations page: open (first visitor, then new sessions) and 20
    switches of the selected user."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import BROWSER_ARGS, CHROMIUM

    opens = []
    with _server("benchmark_switch.log") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        for n in range(OPENS + 1):
            page, seconds = _timed_open(browser, f"{url}/recommendations", "Because you rated")
            opens.append(seconds)
            if n < OPENS:
                page.close()
        switches = _switch_users(page, [f"u{n:04d}" for n in range(2, 22)])
        browser.close()
    return (
        len(switches),
        f"open to rendered recommendations: first {opens[0]:.2f} s, new session "
        f"{_median_range(opens[1:])}; switching user (20): {_percentiles(switches)}; {_load()}",
        float(np.percentile(switches, 95)),
    )


def browser_latest_small_whatif() -> tuple[int, str, float]:
    """Latest-small-sized data (server started with its saved analysis): what-if edits (20)
    for the user with the most ratings up to 500, and 20 user switches."""
    from playwright.sync_api import sync_playwright

    from engine.saved import open_analysis
    from tests.e2e.conftest import BROWSER_ARGS, CHROMIUM, timed_rerun

    folder = ensure_latest_small_analysis()
    model = open_analysis(folder).model
    ids = model.interactions.user_ids
    counts = {u: len(model.user_vector(i).items) for i, u in enumerate(ids)}
    user = max((c, u) for u, c in counts.items() if c <= 500)[1]
    values = [float(r) for r in model.user_vector(list(ids).index(user)).ratings[:10]]
    with _server("benchmark_whatif.log", folder) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        opens = []
        for _ in range(2):
            page, seconds = _timed_open(browser, f"{url}/recommendations", "Because you rated")
            opens.append(seconds)
        box = page.locator("[data-testid='stSelectbox']").filter(has_text="User").first
        box.click()
        page.keyboard.type(user)
        timed_rerun(page, lambda: page.keyboard.press("Enter"))
        edits = _edits(page, values)
        page.close()
        page, _ = _timed_open(browser, f"{url}/recommendations", "Because you rated")
        others = sorted(ids)[1:21]
        switches = _switch_users(page, others)
        browser.close()
    return (
        len(edits) + len(switches),
        f"610 users, 9,724 items, 100,836 ratings; open to rendered recommendations: first "
        f"{opens[0]:.2f} s, new session {opens[1]:.2f} s; what-if edit (20, user {user} with "
        f"{counts[user]} ratings): {_percentiles(edits)} ({20 - len(edits)} lost); "
        f"switching user (20): {_percentiles(switches)}; {_load()}",
        float(np.percentile(edits, 95)),
    )


LATEST_SMALL_CASE = "browser: latest-small-like what-if edits (Chromium)"
CASES.update(
    {
        "browser: sample first page, Data (Chromium)": (browser_first_page, "", None, 1),
        "browser: sample user switches (Chromium)": (browser_sample_switch, "", None, 1),
        LATEST_SMALL_CASE: (browser_latest_small_whatif, "", None, 1),
    }
)
