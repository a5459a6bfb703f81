"""The Bias audit page in Debian's Chromium: the executive summary opens the results.

Uses the ``server`` and ``browser`` fixtures of ``tests/e2e/conftest.py`` (a
``streamlit run`` on a free port; ``/usr/bin/chromium``).
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import ARTIFACTS, open_app, run, shot

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

LONG = 400_000  # ms: training, the 5-fold evaluation and the audit, on a busy machine


def top(locator) -> float:
    """The page's y coordinate of the element's top edge (scroll-independent)."""
    return locator.evaluate("el => el.getBoundingClientRect().top + window.scrollY")


def test_audit_opens_with_an_executive_summary_then_the_tiers_then_the_data(server, browser):
    page = open_app(browser.new_page(viewport={"width": 1400, "height": 1200}), f"{server}/audit")
    run(page, page.get_by_role("button", name="Run the audit").click, timeout=LONG)
    summary = page.get_by_role("heading", name="Executive summary")
    expect(summary).to_be_visible()
    first = page.locator(".st-key-summary_item_1")
    expect(first).to_be_visible()
    expect(first).to_contain_text("1. ")
    expect(first).to_contain_text("Check next:")
    items = page.locator("[class*='st-key-summary_item_']")
    assert 1 <= items.count() <= 7
    flagged = page.get_by_role("heading", name=re.compile(r"Flagged disparities \(\d+\)"))
    notable = page.get_by_role("heading", name=re.compile(r"Notable \(\d+\)"))
    data = page.get_by_role("heading", name="What the data shows")
    for heading in (flagged, notable, data):
        expect(heading).to_be_visible()
    # Page order: summary, its items, flagged, notable, then what the data shows.
    positions = [top(summary), top(first), top(items.last), top(flagged), top(notable), top(data)]
    assert positions == sorted(positions)
    expect(page.get_by_text("Groups below the minimum size")).to_be_visible()
    shot(page, "audit_executive_summary")
    # The exposure chart shows what it is measured against, with a legend.
    family = page.locator(".st-key-audit_family input")  # a react-aria combobox
    family.click()
    family.press("ArrowDown")  # opens the list
    run(page, page.get_by_role("option", name="exposure", exact=True).click)
    legend = page.locator(".st-key-group_chart .legendtext")
    expect(legend.filter(has_text=re.compile(r"^catalogue share$"))).to_have_count(1)
    expect(legend.filter(has_text="interaction share (ratings)")).to_have_count(1)
    expect(legend.filter(has_text=re.compile(r"^(under|over)-exposed"))).to_have_count(2)
    notes = page.locator(".st-key-group_chart .annotation-text")
    expect(notes.filter(has_text="Groups overlap")).to_have_count(1)  # genres overlap
    page.locator(".st-key-group_chart").screenshot(path=str(ARTIFACTS / "audit_exposure.png"))
    page.close()
