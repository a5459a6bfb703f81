"""In Chromium: a refresh keeps the analyst's upload and model; another browser does not see it."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import open_app, reload_app, run, shot, streamlit_server
from tests.e2e.test_browser import LONG, csv_bytes, metric_value, upload

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect


@pytest.fixture(scope="module")
def kept_server(tmp_path_factory):
    """A dashboard whose session work goes to a fresh folder."""
    folder = tmp_path_factory.mktemp("sessions")
    with streamlit_server("refresh.log", env={"RECSYS_SESSION_DIR": str(folder)}) as (url, _):
        yield url, folder


def test_a_refresh_keeps_the_upload_and_the_trained_model(kept_server, browser):
    url, folder = kept_server
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = open_app(context.new_page(), url)
    upload(page, "mine.csv", csv_bytes(15, "p"))
    expect(metric_value(page, "Users")).to_have_text("15")
    expect(page).to_have_url(re.compile("session="))
    run(page, page.get_by_role("link", name="Model").click)
    # Page navigation clears query parameters; the app puts the session back.
    expect(page).to_have_url(re.compile("session="))
    train = page.get_by_role(
        "button", name="Train and evaluate (5-fold (seed 0), SVD and comparators)"
    )
    run(page, train.click, timeout=LONG)
    page.get_by_text("Held-out metrics, 5-fold").wait_for()

    reload_app(page)
    page.get_by_text("Held-out metrics, 5-fold").wait_for()  # no retraining button needed
    expect(page.get_by_text("Train the model to see its accuracy")).to_have_count(0)
    run(page, page.get_by_role("link", name="Data").click)
    expect(metric_value(page, "Users")).to_have_text("15")
    expect(page.get_by_text("Synthetic sample data")).to_have_count(0)
    shot(page, "refresh_kept")

    stranger = open_app(browser.new_context().new_page(), url)
    expect(metric_value(stranger, "Users")).to_have_text("1,000")  # another session: the sample
    stranger.context.close()

    # Forgetting ends with st.rerun(): the second run shows the sample again.
    run(page, page.get_by_role("button", name="Forget my data").click)
    expect(metric_value(page, "Users")).to_have_text("1,000")
    expect(page).not_to_have_url(re.compile("session="))
    assert not any(p.is_dir() for p in folder.iterdir())
    context.close()


def test_cancel_stops_a_long_step_and_keeps_nothing_of_it(kept_server, browser):
    url, _ = kept_server
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = open_app(context.new_page(), f"{url}/model")
    page.get_by_text("Advanced settings").click()
    seed = page.get_by_role("spinbutton", name="Seed")
    seed.fill("777")  # settings no other test uses: this session trains now
    run(page, lambda: seed.press("Enter"))
    page.get_by_role("button", name="Train and evaluate").click()
    progress = page.get_by_text(re.compile(r"fold \d+/\d+: .* · (about .* left|estimating)"))
    progress.first.wait_for(timeout=LONG)  # the evaluation is under way, with time left
    run(page, page.get_by_role("button", name="Cancel").click, timeout=LONG)
    expect(
        page.get_by_text(re.compile("Cancelled: .* was stopped and kept nothing"))
    ).to_be_visible()
    expect(page.get_by_text("Train the model to see its accuracy")).to_be_visible()
    context.close()
