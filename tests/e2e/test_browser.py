"""End to end in Debian's Chromium: what an analyst does, through the real UI."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    load_ratings_file,
    open_app,
    run,
    shot,
    type_into_grid_cell,
)

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

LONG = 400_000  # ms: training and the 5-fold evaluation, or the audit, on a busy machine


def csv_bytes(n_users: int, prefix: str) -> bytes:
    rows = [f"{prefix}{u},m{i},{(u * 7 + i) % 5 + 1}" for u in range(n_users) for i in range(12)
            if (u + i) % 4]  # fmt: skip
    return ("who,what,stars\n" + "\n".join(rows) + "\n").encode()


def upload(page, name: str, content: bytes) -> None:
    """Upload ``name`` on the Data page and load it (the page was opened with ``open_app``)."""
    load_ratings_file(page, {"name": name, "mimeType": "text/csv", "buffer": content}, LONG)


def metric_value(page, label: str):
    """The value element of the metric labelled ``label`` (for ``expect``)."""
    box = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return box.locator("[data-testid='stMetricValue']")


def metric(page, label: str) -> str:
    """The value of the metric labelled ``label`` as shown now."""
    return metric_value(page, label).inner_text()


def go(page, link: str) -> None:
    """Open another page through the navigation and wait for its run."""
    run(page, page.get_by_role("link", name=link).click, timeout=LONG)


def test_app_opens_on_the_labelled_sample(server, browser):
    page = open_app(browser.new_page(viewport={"width": 1400, "height": 1000}), server)
    expect(page.get_by_text("Synthetic sample data")).to_be_visible()
    expect(metric_value(page, "Users")).to_have_text("1,000")
    shot(page, "01_sample")
    page.close()


def test_upload_map_train_and_explain(server, browser):
    page = open_app(browser.new_page(viewport={"width": 1400, "height": 1200}), server)
    upload(page, "mine.csv", csv_bytes(15, "p"))
    expect(metric_value(page, "Users")).to_have_text("15")
    expect(page.get_by_text("Synthetic sample data")).to_have_count(0)
    go(page, "Recommendations")
    expect(page.get_by_text("Why this prediction").first).to_be_visible()
    expect(page.get_by_text("Because you rated").first).to_be_visible()
    expect(page.locator(".js-plotly-plot").nth(1)).to_be_visible()  # waterfall and bars
    shot(page, "02_recommendations_upload")
    page.close()


def test_what_if_edit_refolds_and_updates_the_recommendations(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    open_app(page, f"{server}/recommendations")
    page.get_by_text("What-if editor").click()
    editor = page.locator("[data-testid='stDataFrame']").first
    editor.wait_for()
    # u0001's first rating (by item id) is i0146 = 3 in sample_data/ratings.csv.
    type_into_grid_cell(page, editor, row=0, right=1, text="5")
    run(page, lambda: page.keyboard.press("Enter"))  # commits the edit: a fragment rerun
    expect(page.get_by_text("What-if: 0 added, 1 changed, 0 removed (")).to_be_visible()
    expect(page.get_by_text("Because you rated").first).to_be_visible()
    # The counterfactual is searched only when asked for.
    expect(page.get_by_text("Counterfactual:")).to_have_count(0)
    run(page, page.get_by_role("button", name=re.compile("Find a counterfactual")).click)
    expect(page.get_by_text("Counterfactual:").first).to_be_visible()
    shot(page, "05_what_if")
    page.close()


def test_audit_runs_and_flags(server, browser):
    page = open_app(browser.new_page(viewport={"width": 1400, "height": 1200}), f"{server}/audit")
    run(page, page.get_by_role("button", name="Run the audit").click, timeout=LONG)
    expect(page.get_by_text("Flagged disparities")).to_be_visible()
    shot(page, "03_audit")
    go(page, "Report")
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
        open_app(page, server)
    upload(a, "alpha.csv", csv_bytes(9, "a"))
    upload(b, "beta.csv", csv_bytes(13, "b"))
    for page in (a, b):  # move around, then come back: each still has its own data
        go(page, "Model")
        go(page, "Data")
    expect(metric_value(a, "Users")).to_have_text("9")
    expect(metric_value(b, "Users")).to_have_text("13")
    expect(a.get_by_text("alpha.csv").first).to_be_visible()
    expect(b.get_by_text("beta.csv").first).to_be_visible()
    expect(a.get_by_text("beta.csv")).to_have_count(0)
    expect(b.get_by_text("alpha.csv")).to_have_count(0)
    shot(a, "04_session_a")
    shot(b, "04_session_b")
    first.close()
    second.close()


def test_closing_the_browser_mid_training_leaves_the_server_healthy(server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = open_app(context.new_page(), f"{server}/model")
    # A seed no other test uses, so this session's model is trained now (not reused).
    page.get_by_text("Advanced settings").click()
    seed = page.get_by_role("spinbutton", name="Seed")
    seed.fill("4242")
    run(page, lambda: seed.press("Enter"))
    page.get_by_role("button", name="Train and evaluate").click()
    # The 5-fold evaluation is under way once its progress bar names a fold.
    page.get_by_text(re.compile(r"fold \d+/\d+")).first.wait_for(timeout=LONG)
    context.close()  # the analyst's browser goes away mid-run
    assert urllib.request.urlopen(f"{server}/_stcore/health", timeout=10).read() == b"ok"
    again = browser.new_page(viewport={"width": 1400, "height": 1000})
    open_app(again, f"{server}/recommendations")
    expect(again.get_by_text("Because you rated").first).to_be_visible()
    go(again, "Model")
    run(again, again.get_by_role("button", name="Train and evaluate").click, timeout=LONG)
    expect(again.get_by_text("Popularity ranks only (no RMSE)", exact=False).first).to_be_visible()
    again.close()
