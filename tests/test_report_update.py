"""The report's "Model update" section (``engine.report.update_section``), known answers.

The toy of ``tests.test_update``: a batch of 7 rows, one outside the 1-5 scale (rejected),
5 new pairs, 1 replaced rating; users u1, u2 and the new u9 refit; one new item (i99)
without an item side.
"""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from engine.analysis import Analysis, AnalysisSettings
from engine.audit import AuditConfig
from engine.cli import main
from engine.data import DataFile, load_dataset
from engine.evaluate import EvaluationConfig
from engine.report.formats import SCHEMA_PATH
from engine.report.update_section import update_origin, update_section
from engine.saved import SavedAnalysisError, read_saved, save_analysis
from tests.test_update import CONFIG, _batch_frame, _csv, _old_frame

SETTINGS = AnalysisSettings(
    model=CONFIG,
    evaluation=EvaluationConfig(folds=2, models=("SVD",)),
    audit=AuditConfig(min_group_size=2, bootstrap=20, permutations=20),
)
SCRIPTS = re.compile(r"<script.*?</script>", re.S)


@pytest.fixture(scope="module")
def updated(tmp_path_factory):
    """A (model only) saved; B = ``update A --format html,json``; its folder and printout."""
    folder = tmp_path_factory.mktemp("report_update")
    analysis = Analysis(load_dataset(DataFile("old.csv", _csv(_old_frame()))), SETTINGS)
    analysis.model  # noqa: B018  (computes the model stage, which is saved)
    a = save_analysis(analysis, folder / "A")
    (folder / "new.csv").write_bytes(_csv(_batch_frame(_old_frame())))
    args = ["update", str(a), "--ratings", str(folder / "new.csv"), "--out", str(folder / "B"),
            "--format", "html,json"]  # fmt: skip
    return folder, analysis, args


def _run(args, capsys) -> dict:
    capsys.readouterr()
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def _check_section(section: dict, analysis: Analysis) -> None:
    assert section["data_fingerprint"] == analysis.data.fingerprint
    assert section["model_key"] == analysis.key("model")
    assert section["record"] is True and section["refresh_items"] is False
    batch = section["batch"]
    assert (batch["name"], batch["rows_read"], batch["rows_kept"]) == ("new.csv", 7, 6)
    assert batch["rows_rejected"] == 1 and sum(batch["rejected"].values()) == 1
    assert (section["ratings_added"], section["ratings_replaced"]) == (5, 1)
    assert (section["users_refit"], section["new_users"], section["items_refreshed"]) == (3, 1, 0)
    assert (section["new_items"], section["new_items_without_item_side"]) == (1, 1)
    assert "largest_changes" not in section  # aggregates only: no user or item ids


def test_update_renders_the_section_in_html_and_json(updated, capsys):
    folder, analysis, args = updated
    printed = _run(args, capsys)
    report = folder / "B" / "report"
    assert sorted(p.name for p in report.iterdir()) == ["report.html", "report.json"]
    assert printed["written"] == [str(report / "report.html"), str(report / "report.json")]
    document = json.loads((report / "report.json").read_text("utf-8"))
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["schema_version"] == schema["properties"]["schema_version"]["const"]
    _check_section(document["update"], analysis)
    assert printed["report_update"] == document["update"]["reading"]
    html = SCRIPTS.sub("", (report / "report.html").read_text("utf-8"))
    section = html[html.index('<section id="update">') :]
    section = section[: section.index("</section>")]
    assert html.index('<section id="update">') < html.index('<section id="summary">')
    assert "3 users with a rating in the batch were refit exactly" in section
    assert "(1 of them new, folded in)" in section
    assert "1 new items have no bias or factors" in section
    assert "7 rows read, 6 kept, 1 rejected" in section
    assert (
        "1 batch ratings were of pairs already rated: each replaced the saved rating (1 "
        "changed value)" in section
    )
    assert analysis.data.fingerprint[:16] in section
    # the record travels in the manifest: report B re-renders the same section
    manifest = read_saved(folder / "B").manifest["derived_from"]
    assert manifest["record"]["users_refit"] == 3
    again = _run(["report", str(folder / "B"), "--out", str(folder / "X"), "--format",
                  "json,html"], capsys)  # fmt: skip
    assert "recomputed" not in again  # the update saved its evaluation and audit
    redone = json.loads((folder / "X" / "report.json").read_text("utf-8"))
    assert redone["update"] == document["update"]
    assert '<section id="update">' in (folder / "X" / "report.html").read_text("utf-8")


