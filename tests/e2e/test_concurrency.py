"""Five analysts at once on one server: each uploads and trains; each sees only their own
data; the server logs no error; its memory returns near its baseline after they leave."""

from __future__ import annotations

import time
from pathlib import Path

from engine.synth import SynthConfig, generate
from tests.e2e.conftest import (
    RATINGS_DROPZONE,
    UPLOAD_EXPANDER,
    open_app,
    open_expander,
    run,
    runs_of,
    streamlit_server,
    wait_until,
)

SESSIONS = 5
TTL_S = 5  # server.disconnectedSessionTTL for this test (default 120 s)
#: A closed session's store is released within this many seconds (``dashboard.janitor``:
#: stamped inactive at one sweep, released at the first sweep after ``TTL_S`` more; sweeps
#: run every ``max(1, min(10, TTL_S / 2))`` s).
RELEASED_WITHIN_S = TTL_S + 2 * max(1.0, min(10.0, TTL_S / 2)) + 1


def upload_csv(k: int) -> tuple[bytes, int]:
    """A distinct dataset per session: user ids ``s{k}-...``, a different size and seed."""
    data = generate(SynthConfig(n_users=300 + 60 * k, n_items=500, n_ratings=40_000, seed=k))
    ratings = data.ratings.assign(user_id=f"s{k}-" + data.ratings["user_id"])
    return ratings.to_csv(index=False).encode(), ratings["user_id"].nunique()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def settled_rss(pid: int, not_before: float, within_mib: float = 2.0, samples: int = 5) -> float:
    """The server's resident memory in MiB once ``time.monotonic()`` has passed ``not_before``
    and ``samples`` readings in a row (0.2 s apart) lie within ``within_mib`` of each other."""
    readings: list[float] = []

    def steady() -> float | None:
        readings.append(rss_mib(pid))
        recent = readings[-samples:]
        settled = len(recent) == samples and max(recent) - min(recent) <= within_mib
        return recent[-1] if settled and time.monotonic() >= not_before else None

    timeout = max(0.0, not_before - time.monotonic()) + 60
    return wait_until(steady, timeout, "the server's memory to settle")


def metric(page, label: str) -> str:
    box = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return box.locator("[data-testid='stMetricValue']").inner_text()


def test_five_sessions_at_once_stay_isolated_and_memory_is_released(browser):
    env = {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(TTL_S)}
    with streamlit_server("server_concurrency.log", env) as (url, process):
        warm = browser.new_context()  # imports, the shared sample and one trained model
        open_app(warm.new_page(), f"{url}/recommendations")
        warm.close()  # its store is released by the janitor: measure after that
        baseline = settled_rss(process.pid, not_before=time.monotonic() + RELEASED_WITHIN_S)

        uploads = [upload_csv(k) for k in range(SESSIONS)]
        contexts = [browser.new_context(viewport={"width": 1400, "height": 1000})
                    for _ in range(SESSIONS)]  # fmt: skip
        pages = [open_app(c.new_page(), url) for c in contexts]
        for page in pages:
            open_expander(page, UPLOAD_EXPANDER)
        started = time.perf_counter()
        with runs_of(pages, timeout=300_000):  # every upload in flight before waiting on any
            for k, page in enumerate(pages):
                page.locator(RATINGS_DROPZONE).set_input_files(
                    {"name": f"analyst{k}.csv", "mimeType": "text/csv", "buffer": uploads[k][0]}
                )
        for page in pages:
            open_expander(page, UPLOAD_EXPANDER)
        with runs_of(pages, timeout=300_000):
            for page in pages:
                page.get_by_role("button", name="Load", exact=True).click()
        with runs_of(pages, timeout=300_000):
            for page in pages:  # all five train at the same time
                page.get_by_role("link", name="Recommendations").click()
        for page in pages:
            page.get_by_text("Because you rated").first.wait_for()
        elapsed = time.perf_counter() - started
        peak = rss_mib(process.pid)
        for k, page in enumerate(pages):
            user = page.locator("[data-testid='stSelectbox']").filter(has_text="User").first
            assert user.locator("input").input_value().startswith(f"s{k}-"), k
            run(page, page.get_by_role("link", name="Data").click)
            assert metric(page, "Users") == f"{uploads[k][1]:,}"
            others = [f"s{j}-" for j in range(SESSIONS) if j != k]
            assert not any(page.get_by_text(prefix).count() for prefix in others)
        for context in contexts:
            context.close()
        # The janitor releases a closed session's store once its TTL has passed.
        after = settled_rss(process.pid, not_before=time.monotonic() + RELEASED_WITHIN_S)
    print(f"5 sessions: {elapsed:.1f} s; server RSS baseline {baseline:.0f} MiB, "
          f"peak {peak:.0f} MiB, after close {after:.0f} MiB")  # fmt: skip
    assert peak > baseline
    assert after <= 1.2 * baseline, (baseline, peak, after)
