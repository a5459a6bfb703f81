"""The comparison report (``engine.report.comparison``, ``compare --out --format``)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest

from engine.cli import main
from engine.compare import compare_models
from engine.report.comparison import COMPARISON_FILES, render_comparison
from engine.report.comparison_html import INTERVAL_ONLY_TRACE, VERDICT_COLOURS, difference_chart
from engine.report.pdf import find_chromium
from tests.test_compare import CONFIG, _row, saved, toy  # noqa: F401  (fixtures)

SCRIPTS = re.compile(r"<script.*?</script>", re.S)


def _toy_compared(window: pd.DataFrame) -> dict:
    version = {"dataset": "toy", "fingerprint": "f" * 64, "model_key": "k" * 64,
               "model": "SVD (surprise engine), 3 factors, 20 epochs", "ratings": 40,
               "users": 40, "items": 6, "first_rating": None, "last_rating": None}  # fmt: skip
    return {"a": {**version, "name": "A <old>"}, "b": {**version, "name": "B"}, "relation": "",
            "window": {"name": "w.csv", "ratings": len(window),
                       "users": window["user_id"].nunique(), "items": window["item_id"].nunique(),
                       "first_rating": None, "last_rating": None}}  # fmt: skip


def test_chart_colours_each_group_by_its_verdict(toy):  # noqa: F811
    """Team x: RMSE 1 -> 0 (improved, green); team y: 1 -> 1.5 (worsened, red)."""
    a, b, window, users, items = toy
    rows = compare_models(a, b, window, CONFIG, users=users, items=items).rows
    rmse = rows[(rows["metric"] == "RMSE") & (rows["grouping"] == "team")]
    fig = difference_chart(rmse, "RMSE")
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"improved", "worsened"}
    assert traces["improved"].marker.color == VERDICT_COLOURS["improved"]
    assert list(traces["improved"].y) == ["team = x"]
    assert list(traces["improved"].x) == pytest.approx([-1.0])
    assert list(traces["worsened"].x) == pytest.approx([0.5])
    x = _row(rows, "RMSE", "team", "x")
    assert traces["improved"].error_x.array[0] == pytest.approx(x["ci_high"] - x["difference"])


def test_report_files_carry_the_rows_sentences_and_method(toy):  # noqa: F811
    a, b, window, users, items = toy
    comparison = compare_models(a, b, window, CONFIG, users=users, items=items)
    files = render_comparison(comparison, _toy_compared(window), "csv,json,html")
    assert list(files) == [COMPARISON_FILES[f] for f in ("html", "json", "csv")]
    document = json.loads(files["comparison.json"])
    assert document["sentences"] == comparison.sentences
    assert len(document["rows"]) == len(comparison.rows)
    x = next(r for r in document["rows"] if (r["metric"], r["group"]) == ("RMSE", "x"))
    assert (x["value_a"], x["value_b"], x["difference"], x["verdict"]) == (1.0, 0.0, -1.0,
                                                                         "improved")  # fmt: skip
    assert any("Holm's correction within one (metric, grouping)" in m for m in document["method"])
    assert any("999 permutations" in m and "100 replicates" in m for m in document["method"])
    csv = pd.read_csv(pd.io.common.BytesIO(files["comparison.csv"]))
    assert len(csv) == len(comparison.rows) and "verdict" in csv
    html = files["comparison.html"].decode()
    text = SCRIPTS.sub("", html)
    for section in ("compared", "summary", "charts", "rows", "method"):
        assert f'<section id="{section}">' in text
    assert "A &lt;old&gt;" in text and "A <old>" not in text  # data strings escaped
    assert "improved it for team = x" in text
    # one chart per metric with a tested row: RMSE, NDCG@2 and exposure: kind
    tested = comparison.rows[comparison.rows["verdict"] != "insufficient data"]
    assert html.count('class="chart"') == tested["metric"].nunique()


def test_cli_writes_the_comparison_report(saved, capsys):  # noqa: F811
    out = saved / "report"
    capsys.readouterr()
    assert main(["compare", str(saved / "A"), str(saved / "B"), "--window",
                 str(saved / "window.csv"), "--out", str(out), "--format", "html,json,csv",
                 "--permutations", "200", "--min-group-size", "5"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    names = ["comparison.html", "comparison.json", "comparison.csv"]
    assert printed["written"] == [str(out / n) for n in names]
    document = json.loads((out / "comparison.json").read_text("utf-8"))
    compared = document["compared"]
    assert compared["a"]["name"] == str(saved / "A") and compared["b"]["name"] == str(saved / "B")
    assert compared["relation"] == "B is A's model updated (not retrained) with new.csv."
    window = compared["window"]  # ratings 400-599 of the toy, T0 + 9000 to T0 + 9199 s
    assert (window["name"], window["ratings"]) == ("window.csv", 200)
    assert window["first_rating"] == "2020-09-13T14:56:40+00:00"  # T0 = 12:26:40 + 2.5 h
    assert window["last_rating"] == "2020-09-13T14:59:59+00:00"
    assert compared["a"]["last_rating"] == "2020-09-13T12:48:19+00:00"  # T0 + 1000 + 299 s
    assert compared["b"]["ratings"] == compared["a"]["ratings"] + 100
    assert document["counts"]["pairs_used"] == 200
    assert {"RMSE", "NDCG@10"} <= {r["metric"] for r in document["rows"]}
    html = SCRIPTS.sub("", (out / "comparison.html").read_text("utf-8"))
    assert "from 2020-09-13 to 2020-09-13" in html and "200 ratings scored by both" in html
    assert "A predicted 0 of them by its fallback (0 users it had not seen" in html
    assert document["schema_version"] == "1.3"
    assert compared["a"]["model"] == "SVD (surprise engine), 3 factors, 20 epochs"
    assert (compared["window"]["users"], compared["window"]["items"]) == (40, 15)
    assert "<td>SVD (surprise engine), 3 factors, 20 epochs</td>" in html
    assert (document["counts"]["n_fallback_a"], document["counts"]["n_fallback_b"]) == (0, 0)
    rows = pd.read_csv(out / "comparison.csv")
    assert len(rows) == len(document["rows"])


def test_chart_marks_interval_only_rows_open_and_leaves_out_unlisted_groups():
    """A row whose interval excludes 0 without a significant test is an open circle of the
    "no significant change" colour; an item group neither version lists (0 and 0) and a
    group of insufficient data are not drawn."""
    base = {"metric": "exposure: genre", "grouping": "genre", "value_a": 0.2, "value_b": 0.3,
            "difference": 0.1, "ci_low": 0.05, "ci_high": 0.15}  # fmt: skip
    rows = pd.DataFrame([
        {**base, "group": "drama", "verdict": "higher"},
        {**base, "group": "noir", "verdict": "no significant change"},  # interval excludes 0
        {**base, "group": "war", "verdict": "no significant change", "ci_low": -0.05},
        {**base, "group": "silent", "verdict": "no significant change", "value_a": 0.0,
         "value_b": 0.0, "difference": 0.0, "ci_low": 0.0, "ci_high": 0.0},
        {**base, "group": "tiny", "verdict": "insufficient data"},
    ])  # fmt: skip
    traces = {t.name: t for t in difference_chart(rows, "genre").data}
    assert set(traces) == {"higher", "no significant change", INTERVAL_ONLY_TRACE}
    assert list(traces[INTERVAL_ONLY_TRACE].y) == ["genre = noir"]
    assert list(traces["higher"].x) == pytest.approx([10.0])  # +0.1 share: +10 points
    assert list(traces["higher"].error_x.array) == pytest.approx([5.0])
    fig = difference_chart(rows, "genre")
    assert fig.layout.xaxis.title.text == "difference B - A (percentage points)"
    assert traces[INTERVAL_ONLY_TRACE].marker.symbol == "circle-open"
    assert traces[INTERVAL_ONLY_TRACE].marker.color == VERDICT_COLOURS["no significant change"]
    assert list(traces["no significant change"].y) == ["genre = war"]
    # 0 under both versions leaves out an exposure group only: a user group's NDCG is drawn
    ndcg = rows.iloc[[3]].assign(metric="NDCG@10", grouping="age", group="56+")
    assert [list(t.y) for t in difference_chart(ndcg, "NDCG@10").data] == [["age = 56+"]]


@pytest.mark.parametrize(
    "extra, fragment",
    [(["--out", "OUT", "--format", "html,docx"], "Unknown report format(s) docx"),
     (["--format", "html"], "--format html needs --out")],
)  # fmt: skip
def test_cli_bad_format_exits_2_with_one_sentence(saved, tmp_path, capsys, extra, fragment):  # noqa: F811
    capsys.readouterr()
    extra = [str(tmp_path / "o") if e == "OUT" else e for e in extra]
    args = ["compare", str(saved / "A"), str(saved / "B"), "--window", str(saved / "window.csv")]
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium to print the PDF")
def test_cli_prints_the_comparison_to_pdf(saved, capsys):  # noqa: F811
    out = saved / "pdf"
    assert main(["compare", str(saved / "A"), str(saved / "B"), "--window",
                 str(saved / "window.csv"), "--out", str(out), "--format", "pdf",
                 "--permutations", "50", "--bootstrap", "20"]) == 0  # fmt: skip
    assert (out / "comparison.pdf").read_bytes().startswith(b"%PDF")


def test_rows_read_with_the_project_numbers_and_mark_an_interval_that_holm_overrules(toy):  # noqa: F811
    """A row whose interval excludes 0 while Holm finds no significant change is marked."""
    import dataclasses

    import numpy as np

    from engine.compare.text import INTERVAL_ONLY, display_rows

    a, b, window, users, items = toy
    comparison = compare_models(a, b, window, CONFIG, users=users, items=items)
    rows = comparison.rows.copy()
    x = rows.index[
        (rows["metric"] == "RMSE") & (rows["grouping"] == "team") & (rows["group"] == "x")
    ][0]
    rows.loc[x, ["value_a", "value_b", "difference", "ci_low", "ci_high", "p_adjusted"]] = [
        1.021,
        1.03,
        4.568e-06,
        0.0012,
        0.0141,
        0.12,
    ]
    rows.loc[x, "verdict"] = "no significant change"
    shown = display_rows(rows, CONFIG.min_group_size)
    assert list(shown.columns[:4]) == ["Metric", "Grouping", "Group", "Users"]
    marked = shown.loc[x]
    assert (marked["A"], marked["B"], marked["B - A"]) == ("1.021", "1.03", "+0.0000")
    assert marked["95% interval of B - A"] == "+0.0012 to +0.0141"
    assert (marked["p (Holm)"], marked["Note"]) == ("0.12", INTERVAL_ONLY)
    untested = shown[rows["verdict"] == "insufficient data"]
    assert len(untested) and (untested["95% interval of B - A"] == "—").all()
    assert (untested["p"] == "—").all() and untested["Note"].str.startswith("not tested: ").all()
    assert list(shown.index[shown["Note"] == INTERVAL_ONLY]) == [x]  # only that row
    files = render_comparison(dataclasses.replace(comparison, rows=rows), _toy_compared(window),
                              "json,html")  # fmt: skip
    document = json.loads(files["comparison.json"])
    assert any("the 95% interval is per row and not adjusted" in m for m in document["method"])
    text = SCRIPTS.sub("", files["comparison.html"].decode())
    table = text[text.index('<section id="rows">') :]
    assert INTERVAL_ONLY in table and "+0.0012 to +0.0141" in table
    assert "e-0" not in table and "None" not in table and "nan" not in table
    assert "<th>95% interval of B - A</th>" in table and "<th>Catalogue share</th>" in table
    assert np.isfinite(rows.loc[x, "ci_low"])
