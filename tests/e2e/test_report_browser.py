"""The HTML report in Chromium: offline, charts drawn, hostile strings inert; the PDF prints it."""

from __future__ import annotations

import io
import unicodedata

import pytest

from engine.report import find_chromium, render_html, render_pdf
from tests.conftest import HOSTILE_PROVIDER, XSS_TITLES
from tests.e2e.conftest import ARTIFACTS

#: True once the report has charts and every one has been drawn by plotly.
ALL_CHARTS_DRAWN = """() => { const charts = [...document.querySelectorAll('div.chart')];
  return charts.length > 0 && charts.every(d => d.querySelector('.main-svg')); }"""
#: Where a scroll by ``dy`` pixels ends (the bottom of the document at most).
SCROLL_TARGET = """(dy) => Math.min(window.scrollY + dy,
  document.documentElement.scrollHeight - window.innerHeight)"""


@pytest.fixture(scope="module")
def report_file(hostile_report, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_html(hostile_report[-1]), encoding="utf-8")
    return path


@pytest.fixture
def offline_page(browser, report_file):
    """Open the report with every non-file request blocked; record requests, dialogs, errors."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    seen = {"requests": [], "dialogs": [], "errors": []}

    def route(route):
        seen["requests"].append(route.request.url)
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.goto(report_file.as_uri())
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=60_000)
    yield page, seen
    page.screenshot(path=str(ARTIFACTS / "report_offline.png"))
    context.close()


def test_report_opens_offline_with_every_chart_drawn(offline_page):
    page, seen = offline_page
    charts = page.locator("div.chart").count()
    drawn = page.evaluate(
        "[...document.querySelectorAll('div.chart')].filter(d => d.querySelector('.main-svg'))"
        ".length"
    )
    assert charts > 10 and drawn == charts
    assert [u for u in seen["requests"] if not u.startswith("file:")] == []
    assert seen["errors"] == []


def test_hostile_strings_execute_nothing_and_show_as_text(offline_page):
    page, seen = offline_page
    target = page.evaluate(SCROLL_TARGET, 20_000)
    page.mouse.wheel(0, 20_000)  # scroll through, drawing everything lazily drawn
    page.wait_for_function("(y) => window.scrollY >= y - 1", arg=target, timeout=30_000)
    page.wait_for_function(ALL_CHARTS_DRAWN, timeout=30_000)
    assert seen["dialogs"] == []
    assert page.evaluate("document.querySelectorAll('img, svg[onload]').length") == 0
    assert page.get_by_text(f"{XSS_TITLES[0]} #", exact=False).count() > 0
    assert page.get_by_text(HOSTILE_PROVIDER, exact=False).count() > 0


def test_pdf_has_pages_and_the_summary_text(hostile_report):
    if find_chromium() is None:
        pytest.skip("no Chromium to print with (apt-get update && apt-get install -y chromium)")
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the PDF back")
    report = hostile_report[-1]
    pdf = render_pdf(render_html(report))
    (ARTIFACTS / "report.pdf").write_bytes(pdf)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) > 5
    text = " ".join(unicodedata.normalize("NFKC", p.extract_text()) for p in reader.pages)
    text = " ".join(text.split())
    assert "Summary of findings" in text
    assert report.headline[0][:60] in text
    assert "Indie Collective" not in text and "onerror=alert('provider')" in text
