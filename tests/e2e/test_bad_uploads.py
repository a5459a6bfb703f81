"""Bad files uploaded through the browser: one message each, the session stays usable."""

from __future__ import annotations

from pathlib import Path

from tests.data.bad.make_corpus import GOOD, GOOD_ROWS
from tests.e2e.conftest import shot, wait_ready

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad"
#: A representative subset: refused while previewing, and refused only when loading.
SUBSET = {
    "nul_bytes.csv": "is binary",
    "zip_path_traversal.zip": "points outside the archive",
    "ten_thousand_columns.csv": "over the limit of 1,000",
    "gzip_bomb.csv.gz": "likely zip bomb",
    "implicit_only.csv": "looks like implicit feedback",
}


def put_file(page, name: str, content: bytes) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").first.set_input_files(
        {"name": name, "mimeType": "application/octet-stream", "buffer": content}
    )
    wait_ready(page)
    load = page.get_by_role("button", name="Load", exact=True)
    if load.count():
        load.click()
        wait_ready(page)


def test_bad_uploads_each_say_one_thing_and_a_good_upload_still_works(server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1200})
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server)
    wait_ready(page)
    page.get_by_text("Load your own rating data").click()
    for name, fragment in SUBSET.items():
        put_file(page, name, (CORPUS / name).read_bytes())
        alert = page.locator("[data-testid='stAlertContentError']").filter(has_text=fragment)
        assert alert.count() == 1, name
        assert name.removesuffix(".gz") in alert.inner_text()
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.get_by_text("Synthetic sample data").is_visible()  # still on the sample
    shot(page, "06_bad_upload")
    put_file(page, "html_titles.zip", (CORPUS / "html_titles.zip").read_bytes())
    users = page.locator("[data-testid='stMetric']").filter(has_text="Users").first
    assert users.locator("[data-testid='stMetricValue']").inner_text() == "8"
    page.get_by_role("link", name="Recommendations").click()
    wait_ready(page)
    page.get_by_text("Because you rated").first.wait_for()  # titles with markup were rendered
    page.get_by_role("link", name="Data").click()
    wait_ready(page)
    page.get_by_text("Load your own rating data").click()
    put_file(page, "good.csv", GOOD.encode())
    ratings = page.locator("[data-testid='stMetric']").filter(has_text="Ratings").first
    assert ratings.locator("[data-testid='stMetricValue']").inner_text() == str(GOOD_ROWS)
    assert dialogs == []
    page.close()