def test_update_origin_is_what_update_saves_and_gives_the_same_section(updated, capsys):
    """The dashboard's path: ``update_analysis`` in-process, then ``update_origin``."""
    from engine.data import LoadOptions
    from engine.update import update_analysis

    folder, analysis, args = updated
    if not (folder / "B").exists():
        _run(args, capsys)
    saved = read_saved(folder / "B").manifest["derived_from"]
    assert update_origin(saved["data"], saved["model"], saved["record"]) == saved
    batch = load_dataset(DataFile("new.csv", (folder / "new.csv").read_bytes()),
                         options=LoadOptions(scale=(1, 5)), batch=True)  # fmt: skip
    _, record = update_analysis(analysis, batch)
    origin = update_origin(analysis.data.fingerprint, analysis.key("model"), record.to_dict())
    assert origin["record"]["batch"] == saved["record"]["batch"]
    _check_section(update_section(origin), analysis)
    json.dumps(origin, allow_nan=False)  # plain JSON values only


def test_a_report_of_an_analysis_not_updated_has_no_section(updated, capsys):
    folder, _, _ = updated
    _run(["report", str(folder / "A"), "--out", str(folder / "Y"), "--format", "json,html"],
         capsys)  # fmt: skip
    document = json.loads((folder / "Y" / "report.json").read_text("utf-8"))
    assert "update" not in document
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    assert '<section id="update">' not in (folder / "Y" / "report.html").read_text("utf-8")


def test_without_a_saved_record_the_section_says_so_and_a_bad_record_is_refused(updated, capsys):
    folder, _, args = updated
    derived = {"by": "update", "data": "a" * 64, "model": "b" * 64}
    section = update_section(derived)
    assert section["record"] is False and "was not saved" in section["reading"][0]
    assert update_section(None) is None and update_section({"by": "other"}) is None
    if not (folder / "B").exists():
        _run(args, capsys)
    path = folder / "B" / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    path.write_text(json.dumps({**manifest, "derived_from": {**derived, "record": [1]}}))
    try:
        with pytest.raises(SavedAnalysisError, match="optional record object"):
            read_saved(folder / "B")
    finally:
        path.write_text(json.dumps(manifest))


def test_update_with_a_bad_format_exits_2_with_one_sentence(updated, tmp_path, capsys):
    args = updated[2]
    bad = [*args[:5], str(tmp_path / "C"), "--format", "html,docx"]
    capsys.readouterr()
    assert main(bad) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown report format(s) docx") and err.count("\n") == 1
    assert not (tmp_path / "C").exists()


def test_an_updated_reports_summary_says_first_what_its_figures_are_of(updated, capsys):
    """Its accuracy and audit are of a model retrained on the merged data, not of B."""
    import dataclasses

    from engine.report.html import executive_summary_html
    from engine.report.summary import SummaryItem
    from engine.report.update_section import SUMMARY_LEAD, with_update

    folder, analysis, args = updated
    if not (folder / "B").exists():
        _run(args, capsys)
    html = SCRIPTS.sub("", (folder / "B" / "report" / "report.html").read_text("utf-8"))
    summary = html[html.index('<section id="summary">') :]
    assert summary.index("Executive summary") < summary.index("retrains a model on the merged")
    assert summary.index("retrains a model on the merged") < summary.index("About this audit")
    assert "python -m engine compare A B --window LATER" in SUMMARY_LEAD
    assert "not of the updated model" in SUMMARY_LEAD
    not_updated = (folder / "Y" / "report.html") if (folder / "Y").exists() else None
    if not_updated is not None:
        assert "retrains a model on the merged" not in not_updated.read_text("utf-8")
    # the baseline item names the protocol its figures come from (the report's evaluation)
    baseline = SummaryItem(
        headline="The popularity baseline ranks better than SVD: NDCG@10 0.1739 vs 0.0933 "
        "(mean over the folds).", detail="", check_next="", severity=1.0, kind="evaluation",
    )  # fmt: skip
    report = dataclasses.replace(analysis.report(), summary=[baseline])
    derived = read_saved(folder / "B").manifest["derived_from"]
    (item,) = with_update(report, derived).summary
    assert item.headline == (
        "The popularity baseline ranks better than SVD in the 2-fold evaluation: NDCG@10 "
        "0.1739 vs 0.0933 (mean over its folds)."
    )
    assert "retrains a model on the merged" in executive_summary_html(with_update(report, derived))
    assert "retrains a model on the merged" not in executive_summary_html(report)
