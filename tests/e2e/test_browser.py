"""End to end in Debian's Chromium: what an analyst does, through the real UI."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from tests.e2e.conftest import (
    OBSERVE_SCRIPT_STATE,
    shot,
    timed_rerun,
    type_into_grid_cell,
    wait_ready,
)


def csv_bytes(n_users: int, prefix: str) -> bytes:
    rows = [f"{prefix}{u},m{i},{(u * 7 + i) % 5 + 1}" for u in range(n_users) for i in range(12)
            if (u + i) % 4]  # fmt: skip
    return ("who,what,stars\n" + "\n".join(rows) + "\n").encode()


def upload(page, name: str, content: bytes) -> None:
    page.get_by_text("Load your own rating data").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": content}
    )
    wait_ready(page)
    page.get_by_role("button", name="Load", exact=True).click()
    wait_ready(page)


def metric(page, label: str) -> str:
    box = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return box.locator("[data-testid='stMetricValue']").inner_text()


def test_app_opens_on_the_labelled_sample(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server)
    wait_ready(page)
    assert page.get_by_text("Synthetic sample data").is_visible()
    assert metric(page, "Users") == "1,000"
    shot(page, "01_sample")
    page.close()


def test_upload_map_train_and_explain(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(server)
    wait_ready(page)
    upload(page, "mine.csv", csv_bytes(15, "p"))
    assert metric(page, "Users") == "15"
    assert not page.get_by_text("Synthetic sample data").is_visible()
    page.get_by_role("link", name="Recommendations").click()
    wait_ready(page)
    assert page.get_by_text("Why this prediction").first.is_visible()
    assert page.get_by_text("Because you rated").first.is_visible()
    assert page.locator(".js-plotly-plot").count() >= 2
    shot(page, "02_recommendations_upload")
    page.close()


def test_what_if_edit_refolds_and_updates_the_recommendations(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{server}/recommendations")
    wait_ready(page)
    page.evaluate(OBSERVE_SCRIPT_STATE)
    page.get_by_text("What-if editor").click()
    editor = page.locator("[data-testid='stDataFrame']").first
    editor.wait_for()
    # u0001's first rating (by item id) is i0146 = 3 in sample_data/ratings.csv.
    type_into_grid_cell(page, editor, row=0, right=1, text="5")
    timed_rerun(page, lambda: page.keyboard.press("Enter"))  # waits for the rerun it starts
    assert page.get_by_text("What-if: 0 added, 1 changed, 0 removed (").is_visible()
    assert page.get_by_text("Because you rated").first.is_visible()
    shot(page, "05_what_if")
    page.close()


def test_audit_runs_and_flags(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    page.goto(f"{server}/audit")
    wait_ready(page)
    page.get_by_role("button", name="Run the audit").click()
    wait_ready(page, timeout=400_000)
    assert page.get_by_text("Flagged disparities").is_visible()
    shot(page, "03_audit")
    page.get_by_role("link", name="Report").click()
    wait_ready(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="report.html").click()
    html = Path(download.value.path()).read_text(encoding="utf-8")
    assert download.value.suggested_filename == "report.html"
    assert "RMSE is worse for age_band = 55+" in html
    shot(page, "04_report")
    page.close()


def test_two_sessions_see_only_their_own_upload(server, browser):
    first = browser.new_context(viewport={"width": 1400, "height": 1000})
    second = browser.new_context(viewport={"width": 1400, "height": 1000})
    a, b = first.new_page(), second.new_page()
    for page in (a, b):
        page.goto(server)
        wait_ready(page)
    upload(a, "alpha.csv", csv_bytes(9, "a"))
    upload(b, "beta.csv", csv_bytes(13, "b"))
    for page in (a, b):  # move around, then come back: each still has its own data
        page.get_by_role("link", name="Model").click()
        wait_ready(page)
        page.get_by_role("link", name="Data").click()
        wait_ready(page)
    assert metric(a, "Users") == "9" and metric(b, "Users") == "13"
    assert a.get_by_text("alpha.csv").first.is_visible()
    assert b.get_by_text("beta.csv").first.is_visible()
    assert a.get_by_text("beta.csv").count() == 0 and b.get_by_text("alpha.csv").count() == 0
    shot(a, "04_session_a")
    shot(b, "04_session_b")
    first.close()
    second.close()


def test_closing_the_browser_mid_training_leaves_the_server_healthy(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{server}/model")
    wait_ready(page)
    page.get_by_role("button", name="Train and evaluate").click()
    page.wait_for_selector("[data-test-script-state='running']")
    page.wait_for_timeout(1500)  # the 5-fold evaluation is under way
    context.close()  # the analyst's browser goes away mid-run
    assert urllib.request.urlopen(f"{server}/_stcore/health", timeout=10).read() == b"ok"
    again = browser.new_page(viewport={"width": 1400, "height": 1000})
    again.goto(f"{server}/recommendations")
    wait_ready(again)
    assert again.get_by_text("Because you rated").first.is_visible()
    again.get_by_role("link", name="Model").click()
    wait_ready(again)
    again.get_by_role("button", name="Train and evaluate").click()
    wait_ready(again, timeout=400_000)
    assert again.get_by_text("Popularity ranks only (no RMSE)", exact=False).first.is_visible()
    again.close()
