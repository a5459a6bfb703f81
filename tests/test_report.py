"""The fairness report: schema, privacy, escaping, formula safety, reproducibility, CLI."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import tempfile
import zipfile
from dataclasses import replace
from datetime import datetime
from html import escape

import jsonschema
import numpy as np
import pandas as pd
import pytest

from engine import ConfigError, EvaluationConfig, ModelConfig, evaluate
from engine.cli import main
from engine.report import (
    SCHEMA_PATH,
    SECTIONS,
    build_report,
    neutralise_formula,
    render_csv,
    render_html,
    render_json,
    render_pdf,
)
from engine.report.findings import catalogue_shares, findings, format_p
from engine.report.write import FORMATS, MEDIA_TYPES, zip_files
from tests.conftest import (
    FORMULA_PROVIDER,
    HOSTILE_COLUMN,
    HOSTILE_FOLDER,
    HOSTILE_GENDER,
    HOSTILE_PROVIDER,
    REPORT_CREATED,
    SAMPLE_DIR,
    SECRET_USER,
    XSS_TITLES,
)

PLOTLY_JS = re.compile(r'<script type="text/javascript">.*?</script>', re.S)


@pytest.fixture(scope="module")
def rendered(hostile_report):
    report = hostile_report[-1]
    return {"html": render_html(report), "json": render_json(report), "csv": render_csv(report)}


def test_json_validates_against_the_schema(rendered, hostile_report):
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    document = json.loads(rendered["json"])
    jsonschema.Draft202012Validator(schema).validate(document)
    result = hostile_report[3]
    assert len(document["metrics"]) == len(result.metrics)
    assert document["provenance"]["dataset"]["fingerprint"] == hostile_report[0].fingerprint
    assert document["created"] == REPORT_CREATED
    assert sum(r["flag"] for r in document["metrics"]) == len(document["findings"]) > 0


def test_schema_rejects_a_report_that_leaks_a_small_group(rendered):
    schema = json.loads(SCHEMA_PATH.read_text())
    document = json.loads(rendered["json"])
    small = next(r for r in document["metrics"] if r["status"] == "insufficient data")
    small["value"] = 0.9
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_no_user_ids_or_rejected_rows_reach_any_format(rendered, hostile_report):
    data = hostile_report[0]
    assert data.report.examples["non_numeric_rating"][0]["user"] == SECRET_USER + "REJECTED"
    for name, content in rendered.items():
        text = content if isinstance(content, str) else content.decode()
        assert SECRET_USER not in text, name


def test_insufficient_groups_keep_their_size_and_lose_their_values(hostile_report, rendered):
    _data, _, _, result, report = hostile_report
    small = result.metrics[result.metrics["status"] == "insufficient data"]
    assert len(small) and set(small["group"]) == {"X"}  # 22 users < 30
    withheld = report.metrics.loc[small.index]
    assert withheld[["value", "ci_low", "ratio", "p_adjusted"]].isna().all().all()
    assert (withheld["n_users"] == small["n_users"]).all()
    yao = report.yao[report.yao["group"] == "X"]
    assert yao["value"].isna().all() and (yao["n_users"] == 22).all()
    bias = report.bias_disparity[report.bias_disparity["user_group"] == "X"]
    assert len(bias) and bias["bias_disparity"].isna().all()
    document = json.loads(rendered["json"])
    x_rows = [r for r in document["metrics"] if r["group"] == "X"]
    assert x_rows and all(r["value"] is None for r in x_rows)
    # The withheld values of X appear nowhere in the HTML (those that no shown number
    # happens to equal at the 4 digits the report prints).
    shown = {f"{v:.4g}" for v in result.metrics.drop(small.index).select_dtypes("number").stack()}
    hidden = [f"{v:.4g}" for v in small["value"].dropna()]
    hidden = [text for text in hidden if sum(c.isdigit() for c in text.lstrip("0.")) >= 4]
    checked = [text for text in hidden if text not in shown]
    assert len(checked) >= len(hidden) // 2 > 0
    html = PLOTLY_JS.sub("", rendered["html"])
    found = [t for t in checked if re.search(rf"(?<![\d.]){re.escape(t)}(?!\d)", html)]
    assert not found


def test_html_is_self_contained_and_escapes_every_data_string(rendered):
    html = rendered["html"]
    assert html.count("plotly.js v") == 1  # plotly.js inlined exactly once
    # Our markup (everything but the library) names no URL at all; the library's own URL
    # strings (its logo link, SVG namespaces) are never fetched: see the offline browser test.
    rest = PLOTLY_JS.sub("", html)
    assert "http://" not in rest and "https://" not in rest
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest, re.I)
    assert "@import" not in rest and "url(" not in rest
    for raw in (*XSS_TITLES, HOSTILE_PROVIDER, HOSTILE_GENDER, HOSTILE_COLUMN, HOSTILE_FOLDER):
        assert raw not in rest, raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rest  # shown as text in the item table
    assert "<script>alert" not in rest


def test_accuracy_vs_fairness_is_charted_only_with_models_to_compare(rendered, hostile_report):
    report = hostile_report[-1]
    assert report.tradeoff["model"].nunique() == 2  # SVD and BaselineOnly: a trade-off
    assert "lower-left is better" in rendered["html"]
    one = replace(report, tradeoff=report.tradeoff[report.tradeoff["model"] == "SVD"])
    html = render_html(one)
    assert "lower-left is better" not in html and "for the one model evaluated" in html
    # a grouping where fewer than two groups are large enough: no point to chart, and n/a
    # rather than a gap of 0
    groupings = list(report.tradeoff["grouping"].unique())
    assert len(groupings) >= 2
    lone = report.tradeoff.assign(
        max_gap=report.tradeoff["max_gap"].where(report.tradeoff["grouping"] != groupings[0]),
        groups_compared=report.tradeoff["groups_compared"].where(
            report.tradeoff["grouping"] != groupings[0], 1),
    )  # fmt: skip
    html = render_html(replace(report, tradeoff=lone))
    assert html.count("lower-left is better") == len(groupings) - 1
    assert "fewer than two groups are large enough to compare, so no gap (n/a)" in html


def test_a_share_is_read_against_the_catalogue_not_as_higher_is_better(rendered):
    # over-exposure is flagged as well as under-exposure: "higher is better" would mislead
    html = rendered["html"]
    exposure = re.search(r"<li><strong>exposure_share</strong>:[^<]*</li>", html)
    assert exposure is not None and "is better" not in exposure.group(0)
    assert "a ratio of 1 to the catalogue share is exposure in proportion" in exposure.group(0)
    rmse = re.search(r"<li><strong>rmse</strong>:[^<]*</li>", html)
    assert rmse is not None and rmse.group(0).endswith("(lower is better)</li>")


def test_csv_neutralises_formula_cells_and_keeps_numbers(rendered, hostile_report):
    rows = list(csv.DictReader(io.StringIO(rendered["csv"].decode())))
    providers = {r["group"] for r in rows if r["grouping"] == "provider"}
    assert "'" + FORMULA_PROVIDER in providers and FORMULA_PROVIDER not in providers
    frame = pd.read_csv(io.BytesIO(rendered["csv"]))
    assert len(frame) == len(hostile_report[3].metrics)
    assert frame["value"].dtype == float


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_neutralise_formula_covers_every_dangerous_start(start):
    assert neutralise_formula(start + "1+1") == "'" + start + "1+1"
    assert neutralise_formula("a" + start) == "a" + start
    assert neutralise_formula(-1.5) == -1.5


def test_same_inputs_give_identical_bytes_and_created_is_the_only_difference(hostile_report):
    data, model, evaluation, result, report = hostile_report
    again = build_report(data, model, evaluation, result,
                         created=datetime.fromisoformat(REPORT_CREATED))  # fmt: skip
    assert render_html(again) == render_html(report)
    assert render_json(again) == render_json(report)
    assert render_csv(again) == render_csv(report)
    later = build_report(data, model, evaluation, result,
                         created=datetime.fromisoformat("2027-05-06T07:08:09+00:00"))  # fmt: skip
    first, second = json.loads(render_json(report)), json.loads(render_json(later))
    assert first["created"] != second["created"]
    for doc in (first, second):
        doc.pop("created"), doc["provenance"].pop("created")
    assert first == second


def test_sections_choose_what_the_html_shows(hostile_report):
    data, model, evaluation, result, _ = hostile_report
    report = build_report(data, model, evaluation, result, sections=["provenance", "summary"])
    assert report.sections == ("summary", "provenance")  # report order, not the caller's
    html = PLOTLY_JS.sub("", render_html(report))
    assert 'id="summary"' in html and 'id="provenance"' in html and 'id="audit"' not in html
    assert len(json.loads(render_json(report))["metrics"]) == len(result.metrics)
    with pytest.raises(ConfigError, match="choose from summary, data, dataset"):
        build_report(data, model, evaluation, result, sections=["appendix"])


def test_every_section_renders_its_heading(hostile_report, rendered):
    for key, title in SECTIONS.items():
        assert f'<section id="{key}"><h2>{title}</h2>' in rendered["html"]


def _toy_metrics() -> pd.DataFrame:
    base = {"n_ratings": 0, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
            "p_adjusted": np.nan, "flag": False, "direction": ""}  # fmt: skip
    rows = [
        {**base, "family": "accuracy", "metric": "rmse", "grouping": "age", "group": "young",
         "n_users": 300, "value": 0.9, "reference_group": "young", "ratio": 1.0,
         "status": "reference", "better": "lower"},
        {**base, "family": "accuracy", "metric": "rmse", "grouping": "age", "group": "old",
         "n_users": 40, "value": 1.2, "ci_low": 1.1, "ci_high": 1.3, "reference_group": "young",
         "ratio": 1.2 / 0.9, "p_adjusted": 0.00004, "flag": True, "direction": "worse",
         "status": "flagged", "better": "lower"},
        {**base, "family": "exposure", "metric": "exposure_share", "grouping": "provider",
         "group": "indie", "n_users": 300, "value": 0.0, "ci_low": 0.0, "ci_high": 0.004,
         "reference_group": "catalogue share", "ratio": 0.0, "p_adjusted": 0.003, "flag": True,
         "direction": "under-exposed", "status": "flagged", "better": "higher"},
        {**base, "family": "exposure", "metric": "interaction_share", "grouping": "provider",
         "group": "indie", "n_users": 300, "value": 0.05, "reference_group": "catalogue share",
         "ratio": 0.25, "p_adjusted": 0.2, "status": "ok", "better": "higher"},
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_findings_state_the_numbers_in_plain_sentences():
    metrics = _toy_metrics()
    assert catalogue_shares(metrics)[("provider", "indie")] == pytest.approx(0.2)
    worse, under = findings(metrics)
    assert worse.kind == "worse" and under.kind == "under-exposed"
    assert worse.sentence == (
        "RMSE is worse for age = old: 1.2 (95% CI 1.1 to 1.3) vs 0.9 for young (ratio 1.33; "
        "lower is better; Holm-adjusted p = 4.0e-05; 40 users)."
    )
    assert under.sentence == (
        "provider = indie receives 0.0% (95% CI 0.0% to 0.4%) of the recommendation exposure, "
        "0.00 times its 20.0% share of the catalogue (under-exposed; Holm-adjusted p = 0.003)."
    )
    assert format_p(0.04) == "p = 0.04" and format_p(1e-9) == "p < 1e-6"
    assert format_p(1 / 2001, is_bound=True) == "p < 0.0005" and format_p(np.nan) == "p n/a"


def test_findings_put_user_harms_before_exposure_and_benefits(hostile_report):
    kinds = [f.kind for f in hostile_report[-1].findings]
    order = ["worse", "under-exposed", "over-exposed", "better"]
    assert kinds == sorted(kinds, key=order.index)
    assert any(
        f.metric == "rmse" and f.grouping == "age_band" and f.group == "55+"
        for f in hostile_report[-1].findings
    )


def test_report_survives_an_audit_without_flags(hostile_report):
    data, model, evaluation, result, _ = hostile_report
    calm = result.metrics.assign(flag=False, status=result.metrics["status"].replace(
        {"flagged": "ok"}), tier=result.metrics["tier"].replace({"flagged": ""}))  # fmt: skip
    report = build_report(data, model, evaluation, replace(result, metrics=calm, hints=[]))
    assert report.findings == []
    assert "No disparity is flagged." in render_html(report)
    assert "0 where a user group is served worse" in " ".join(report.headline)


def test_cli_audit_writes_the_chosen_formats(tmp_path, capsys):
    args = ["audit", str(SAMPLE_DIR), "--out", str(tmp_path), "--bootstrap", "30",
            "--user-attrs", "age_band", "--item-attrs", "provider", "--models", "SVD",
            "--format", "json,csv,html"]  # fmt: skip
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(p.rsplit("/", 1)[-1] for p in out["written"]) == [
        "metrics.csv", "report.html", "report.json"]  # fmt: skip
    assert any(s.startswith("RMSE is worse for age_band = 55+") for s in out["findings"])
    document = json.loads((tmp_path / "report.json").read_text())
    # the terminal opens with the report's executive summary, the same items in order
    assert [i["headline"] for i in out["executive_summary"]] == [
        i["headline"] for i in document["executive_summary"]]  # fmt: skip
    assert 1 <= len(out["executive_summary"]) <= 7
    assert all(i["check_next"] for i in out["executive_summary"])
    assert next(m["model"] for m in document["accuracy"]) == "SVD"
    assert {"BaselineOnly", "KNNBaseline"}.isdisjoint(m["model"] for m in document["accuracy"])


def test_cli_audit_refuses_an_unknown_format_before_any_work(tmp_path, capsys):
    assert main(["audit", str(SAMPLE_DIR), "--out", str(tmp_path), "--format", "docx"]) == 2
    assert "Unknown report format(s) docx: choose from html, json, csv, pdf" in (
        capsys.readouterr().err
    )
    assert not any(tmp_path.iterdir())


def test_cli_pdf_without_chromium_writes_the_rest_and_says_how_to_install(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("REPORT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    args = ["audit", str(SAMPLE_DIR), "--out", str(tmp_path / "out"), "--bootstrap", "30",
            "--user-attrs", "age_band", "--item-attrs", "provider", "--models", "SVD",
            "--format", "html,pdf"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "report.html written to" in err
    assert "apt-get update && apt-get install -y chromium" in err
    assert (tmp_path / "out" / "report.html").stat().st_size > 0
    assert not (tmp_path / "out" / "report.pdf").exists()


def test_zip_files_holds_each_file_byte_for_byte():
    files = {"report.json": b'{"a": 1}\n', "metrics.csv": b"x\n=1\n"}
    with zipfile.ZipFile(io.BytesIO(zip_files(files))) as archive:
        assert {n: archive.read(n) for n in archive.namelist()} == files
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    assert MEDIA_TYPES.keys() == {FORMATS[f] for f in FORMATS}


def _strict_json(content: bytes) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(content, parse_constant=refuse)


def test_derived_groupings_two_group_yao_rows_and_the_two_rmses_are_explained(
    hostile_report, rendered
):
    from engine.audit.groups import DERIVED_DEFINITIONS
    from engine.report.html import FULL_FIT_LISTS, POOLED_RMSE

    audited = set(hostile_report[-1].metrics["grouping"].astype(str))
    html = rendered["html"]
    assert "<h3>Derived groupings</h3>" in html
    for name, words in DERIVED_DEFINITIONS.items():
        # readers met 'blockbuster' and 'active' groups with no definition anywhere
        assert (f"<strong>{name}</strong>: {escape(words)}" in html) == (name in audited)
    assert "popularity propensity" in audited and "blockbuster the top 20%" in html
    assert len(hostile_report[-1].yao)  # Yao's table, with its note on two-group rows
    assert "both rows compare the same pair, so they are equal" in html
    # readers met two RMSEs (0.9235 vs 0.9236) and two coverages: each says what it is
    assert hostile_report[-1].tradeoff["model"].nunique() > 1 and POOLED_RMSE in html
    assert html.index(FULL_FIT_LISTS) > html.index("<h3>Catalogue-level measures</h3>")


def test_report_states_the_relevance_threshold_and_where_it_came_from(hostile_report, rendered):
    evaluation = _strict_json(rendered["json"])["model"]["evaluation"]
    assert evaluation["relevance_threshold"] == 4
    assert evaluation["threshold_source"] == "scale"
    rule = "relevant = rating >= 4, three quarters of the way up the 1-5 scale"
    assert evaluation["relevance_rule"] == rule
    assert f"{rule.replace('>=', '&gt;=')}." in rendered["html"]  # not rounded: 1 + 0.75 x 4


def test_undefined_ranking_metrics_are_null_in_json_and_n_a_with_the_reason_in_html(
    hostile_report,
):
    data, model, _, result, _ = hostile_report
    fast = ModelConfig(n_factors=8, n_epochs=5)
    settings = EvaluationConfig(folds=2, threshold=6, models=("SVD", "Popularity"))
    report = build_report(data, model, evaluate(data, fast, settings), result)
    document = _strict_json(render_json(report))
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    rows = {(r["model"], r["metric"]): r for r in document["accuracy"]}
    assert rows[("SVD", "ndcg")]["mean"] is None and rows[("SVD", "ndcg")]["std"] is None
    assert rows[("SVD", "rmse")]["mean"] > 0
    evaluation = document["model"]["evaluation"]
    assert evaluation["threshold_source"] == "given"
    assert (
        evaluation["relevance_rule"] == "relevant = rating >= 6, as given (the rating scale is 1-5)"
    )
    assert any("no held-out rating >= 6 in any of the 2 folds" in n for n in evaluation["notes"])
    html = render_html(report)
    section = html[html.index('<section id="model">') : html.index('<section id="audit">')]
    assert '<td class="num">n/a</td>' in section and "&mdash;" not in section
    assert "Notes on these figures (why a value is n/a" in section
    assert "no held-out rating &gt;= 6 in any of the 2 folds" in section
    assert (
        "Popularity ranks items without predicting ratings, so its RMSE and MAE are n/a." in section
    )


def test_json_writes_any_nan_or_infinity_as_null(hostile_report):
    report = hostile_report[-1]
    odd = {"nan": float("nan"), "inf": np.inf, "array": np.array([1.0, np.nan]),
           "scalar": np.float64("nan")}  # fmt: skip
    document = _strict_json(render_json(replace(report, hints=[{**odd}])))
    assert document["hints"] == [{"nan": None, "inf": None, "array": [1.0, None], "scalar": None}]


CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM}")
def test_pdf_printing_leaves_nothing_in_home_or_the_temporary_folder(tmp_path, monkeypatch):
    home, scratch = tmp_path / "home", tmp_path / "tmp"
    home.mkdir(), scratch.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    pdf = render_pdf("<!DOCTYPE html><html><body><h1>Report</h1></body></html>", CHROMIUM)
    assert pdf.startswith(b"%PDF-")
    assert list(home.rglob("*")) == []  # no ~/.config/chromium, ~/.cache, ~/.pki
    assert list(scratch.rglob("*")) == []  # the temporary profile and files are removed


SCRIPTS = re.compile(r"<script.*?</script>", re.S)


def test_report_opens_with_an_executive_summary_ranked_by_severity(hostile_report, rendered):
    report = hostile_report[-1]
    assert 1 <= len(report.summary) <= 7
    severities = [i.severity for i in report.summary]
    assert severities == sorted(severities, reverse=True)
    assert all(i.check_next and i.kind in ("flagged", "notable", "evaluation")
               for i in report.summary)  # fmt: skip
    document = json.loads(rendered["json"])
    schema = json.loads(SCHEMA_PATH.read_text())
    assert document["schema_version"] == schema["properties"]["schema_version"]["const"]
    assert [i["headline"] for i in document["executive_summary"]] == [
        i.headline for i in report.summary
    ]
    html = SCRIPTS.sub("", rendered["html"])
    summary = html.index("<h3>Executive summary</h3>")
    assert summary < html.index('<ol class="executive">') < html.index("<h3>About this audit</h3>")
    assert html.index("<h3>About this audit</h3>") < html.index('<section id="data">')
    assert html.index('<section id="data">') < html.index('<section id="dataset">')
    assert "Check next:" in html[summary : html.index("<h3>About this audit</h3>")]


def test_data_rows_are_context_and_never_counted_as_flags(hostile_report, rendered):
    report = hostile_report[-1]
    data = report.metrics[report.metrics["scope"] == "data"]
    assert len(data) and not data["flag"].any() and set(data["tier"]) <= {"context", ""}
    assert {f.metric for f in report.findings + report.notable}.isdisjoint(data["metric"])
    model = report.metrics[report.metrics["scope"] == "model"]
    assert f"{int(model['flag'].sum())} rows are flagged" in " ".join(report.headline)
    assert f"{len(report.notable)} more" in " ".join(report.headline)
    document = json.loads(rendered["json"])
    assert {"scope", "tier", "severity", "p_method", "p_is_bound", "n_raters"} <= set(
        document["metrics"][0]
    )
    assert len(document["notable"]) == len(report.notable)
    assert 'id="data"><h2>What the data shows</h2>' in rendered["html"]


def test_html_writes_p_values_only_as_the_test_can_give_them(rendered):
    text = SCRIPTS.sub("", rendered["html"])
    exponents = [int(e) for e in re.findall(r"\de-(\d+)", text)]
    assert all(e <= 6 for e in exponents)  # never "1e-300": below 1e-6 reads "< 1e-6"
    assert "&lt; 1e-300" not in text


def test_insufficient_groups_are_counted_in_a_sentence_and_listed_folded(rendered, hostile_report):
    report = hostile_report[-1]
    assert report.insufficient_note.startswith("1 group is below the minimum size of 30 users")
    html = rendered["html"]
    section = html[html.index('<section id="insufficient">') :]
    assert section.index(report.insufficient_note[:40]) < section.index("<details>")


def test_the_popularity_bias_family_is_not_headed_like_the_popularity_baseline(rendered):
    html = rendered["html"]  # the baseline "Popularity" is a model; the family is a bias
    assert "<h3>Popularity bias</h3>" in html and "<h3>Popularity</h3>" not in html
    assert "<h3>Accuracy</h3>" in html  # the other families keep their names
