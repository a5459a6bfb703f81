"""Five analysts at once on one server: each uploads and trains; each sees only their own
data; the server logs no error; its memory returns near its baseline after they leave."""

from __future__ import annotations

import time
from pathlib import Path

from engine.synth import SynthConfig, generate
from tests.e2e.conftest import READY, streamlit_server, wait_ready

SESSIONS = 5
TTL_S = 5  # server.disconnectedSessionTTL for this test (default 120 s)


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


def settle(pid: int, seconds: float) -> float:
    """Wait ``seconds``, then return the server's resident memory in MiB."""
    time.sleep(seconds)
    return rss_mib(pid)


def metric(page, label: str) -> str:
    box = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return box.locator("[data-testid='stMetricValue']").inner_text()


def test_five_sessions_at_once_stay_isolated_and_memory_is_released(browser):
    env = {"STREAMLIT_SERVER_DISCONNECTED_SESSION_TTL": str(TTL_S)}
    with streamlit_server("server_concurrency.log", env) as (url, process):
        warm = browser.new_context()  # imports, the shared sample and one trained model
        page = warm.new_page()
        page.goto(f"{url}/recommendations")
        wait_ready(page)
        warm.close()
        baseline = settle(process.pid, TTL_S + 10)

        uploads = [upload_csv(k) for k in range(SESSIONS)]
        contexts = [browser.new_context(viewport={"width": 1400, "height": 1000})
                    for _ in range(SESSIONS)]  # fmt: skip
        pages = [c.new_page() for c in contexts]
        for page in pages:
            page.goto(url)
        for page in pages:
            wait_ready(page)
            page.get_by_text("Load your own rating data").click()
        started = time.perf_counter()
        for k, page in enumerate(pages):  # every upload in flight before waiting on any
            page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
                {"name": f"analyst{k}.csv", "mimeType": "text/csv", "buffer": uploads[k][0]}
            )
        for page in pages:
            wait_ready(page)
        for page in pages:
            page.get_by_role("button", name="Load", exact=True).click()
        for page in pages:
            wait_ready(page)
        for page in pages:  # all five train at the same time
            page.get_by_role("link", name="Recommendations").click()
        for page in pages:
            page.wait_for_selector(READY, timeout=300_000)
            page.get_by_text("Because you rated").first.wait_for(timeout=300_000)
        elapsed = time.perf_counter() - started
        peak = rss_mib(process.pid)
        for k, page in enumerate(pages):
            user = page.locator("[data-testid='stSelectbox']").filter(has_text="User").first
            assert user.locator("input").input_value().startswith(f"s{k}-"), k
            page.get_by_role("link", name="Data").click()
            wait_ready(page)
            assert metric(page, "Users") == f"{uploads[k][1]:,}"
            others = [f"s{j}-" for j in range(SESSIONS) if j != k]
            assert not any(page.get_by_text(prefix).count() for prefix in others)
        for context in contexts:
            context.close()
        # The janitor releases a closed session's store once its TTL has passed.
        after = settle(process.pid, TTL_S + 15)
    print(f"5 sessions: {elapsed:.1f} s; server RSS baseline {baseline:.0f} MiB, "
          f"peak {peak:.0f} MiB, after close {after:.0f} MiB")  # fmt: skip
    assert peak > baseline
    assert after <= 1.2 * baseline, (baseline, peak, after)
