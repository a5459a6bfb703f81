"""A run kept in Spark in Chromium: ``streamlit run dashboard/app.py -- --analysis OUT``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine.report import render
from engine.report.build import report_parts
from engine.saved.kept import open_kept, save_kept
from tests.conftest import REPORT_CREATED, write_side
from tests.e2e.conftest import ARTIFACTS, open_app, run, streamlit_server

#: The read-only pages of a kept run with its user side, in navigation order.
KEPT_TITLES = [
    "Data",
    "Model",
    "User profile",
    "Recommendations",
    "Bias audit",
    "Over time",
    "Report",
    "Compare versions",
]


@pytest.fixture(scope="module")
def kept_server(hostile_report, tmp_path_factory):
    """A kept run of the hostile sample with its user side, and a server started on it."""
    data, model, evaluation, result, _ = hostile_report
    folder = tmp_path_factory.mktemp("kept-browser") / "run"
    parts = report_parts(data, model, evaluation, result, datetime.fromisoformat(REPORT_CREATED))
    save_kept(
        folder, parts, result, "file:///elsewhere/evaluation", write_side(folder, data, model)
    )
    with streamlit_server("kept_server.log", args=("--analysis", str(folder))) as (url, _):
        yield url, folder


def _links(page) -> list[str]:
    """The sidebar's page titles (each link's text is its icon's name, then the title)."""
    texts = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
    return [text.strip().split("\n")[-1] for text in texts]


def test_a_kept_run_opens_on_its_read_only_pages_and_downloads_its_report(browser, kept_server):
    url, folder = kept_server
    page = open_app(browser.new_page(viewport={"width": 1400, "height": 2400}), url)
    assert _links(page) == KEPT_TITLES
    main = page.locator("[data-testid='stMain']")
    assert "A run whose ratings stayed in Spark" in main.inner_text()
    for title in KEPT_TITLES[1:]:
        run(page, page.get_by_role("link", name=title).click)
        assert page.get_by_role("heading", name=title, exact=True).is_visible()
        assert not page.locator("[data-testid='stException']").count()
        assert "hit an unexpected problem" not in main.inner_text()
    run(page, page.get_by_role("link", name="Report").click)
    page.screenshot(path=str(ARTIFACTS / "kept_report_page.png"))
    with page.expect_download() as download:
        page.get_by_role("button", name="report.html").click()
    html = Path(download.value.path()).read_bytes()
    assert html == render(open_kept(folder).report(), ["html"])["report.html"]
    run(page, page.get_by_role("link", name="Data").click)
    run(page, page.get_by_role("button", name="Close this run").click)
    assert len(_links(page)) == 8 and "Synthetic sample data" in main.inner_text()
    page.close()
