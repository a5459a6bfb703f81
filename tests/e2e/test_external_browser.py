"""Auditing the analyst's own recommender in Debian's Chromium: upload lists, compare them.

Uses the ``server`` and ``browser`` fixtures of ``tests/e2e/conftest.py``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.e2e.conftest import (
    load_ratings_file,
    open_app,
    put_file,
    run,
    shot,
)

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

LONG = 400_000  # ms: training before the cut and auditing three systems, on a busy machine


def _synth(tmp_path) -> tuple[bytes, bytes, bytes]:
    """Ratings of a small synthetic dataset, a popularity system's top-10 lists and random
    predictions of every (user, item) pair (a system no surrogate can match)."""
    from engine.synth import SynthConfig, generate, write_dataset

    write_dataset(generate(SynthConfig(n_users=300, n_items=200, n_ratings=12_000, seed=3)),
                  tmp_path)  # fmt: skip
    ratings = (tmp_path / "ratings.csv").read_bytes()
    frame = pd.read_csv(tmp_path / "ratings.csv", dtype=str)
    popular = frame["item_id"].value_counts().index[:10]
    rows = [f"{u},{i},{r + 1}" for u in sorted(frame["user_id"].unique())
            for r, i in enumerate(popular)]  # fmt: skip
    rng = np.random.default_rng(0)
    pairs = [f"{u},{i},{rng.uniform(1, 5):.3f}" for u in sorted(frame["user_id"].unique())
             for i in sorted(frame["item_id"].unique())]  # fmt: skip
    return (ratings, ("user,item,rank\n" + "\n".join(rows) + "\n").encode(),
            ("user,item,prediction\n" + "\n".join(pairs) + "\n").encode())  # fmt: skip


def test_upload_lists_and_see_them_side_by_side_in_the_audit(server, browser, tmp_path):
    ratings, lists, noise = _synth(tmp_path)
    page = open_app(browser.new_page(viewport={"width": 1400, "height": 1200}), server)
    load_ratings_file(page, {"name": "small.csv", "mimeType": "text/csv", "buffer": ratings}, LONG)

    page.get_by_text("Audit your own recommender").click()
    dropzone = page.locator(".st-key-upload_external [data-testid='stFileUploaderDropzoneInput']")
    file = {"name": "toplists.csv", "mimeType": "text/csv", "buffer": lists}
    put_file(page, dropzone, file)
    name = page.locator(".st-key-external_name input")
    run(page, lambda: (name.fill("mypop"), name.press("Enter")))
    run(page, page.get_by_role("button", name="Add system").click, timeout=LONG)
    expect(page.get_by_text("Systems added")).to_be_visible()
    expect(page.get_by_text("toplists.csv (lists): 3,000 rows read, 3,000 kept")).to_be_visible()
    run(page, page.locator(".st-key-external_kind").get_by_text("predictions").click)
    file = {"name": "noise.csv", "mimeType": "text/csv", "buffer": noise}
    put_file(page, dropzone, file)
    run(page, lambda: (name.fill("noisy"), name.press("Enter")))
    run(page, page.get_by_role("button", name="Add system").click, timeout=LONG)
    expect(page.get_by_text(re.compile(r"^noisy: predictions$"))).to_be_visible()
    shot(page, "external_upload")

    run(page, page.get_by_role("link", name="Bias audit").click, timeout=LONG)
    expect(page.get_by_role("heading", name="Systems side by side")).to_be_visible()
    run(page, page.get_by_role("button", name="Compare the systems").click, timeout=LONG)
    expect(page.get_by_text(re.compile(r"^mypop: \d+ flagged rows"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^SVD \(built-in\): \d+ flagged rows"))).to_be_visible()
    # System B defaults to the last system compared (noisy, predictions only): its accuracy
    # paired with the SVD's on the same held-out pairs
    expect(page.get_by_text(re.compile(r"^rmse: SVD \(built-in\) [0-9.]+, noisy "))).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Held-out ratings: the temporal split"))).to_be_visible()
    shot(page, "external_side_by_side")
    # the side by side's brief of each system, and the paired table in words (no checkbox)
    expect(page.get_by_text(re.compile(r"^mypop: NDCG@k [0-9.]+ over [0-9,]+ users"))
           ).to_be_visible()  # fmt: skip
    # ranks only: the list is shown beside the SVD's, and why there is no explanation
    run(page, page.get_by_role("link", name="Recommendations").click, timeout=LONG)
    expect(page.get_by_role("heading", name=re.compile("list beside the SVD's"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"No explanation: mypop gave no scores"))).to_be_visible()
    expect(page.locator("strong", has_text=re.compile(r"^mypop$"))).to_be_visible()
    # random predictions: the surrogate says plainly that it cannot explain the list
    system = page.locator(".st-key-surrogate_system input")  # a react-aria combobox
    system.click()
    system.press("ArrowDown")  # opens the list
    run(page, page.get_by_role("option", name="noisy", exact=True).click, timeout=LONG)
    expect(page.get_by_text(re.compile(r"The surrogate matches noisy poorly for this user \(R\^2 "
                                       r"= -?[0-9.]+.*below the threshold R\^2 = 0\.5\)"))
           ).to_be_visible()  # fmt: skip
    shot(page, "external_surrogate")
    page.close()
