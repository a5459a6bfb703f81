"""A run kept in Spark opened again without Spark: its report, and the dashboard's read-only pages.

The kept run here is made without Spark: ``report_parts`` of the hostile sample (names that
are markdown and HTML) stored by ``save_kept``, which is what ``run --keep-in-spark`` stores
from the parts it computes in Spark (``tests/test_spark_report.py`` checks those parts).
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from dataclasses import asdict
from datetime import datetime

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.routes import KEPT_PAGES, PAGES
from engine.analysis import Analysis
from engine.report import read_audit, render
from engine.report.build import report_parts
from engine.report.reading import read_audit_parts
from engine.saved import save_analysis
from engine.saved.kept import is_kept, open_kept, save_kept
from engine.text import literal_markdown
from tests.conftest import REPORT_CREATED, ROOT

APP = str(ROOT / "dashboard" / "app.py")
FORMATS = ["html", "json", "csv"]


@pytest.fixture(scope="module")
def kept(hostile_report, tmp_path_factory):
    """``(folder, zip bytes)`` of a kept run of the hostile sample (its report's parts)."""
    data, model, evaluation, result, _ = hostile_report
    created = datetime.fromisoformat(REPORT_CREATED)
    folder = tmp_path_factory.mktemp("kept") / "run"
    parts = report_parts(data, model, evaluation, result, created)
    save_kept(folder, parts, result, "file:///elsewhere/evaluation")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"run/{path.relative_to(folder)}")
    return folder, buffer.getvalue()


def test_the_kept_report_of_in_memory_parts_is_the_report_byte_for_byte(hostile_report, kept):
    """``build_report`` = ``assemble_report`` of ``report_parts``, so a kept run's report
    opened from its folder or from a zip of it is the in-memory report, byte for byte."""
    folder, content = kept
    report = hostile_report[-1]
    archive = folder.parent / "run.zip"
    archive.write_bytes(content)
    assert is_kept(folder) and is_kept(archive)
    for source in (folder, archive):
        assert render(open_kept(source).report(), FORMATS) == render(report, FORMATS)
    assert open_kept(archive).key == open_kept(folder).key  # the same files


