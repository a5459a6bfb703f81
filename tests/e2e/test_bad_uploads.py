"""Bad files uploaded through the browser: one message each, the session stays usable."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.bad.make_corpus import GOOD, GOOD_ROWS
from tests.e2e.conftest import (
    RATINGS_DROPZONE,
    UPLOAD_EXPANDER,
    open_app,
    open_expander,
    put_file,
    run,
    shot,
)

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad"
#: A representative subset: refused while previewing, and refused only when loading.
SUBSET = {
    "nul_bytes.csv": "is binary",
    "zip_path_traversal.zip": "points outside the archive",
    "ten_thousand_columns.csv": "over the limit of 1,000",
    "gzip_bomb.csv.gz": "likely zip bomb",
    "implicit_only.csv": "looks like implicit feedback",
}


def upload(page, name: str, content: bytes) -> None:
    """Upload ``name``; click Load when the preview offers it (a refused file offers none).

    The page names the file it previews, or names it in the refusal: waiting for that
    makes sure the Load button seen (or not) is this file's.
    """
    dropzone = page.locator(RATINGS_DROPZONE)
    file = {"name": name, "mimeType": "application/octet-stream", "buffer": content}
    put_file(page, dropzone, file)
    stem = name.removesuffix(".gz")  # a refused gzip is named by what it holds
    preview = page.locator("[data-testid='stCaptionContainer']").filter(has_text=stem)
    refusal = page.locator("[data-testid='stAlertContentError']").filter(has_text=stem)
    expect(preview.or_(refusal)).to_have_count(1)
    if preview.count():
        open_expander(page, UPLOAD_EXPANDER)
        load = page.get_by_role("button", name="Load", exact=True)
        expect(load).to_be_visible()
        run(page, load.click)


def metric(page, label: str):
    box = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return box.locator("[data-testid='stMetricValue']")


def test_bad_uploads_each_say_one_thing_and_a_good_upload_still_works(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    open_app(page, server)
    open_expander(page, UPLOAD_EXPANDER)
    for name, fragment in SUBSET.items():
        upload(page, name, (CORPUS / name).read_bytes())
        alert = page.locator("[data-testid='stAlertContentError']").filter(has_text=fragment)
        expect(alert).to_have_count(1)
        expect(alert).to_contain_text(name.removesuffix(".gz"))
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
        expect(page.get_by_text("Synthetic sample data")).to_be_visible()  # still on the sample
    shot(page, "06_bad_upload")
    upload(page, "html_titles.zip", (CORPUS / "html_titles.zip").read_bytes())
    expect(metric(page, "Users")).to_have_text("8")
    run(page, page.get_by_role("link", name="Recommendations").click)
    expect(page.get_by_text("Because you rated").first).to_be_visible()  # markup titles shown
    run(page, page.get_by_role("link", name="Data").click)
    open_expander(page, UPLOAD_EXPANDER)
    upload(page, "good.csv", GOOD.encode())
    expect(metric(page, "Ratings")).to_have_text(f"{GOOD_ROWS:,}")
    assert dialogs == []
    page.close()
