"""The Recommendations page's explanation, read in Chromium: what each bar and sentence says.

Uses the ``server`` and ``browser`` fixtures of ``tests/e2e/conftest.py`` (a ``streamlit
run`` of the bundled sample and Debian's Chromium).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import open_app, run, shot

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

LONG = 400_000  # ms: the first run trains the model on a busy machine


def history_ticks(page) -> list[str]:
    """The y tick labels of the "because you rated" chart (the second plotly figure)."""
    chart = page.locator(".js-plotly-plot").nth(1)
    expect(chart).to_be_visible()
    return chart.locator("g.ytick text").all_text_contents()


def test_history_bars_coverage_and_counterfactual_highlight(server, browser):
    page = open_app(browser.new_page(viewport={"width": 1500, "height": 1400}), server, LONG)
    run(page, page.get_by_role("link", name="Recommendations").click, timeout=LONG)
    expect(page.get_by_text("Because you rated", exact=False).first).to_be_visible()
    ticks = history_ticks(page)
    assert ticks and all(re.search(r", rated \d+(\.\d+)?$", t) for t in ticks), ticks
    said = re.compile(r"The \d+ largest of [\d,]+ ratings hold|All [\d,]+ ratings are shown")
    coverage = page.get_by_text(said)
    expect(coverage.first).to_be_visible()
    expect(page.get_by_text("Faithfulness check:", exact=False)).to_be_visible()
    removing = page.get_by_text(re.compile(r"Removing the \d most positively attributed"))
    expect(removing).to_be_visible()
    assert not [t for t in ticks if t.startswith("★")]
    run(page, page.get_by_role("button", name=re.compile("Find a counterfactual")).click, LONG)
    message = page.get_by_text(re.compile("^Counterfactual:"))
    expect(message).to_be_visible()
    if "Removed:" in message.inner_text():  # found: its ratings are marked in the chart
        marked = [t for t in history_ticks(page) if t.startswith("★")]
        assert marked, "the counterfactual's ratings are not marked in the history chart"
        expect(page.get_by_text("marked ★ in the chart above", exact=False)).to_be_visible()
    shot(page, "explanations_sample")
    page.close()
