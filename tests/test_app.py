"""Every page the dashboard registers renders without an exception (streamlit AppTest)."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.routes import PAGES
from engine.report import find_chromium
from tests.conftest import ROOT, SAMPLE_DIR

APP = str(ROOT / "dashboard" / "app.py")
TIMEOUT = 180


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def frame_with(at: AppTest, *columns: str):
    """The first table that has these columns (AppTest exposes no keys for dataframes)."""
    for frame in at.dataframe:
        value = frame.value
        if hasattr(value, "columns") and set(columns) <= set(value.columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def page(path: str) -> AppTest:
    at = app()
    at.switch_page(path)
    return at.run()


@pytest.mark.parametrize("route", PAGES, ids=lambda r: r.title)
def test_each_registered_page_runs(route):
    at = page(route.path)
    assert not at.exception, at.exception
    assert at.title[0].value == route.title
    assert any("Synthetic sample data" in i.value for i in at.info)


def test_data_page_shows_the_sample_profile():
    at = app().run()
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users"] == f"{truth['counts']['users']:,}"
    assert metrics["Ratings"] == f"{truth['counts']['ratings']:,}"
    assert at.title[0].value == "Data"


def test_upload_with_mapping_replaces_the_dataset_for_this_session():
    at = app().run()
    text = "who,what,stars\n" + "\n".join(
        f"p{u},m{i},{(u * 7 + i) % 5 + 1}" for u in range(12) for i in range(9) if (u + i) % 4
    )
    at.file_uploader(key="upload_ratings").set_value(("mine.csv", text.encode(), "text/csv"))
    at.run()
    assert [s.value for s in at.selectbox if s.key == "map_rating"] == ["stars"]
    at.button(key="load_upload").click().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Users"] == "12"
    assert not any("Synthetic sample data" in i.value for i in at.info)
    assert "mine.csv" in at.caption[0].value


def test_reading_options_decide_how_a_european_file_is_read():
    at = app().run()
    content = (ROOT / "tests" / "data" / "bad" / "european_mixed_decimals.csv").read_bytes()
    at.file_uploader(key="upload_ratings").set_value(("euro.csv", content, "text/csv"))
    at.selectbox(key="read_decimal").set_value("point 3.5").run()
    at.button(key="load_upload").click().run()
    assert not at.exception, at.exception
    rejected = frame_with(at, "reason", "rows")
    assert "rating is empty, NaN or not a number" in set(rejected["reason"])
    at.selectbox(key="read_decimal").set_value("comma 3,5").run()
    at.button(key="load_upload").click().run()
    assert not any("not a number" in str(f.value) for f in at.dataframe)
    assert any("were read as decimals" in w.value for w in at.warning)
    assert any("counts as relevant" in m.value for m in at.markdown)


def test_bad_upload_shows_the_engine_message_and_keeps_the_sample():
    at = app().run()
    at.file_uploader(key="upload_ratings").set_value(("bad.csv", b"\x00\x01\x02", "text/csv"))
    at.run()
    assert not at.exception
    assert any("bad.csv is binary, not a text table" in e.value for e in at.error)
    assert any("Synthetic sample data" in i.value for i in at.info)


def test_model_page_trains_and_shows_comparators():
    at = page("views/model.py")
    at.button(key="train").click().run()
    assert not at.exception, at.exception
    table = frame_with(at, "rmse", "ndcg", "coverage")
    assert list(table.index) == ["SVD", "BaselineOnly", "KNNBaseline", "Popularity"]
    assert table.loc["Popularity", "rmse"] == "n/a"


def test_recommendations_page_explains_and_switching_user_changes_the_list():
    at = page("views/recommendations.py")
    assert not at.exception, at.exception
    before = frame_with(at, "rank", "raw_prediction")["item_id"].tolist()
    assert len(before) == 10
    charts = at.get("plotly_chart")
    assert len(charts) >= 2  # factor waterfall and "because you rated" bars
    assert any("adds up to it" in c.value for c in at.caption)
    user = at.selectbox(key="recs_user").value
    other = "u0002" if user != "u0002" else "u0003"
    at.selectbox(key="recs_user").set_value(other).run()
    assert not at.exception
    after = frame_with(at, "rank", "raw_prediction")["item_id"].tolist()
    assert after != before


def test_audit_and_report_pages_run_the_audit_and_offer_downloads():
    at = page("views/audit.py")
    at.button(key="run_audit").click().run()
    assert not at.exception, at.exception
    flagged = frame_with(at, "direction", "p_adjusted", "family")
    assert ((flagged["metric"] == "rmse") & (flagged["group"] == "55+")).any()
    at.switch_page("views/report.py").run()
    assert not at.exception, at.exception
    keys = {b.key for b in at.get("download_button")}
    assert keys == {"download_html", "download_json", "download_csv", "download_zip"}
    at.multiselect(key="report_sections").set_value(["provenance", "summary"]).run()
    at.toggle(key="preview_report").set_value(True).run()
    (preview,) = at.get("iframe")
    html = preview.proto.srcdoc
    assert 'id="summary"' in html and 'id="provenance"' in html and 'id="audit"' not in html
    assert "RMSE is worse for age_band = 55+" in html
    if find_chromium() is not None:
        at.button(key="build_pdf").click().run()
        assert not at.exception, at.exception
        labels = {b.key: b.proto.label for b in at.get("download_button")}
        assert labels["download_pdf"] == "report.pdf"
        assert labels["download_zip"] == "All four formats (zip)"


def test_report_page_without_chromium_offers_html_and_says_how_to_get_the_pdf(monkeypatch):
    monkeypatch.setenv("REPORT_CHROMIUM", "/nonexistent/chromium")
    at = page("views/audit.py")
    at.button(key="run_audit").click().run()
    at.switch_page("views/report.py").run()
    assert not at.exception, at.exception
    assert at.button(key="build_pdf").proto.disabled
    assert any("apt-get update && apt-get install -y chromium" in c.value for c in at.caption)
    assert "download_html" in {b.key for b in at.get("download_button")}


def test_an_error_escaping_a_page_is_one_message_and_other_pages_keep_working(monkeypatch):
    from dashboard import state

    def broken(data):
        raise RuntimeError("profile exploded")

    monkeypatch.setattr(state, "profile", broken)
    at = page("views/data.py")
    assert not at.exception, at.exception
    (message,) = [e.value for e in at.error]
    assert message.startswith("The Data page hit an unexpected problem (RuntimeError: profile")
    at.switch_page("views/recommendations.py").run()
    assert not at.exception and not at.error
    assert frame_with(at, "rank", "raw_prediction") is not None
