"""Every page the dashboard registers renders without an exception (streamlit AppTest)."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.routes import PAGES
from tests.conftest import ROOT, SAMPLE_DIR

APP = str(ROOT / "dashboard" / "app.py")


def test_data_profile_page_shows_the_sample_labelled_synthetic():
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users"] == f"{truth['counts']['users']:,}"
    assert metrics["Ratings"] == f"{truth['counts']['ratings']:,}"
    assert any("Synthetic sample data" in i.value for i in at.info)
    assert at.title[0].value == "Data profile"


@pytest.mark.parametrize("route", PAGES, ids=lambda r: r.title)
def test_each_registered_page_runs(route):
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(route.path)
    at.run()
    assert not at.exception
    assert at.title[0].value == route.title