def test_a_saved_analysis_or_any_zip_is_not_a_kept_run(hostile_report, tmp_path):
    data, model = hostile_report[:2]
    assert not is_kept(tmp_path)  # an empty folder
    (tmp_path / "notes.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip
    assert not is_kept(tmp_path / "notes.zip")
    assert not is_kept(tmp_path / "absent.zip")
    analysis = Analysis(data)
    analysis.adopt("model", model)
    saved = save_analysis(analysis, tmp_path / "analysis")
    assert not is_kept(saved)


def test_the_reading_of_a_kept_audit_is_the_in_memory_reading(hostile_report, kept):
    """``read_audit_parts`` on the stored accuracy and settings gives what ``read_audit``
    gives on the evaluation: the same summary, tiers and insufficient groups."""
    data, _, evaluation, result, _ = hostile_report
    run = open_kept(kept[0])
    stored = read_audit_parts(run.result, run.parts.accuracy, run.parts.evaluation, data.n_users)
    direct = read_audit(result, evaluation, data.n_users)
    assert [asdict(i) for i in stored.summary] == [asdict(i) for i in direct.summary]
    assert stored.summary and stored.flagged["metric"].tolist() == direct.flagged["metric"].tolist()
    assert stored.insufficient.equals(direct.insufficient)
    assert stored.insufficient_note == direct.insufficient_note


def _session(token: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    if token is not None:
        at.query_params["session"] = token
    return at.run()


def _open_upload(content: bytes) -> AppTest:
    at = _session()
    at.file_uploader(key="upload_analysis").set_value(("my run.zip", content, "application/zip"))
    at.run()
    at.button(key="open_analysis").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def test_an_uploaded_kept_run_opens_its_read_only_pages_and_closes(
    hostile_report, kept, sessions_dir
):
    data = hostile_report[0]
    run = open_kept(kept[0])
    at = _open_upload(kept[1])
    assert at.title[0].value == "Data"
    assert any("A run whose ratings stayed in Spark" in i.value for i in at.info)
    assert any(
        "so it has no User profile, Recommendations, Over time or Compare versions page" in i.value
        for i in at.info
    )
    assert any(literal_markdown("my run.zip") in c.value for c in at.caption)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Users"] == f"{data.n_users:,}" and shown["Ratings"] == f"{data.n_ratings:,}"
    assert not at.get("file_uploader")  # nothing to upload into a run read only

    at.switch_page("views/kept_model.py").run()
    assert not at.exception and not at.error
    table = next(f.value for f in at.dataframe if "rmse" in getattr(f.value, "columns", ()))
    svd = run.parts.accuracy.set_index(["model", "metric"]).loc[("SVD", "rmse")]
    assert table.loc["SVD", "rmse"] == f"{svd['mean']:.4f} ± {svd['std']:.4f}"
    assert table.loc["BaselineOnly", "ndcg"].count("±") == 1

    at.switch_page("views/kept_audit.py").run()
    assert not at.exception and not at.error
    reading = read_audit(hostile_report[3], hostile_report[2], data.n_users)
    headers = [s.value for s in at.subheader]
    assert f"Flagged disparities ({len(reading.flagged)})" in headers
    summary = [m.value for m in at.markdown if m.value.startswith("**1. ")]
    assert summary == [f"**1. {literal_markdown(reading.summary[0].headline)}** "
                       f"`{reading.summary[0].kind}`"]  # fmt: skip
    fairness = at.selectbox(key="fairness_attr")
    assert fairness.options == list(dict.fromkeys(run.parts.tradeoff["grouping"]))
    ranking = at.selectbox(key="ranking_grouping")
    assert ranking.options == list(dict.fromkeys(run.parts.ranking_by_group["grouping"]))

    at.switch_page("views/report.py").run()
    assert not at.exception and not at.error
    at.toggle(key="preview_report").set_value(True).run()
    (preview,) = at.get("iframe")
    assert preview.proto.srcdoc == render(run.report(), ["html"])["report.html"].decode()

    at.switch_page("views/kept_data.py").run()
    at.button(key="leave_kept").click().run()
    assert not at.exception and not at.error
    assert any("Synthetic sample data" in i.value for i in at.info)  # back on the sample
    assert at.get("file_uploader")


def test_kept_pages_are_the_read_only_subset_of_the_pages():
    titles = {route.title for route in PAGES}
    assert {route.title for route in KEPT_PAGES} <= titles
    assert len({route.path for route in KEPT_PAGES}) == len(KEPT_PAGES)
    assert all((ROOT / "dashboard" / route.path).is_file() for route in KEPT_PAGES)


def test_a_kept_reading_names_the_protocol_the_run_stored(kept):
    """The summary's "popularity ranks better" item says which evaluation it comes from,
    read from the stored settings (a kept run has no folds to ask)."""
    run = open_kept(kept[0])
    accuracy = run.parts.accuracy.copy()
    accuracy["model"] = accuracy["model"].replace({"BaselineOnly": "Popularity"})
    better = (accuracy["model"] == "Popularity") & (accuracy["metric"] == "ndcg")
    accuracy.loc[better, "mean"] += 0.5  # far above the SVD's
    for folds in (5, 3):
        settings = {**run.parts.evaluation, "folds": folds}
        reading = read_audit_parts(run.result, accuracy, settings, run.parts.profile.n_users)
        (item,) = [i for i in reading.summary if i.kind == "evaluation"]
        assert item.headline.startswith(
            f"The popularity baseline ranks better than SVD in the {folds}-fold evaluation"
        )


def test_an_uploaded_kept_run_is_kept_across_a_refresh_until_closed(kept, sessions_dir):
    """The run is kept under the session's token beside its analysis: a new browser session
    with the link opens it again; closing it deletes it, and with nothing else kept the
    link is dropped."""
    at = _open_upload(kept[1])
    token = at.query_params["session"]
    again = _session(token)
    assert not again.exception and not again.error
    assert again.title[0].value == "Data"
    assert any(literal_markdown("my run.zip") in c.value for c in again.caption)
    assert any("A run whose ratings stayed in Spark" in i.value for i in again.info)
    (folder,) = [f for f in sessions_dir.iterdir() if f.name.endswith(".kept")]
    again.button(key="leave_kept").click().run()
    assert not again.exception and not again.error
    assert not folder.exists() and "session" not in again.query_params
    later = _session(token)
    assert any("Synthetic sample data" in i.value for i in later.info)
    assert any("No work is saved for this link" in w.value for w in later.warning)


def test_a_kept_run_over_the_session_cap_opens_and_says_a_refresh_loses_it(
    kept, sessions_dir, monkeypatch
):
    monkeypatch.setenv("RECSYS_SESSION_MAX_MB", "0.001")  # 1 KB: less than any run
    at = _open_upload(kept[1])
    assert at.title[0].value == "Data" and "session" not in at.query_params
    assert any("a refresh will lose it" in w.value for w in at.warning)
    assert not sessions_dir.exists() or not any(sessions_dir.iterdir())


def test_forget_my_data_deletes_the_kept_run_too(kept, sessions_dir):
    at = _open_upload(kept[1])
    assert [f.name.endswith(".kept") for f in sessions_dir.iterdir()] == [True]
    at.button(key="forget_my_data").click().run()
    assert not any(sessions_dir.iterdir())
    assert any("Synthetic sample data" in i.value for i in at.info)


def test_a_server_started_on_a_kept_folder_opens_every_session_on_it(
    kept, started_on, sessions_dir, tmp_path
):
    at = started_on(kept[0])
    assert not at.exception and not at.error
    assert at.title[0].value == "Data"
    assert any(literal_markdown(str(kept[0])) in c.value for c in at.caption)
    assert "session" not in at.query_params  # the server's run: nothing of the analyst's kept
    at.button(key="leave_kept").click().run()  # this session leaves it, for the sample
    assert any("Synthetic sample data" in i.value for i in at.info)
    broken = tmp_path / "broken"
    shutil.copytree(kept[0], broken)
    table = broken / "kept" / "parts" / "accuracy.parquet"
    table.write_bytes(table.read_bytes()[:-8] + b"tampered")
    at = started_on(broken)
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "accuracy.parquet does not match its SHA-256" in error.replace("\\", "")


def test_report_cli_writes_a_zipped_kept_runs_report_again(kept, tmp_path, capsys):
    from engine.cli import main

    archive = tmp_path / "run.zip"
    archive.write_bytes(kept[1])
    assert main(["report", str(archive), "--out", str(tmp_path / "again"), "--format",
                 "json,csv"]) == 0  # fmt: skip
    expected = render(open_kept(kept[0]).report(), ["json", "csv"])
    for name, content in expected.items():
        assert (tmp_path / "again" / name).read_bytes() == content
    archive.write_bytes(kept[1][:-100])  # a truncated zip: one sentence, no traceback
    assert main(["report", str(archive), "--out", str(tmp_path / "broken")]) != 0
    said = capsys.readouterr().err
    assert "Traceback" not in said and str(archive) in said


def test_the_page_withholds_small_groups_values_as_the_report_does(kept, sessions_dir):
    """The sentence under "Groups below the minimum size" says their values are withheld:
    the page's rows and the report's carry none for them, and the table says so."""
    run = open_kept(kept[0])
    reading = read_audit_parts(run.result, run.parts.accuracy, run.parts.evaluation,
                               run.parts.profile.n_users)  # fmt: skip
    small = reading.metrics[reading.metrics["status"] == "insufficient data"]
    assert len(small) and "their values are withheld" in reading.insufficient_note
    assert small[["value", "ci_low", "ci_high", "ratio", "p_value"]].isna().all().all()
    computed = run.result.metrics[run.result.metrics["status"] == "insufficient data"]
    assert computed["value"].notna().any()  # the audit has them; the reading withholds them
    report = json.loads(render(run.report(), ["json"])["report.json"])
    shown = {(r["metric"], r["grouping"], r["group"]): r["value"] for r in report["metrics"]}
    assert all(shown[(r.metric, r.grouping, r.group)] is None for r in small.itertuples())
    at = _open_upload(kept[1])
    at.switch_page("views/kept_audit.py").run()
    row = small.iloc[0]
    at.selectbox(key="audit_family").set_value(row["family"]).run()
    at.selectbox(key="audit_metric").set_value(row["metric"]).run()
    at.selectbox(key="audit_grouping").set_value(row["grouping"]).run()
    assert not at.exception and not at.error
    assert any("withheld, as in the report" in c.value for c in at.caption)
    yao = next(f.value for f in at.dataframe if "non_parity" in getattr(f.value, "columns", ()))
    minimum = run.result.config.min_group_size
    few = yao["n_users"] < minimum
    assert few.any() and yao.loc[few, ["value", "absolute", "non_parity"]].isna().all().all()
    assert yao.loc[~few, "value"].notna().all()


def test_both_model_pages_write_mean_and_spread_alike():
    """``mean_std_table``: 4 decimals (2 for fit time), n/a for an undefined metric or a
    missing row, "± n/a" for one fold, models in their first order."""
    import pandas as pd

    from dashboard.components import mean_std_table

    accuracy = pd.DataFrame(
        [("SVD", "rmse", 0.92354, 0.00884), ("SVD", "fit_seconds", 1.234, 0.05),
         ("Popularity", "rmse", float("nan"), float("nan")), ("Popularity", "ndcg", 0.17, None),
         ("SVD", "ndcg", 0.0777, 0.0026)],
        columns=["model", "metric", "mean", "std"],
    )  # fmt: skip
    table = mean_std_table(accuracy, ["rmse", "ndcg", "fit_seconds"])
    assert table.index.tolist() == ["SVD", "Popularity"]
    assert table.loc["SVD"].tolist() == ["0.9235 ± 0.0088", "0.0777 ± 0.0026", "1.23 ± 0.05"]
    assert table.loc["Popularity"].tolist() == ["n/a", "0.1700 ± n/a", "n/a"]
