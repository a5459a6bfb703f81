"""Monitoring over time (engine.monitor): windows, data per window, rolling models, drift flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.data import load_dataset
from engine.errors import ConfigError
from engine.monitor import MonitorConfig, monitor
from engine.monitor_windows import assign_windows, make_windows
from engine.text import literal_markdown
from tests.conftest import ROOT

MONTHS = ["2020-01", "2020-02", "2020-03", "2020-04"]
FAST = MonitorConfig(min_ratings=100, min_group_size=10, bootstrap=100, permutations=400)


def _epoch(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").timestamp())


def toy_ratings(shift: bool, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """120 users (F/M alternating) x 8 distinct items a month over 4 months, 60 items.

    Users 110-119 join in February; items i60-i64 appear from March. With ``shift``, every
    March rating of a woman is 2 stars lower (floored at 1). A fifth month (2020-05) holds
    three ratings only: insufficient data.
    """
    rng = np.random.default_rng(seed)
    item_effect = rng.normal(0, 0.7, 65)
    rows = []
    for u in range(120):
        items = rng.permutation(60)
        for m, month in enumerate(MONTHS):
            if u >= 110 and m == 0:
                continue
            chosen = list(items[8 * m : 8 * m + 8])
            if m >= 2 and u % 3 == 0:
                chosen[0] = 60 + (u + m) % 5  # new items from March
            start = _epoch(f"{month}-01")
            for j, i in enumerate(chosen):
                rating = float(np.clip(np.round(3.4 + item_effect[i] + rng.normal(0, 0.6)), 1, 5))
                if shift and month == "2020-03" and u % 2 == 0:
                    rating = max(1.0, rating - 2)
                rows.append((f"u{u:03d}", f"i{i:02d}", rating, start + 3600 * (1 + u + 40 * j)))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    frame = frame.drop_duplicates(["user_id", "item_id"])
    late = pd.DataFrame({"user_id": ["u001", "u002", "u003"], "item_id": ["i64", "i63", "i62"],
                         "rating": [4.0, 3.0, 5.0],
                         "timestamp": [_epoch("2020-05-02")] * 3})  # fmt: skip
    late = late[~late.set_index(["user_id", "item_id"]).index.isin(
        frame.set_index(["user_id", "item_id"]).index)]  # fmt: skip
    users = pd.DataFrame({"user_id": [f"u{u:03d}" for u in range(120)],
                          "gender": ["F" if u % 2 == 0 else "M" for u in range(120)]})  # fmt: skip
    return pd.concat([frame, late], ignore_index=True), users


def write_toy(folder: Path, shift: bool, timestamps: bool = True, providers: bool = False) -> Path:
    """The toy as CSV files; ``providers`` adds items.csv (even items "Even Co", odd "Odd Co")."""
    ratings, users = toy_ratings(shift)
    if not timestamps:
        ratings = ratings.drop(columns="timestamp")
    folder.mkdir(parents=True, exist_ok=True)
    ratings.to_csv(folder / "ratings.csv", index=False)
    users.to_csv(folder / "users.csv", index=False)
    if providers:
        items = sorted(ratings["item_id"].unique())
        pd.DataFrame({"item_id": items, "provider": ["Even Co" if int(i[1:]) % 2 == 0
                                                     else "Odd Co" for i in items]}).to_csv(
            folder / "items.csv", index=False)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    data = load_dataset(write_toy(tmp_path_factory.mktemp("shifted"), shift=True))
    return data, monitor(data, "month", FAST)


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    data = load_dataset(write_toy(tmp_path_factory.mktemp("control"), shift=False))
    return data, monitor(data, "month", FAST)


# --- windows ---------------------------------------------------------------------------


def test_calendar_windows_and_their_boundaries():
    times = np.array([_epoch("2020-01-31 23:59:59"), _epoch("2020-02-01"),
                      _epoch("2020-04-15"), np.nan], dtype=float)  # fmt: skip
    months = make_windows(times, "month")
    assert months["label"].tolist() == MONTHS
    assert months["start"].iloc[1] == _epoch("2020-02-01")
    assert assign_windows(times, months).tolist() == [0, 1, 3, -1]
    weeks = make_windows(times, "week")
    assert weeks["label"].iloc[0] == "2020-01-27"  # the Monday of 31 Jan 2020
    assert pd.Timestamp(int(weeks["start"].iloc[0]), unit="s").day_name() == "Monday"
    ten = make_windows(times, "10d")
    assert ten["start"].iloc[0] == _epoch("2020-01-31") and len(ten) == 8
    assert make_windows(times, "quarter")["label"].tolist() == ["2020Q1", "2020Q2"]
    with pytest.raises(ConfigError, match="Unknown window"):
        make_windows(times, "fortnight")


# --- data per window ---------------------------------------------------------------------


def test_data_per_window_matches_a_count_by_hand(shifted):
    data, result = shifted
    r = data.ratings.assign(month=pd.to_datetime(data.ratings["timestamp"].astype("int64"),
                                                 unit="s").dt.strftime("%Y-%m"))  # fmt: skip
    table = result.data.set_index("label")
    assert table.index.tolist() == [*MONTHS, "2020-05"]
    by_month = r.groupby("month")
    assert table["n_ratings"].to_dict() == by_month.size().to_dict()
    assert table["n_users"].to_dict() == by_month["user_id"].nunique().to_dict()
    np.testing.assert_allclose(table["rating_mean"], by_month["rating"].mean().to_numpy())
    assert table["new_users"].tolist() == [110, 10, 0, 0, 0]
    assert table["new_items"].tolist()[2] == 5 and table["new_items"].tolist()[3:] == [0, 0]
    dist = result.distribution
    assert np.allclose(dist.groupby("window")["share"].sum(), 1.0)
    assert table["gini"].min() >= 0 and table["gini"].max() < 1


def test_a_tiny_window_is_insufficient_data(shifted):
    _, result = shifted
    last = result.windows.iloc[-1]
    assert last["label"] == "2020-05" and last["status"] == "insufficient data"
    assert "ratings (< 100)" in last["reason"]
    assert 4 not in result.quality["window"].tolist()  # no model for it
    rows = result.changes[result.changes["window"] == 4]
    assert len(rows) and (rows["status"] == "insufficient data").all()
    assert rows["p_value"].isna().all() and (rows["tier"] == "").all()


# --- models trained before their window ---------------------------------------------------


def test_each_window_is_predicted_by_a_model_trained_only_before_it(shifted):
    data, result = shifted
    q = result.quality.merge(result.windows[["window", "start"]], on="window")
    assert q["window"].tolist() == [1, 2, 3]  # no model for the first window
    assert (q["train_latest"] < q["start"]).all()
    times = data.ratings["timestamp"].astype("int64").to_numpy()
    assert q["n_train"].tolist() == [int((times < s).sum()) for s in q["start"]]
    assert (q["rmse"] > 0).all() and q["ndcg"].between(0, 1).all()
    # February's new users have no rating before February: cold start, counted apart.
    assert q.loc[q["window"] == 1, "n_cold_users"].item() == 10


# --- drift -----------------------------------------------------------------------------------


def test_a_planted_drop_is_flagged_in_its_month_and_nothing_on_the_control(shifted, control):
    _, result = shifted
    c = result.changes
    flagged = c[c["tier"] == "flagged"]
    march = flagged[(flagged["label"] == "2020-03") & (flagged["comparison"] == "previous")]
    women = march[(march["grouping"] == "gender") & (march["group"] == "F")]
    assert {"rating_mean", "rmse"} <= set(women["quantity"])
    mean_row = women[women["quantity"] == "rating_mean"].iloc[0]
    assert mean_row["ratio"] < 0.8 and mean_row["ci_high"] < 0
    assert mean_row["sentence"].startswith("Rating mean for gender = F fell from ")
    assert "in 2020-03 (ratio" in mean_row["sentence"] and mean_row["sentence"].endswith("flagged")
    men = c[(c["grouping"] == "gender") & (c["group"] == "M")]
    # Men's ratings do not move: no flag on their rating mean or RMSE. Their NDCG@k is not
    # asserted: it rises for every user in April (all users: ratio 1.41, flagged; the
    # candidate lists shrink each month, see the control below), and since the baseline
    # comparison right after the baseline is no longer drawn (no duplicate test) the resampling
    # stream differs and the men's share of that shared rise (ratio 1.39, Holm 0.042) is
    # flagged too.
    assert not (men.loc[men["quantity"].isin(["rating_mean", "rmse"]), "tier"] == "flagged").any()
    shared = c[(c["grouping"] == "all") & (c["quantity"] == "ndcg") & (c["tier"] == "flagged")]
    for row in men[men["tier"] == "flagged"].to_dict("records"):
        assert row["quantity"] == "ndcg" and row["label"] in set(shared["label"])
    assert not (flagged["label"].isin(["2020-02"])).any()  # nothing before the shift
    assert any(s.startswith("RMSE for gender = F rose") for s in result.sentences)
    _, quiet = control
    # The control has no shift in ratings: no change of the rating mean or of RMSE is
    # flagged. (Its NDCG@k may rise for real: each user's candidate list shrinks by the
    # 8 items rated each month and the model trains on more data, so NDCG is not a control.)
    steady = quiet.changes[quiet.changes["quantity"].isin(["rating_mean", "rmse"])]
    assert not (steady["tier"] == "flagged").any(), quiet.sentences
    assert steady["p_value"].notna().sum() > 20  # it did test
    assert not any(s.startswith(("Rating mean", "RMSE")) for s in quiet.sentences)


def test_baseline_by_label_and_fairness_tables(shifted, tmp_path):
    data, result = shifted
    assert result.windows["label"].iloc[result.baseline] == "2020-02"
    fair = result.fairness
    march = fair[(fair["label"] == "2020-03") & (fair["quantity"] == "rmse")]
    assert set(march["group"]) == {"F", "M"}
    ref = march[march["group"] == march["reference_group"]]
    assert ref["ratio"].item() == pytest.approx(1.0)
    other = march[march["group"] != march["reference_group"]].iloc[0]
    assert other["ratio"] == pytest.approx(other["value"] / other["reference_value"])
    with pytest.raises(ConfigError, match="names no window"):
        monitor(data, "month", MonitorConfig(baseline="1999-01", permutations=0, bootstrap=0,
                                             min_group_size=10))  # fmt: skip


# --- command line --------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)  # fmt: skip


def test_cli_monitor_writes_json_and_csv_and_prints_flagged_sentences(tmp_path):
    folder = write_toy(tmp_path / "toy", shift=True)
    out = tmp_path / "out"
    done = _cli("monitor", str(folder), "--window", "month", "--out", str(out),
                "--min-group-size", "10", "--bootstrap", "50", "--permutations", "300",
                "--baseline", "2020-02")  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["baseline"] == "2020-02" and summary["insufficient"] == ["2020-05"]
    assert any("gender = F" in s and "2020-03" in s for s in summary["flagged"])
    assert summary["flagged_exposure"] == []  # the toy has no item attribute
    assert any(s.startswith("RMSE of gender = M was") for s in summary["flagged_gaps"])
    saved = json.loads((out / "monitor.json").read_text(encoding="utf-8"))
    assert saved["flagged"] == summary["flagged"]
    assert saved["flagged_gaps"] == summary["flagged_gaps"] and saved["gap_changes"]
    assert {r["label"] for r in saved["quality"]} == {"2020-02", "2020-03", "2020-04"}
    tidy = pd.read_csv(out / "monitor.csv")
    assert {"data", "values", "fairness"} <= set(tidy["table"])


def test_cli_monitor_refuses_data_without_timestamps_in_one_sentence(tmp_path):
    folder = write_toy(tmp_path / "untimed", shift=False, timestamps=False)
    done = _cli("monitor", str(folder), "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "needs a time for each rating" in done.stderr
    bad = _cli("monitor", str(folder), "--window", "fortnight", "--out", str(tmp_path / "o"))
    assert bad.returncode == 2 and "Unknown window" in bad.stderr


def test_cli_audit_over_time_adds_the_section_to_the_html_report(tmp_path):
    folder = write_toy(tmp_path / "toy", shift=True)
    out = tmp_path / "report"
    done = _cli("audit", str(folder), "--out", str(out), "--format", "html,json",
                "--min-group-size", "10", "--bootstrap", "20", "--models", "SVD",
                "--over-time", "month")  # fmt: skip
    assert done.returncode == 0, done.stderr
    html = (out / "report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="over_time">') :]
    assert "<h2>Over time</h2>" in section and "2020-03" in section
    plain = _cli("audit", str(folder), "--out", str(tmp_path / "plain"), "--format", "html",
                 "--min-group-size", "10", "--bootstrap", "20", "--models", "SVD")  # fmt: skip
    assert 'id="over_time"' not in (tmp_path / "plain" / "report.html").read_text("utf-8")
    assert plain.returncode == 0
    untimed = write_toy(tmp_path / "untimed", shift=False, timestamps=False)
    refused = _cli("audit", str(untimed), "--out", str(tmp_path / "o"), "--over-time", "month")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "--over-time needs a time for each rating" in refused.stderr


# --- the Over time page --------------------------------------------------------------------


def test_over_time_page_runs_the_monitoring_and_marks_the_flags(tmp_path):
    """AppTest on a toy with a planted drop (the session's data replaced by the toy)."""
    from streamlit.testing.v1 import AppTest

    from dashboard import state

    data = load_dataset(write_toy(tmp_path / "toy", shift=True, providers=True))
    expected = monitor(data, "month", MonitorConfig())
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.switch_page("views/over_time.py")
    original = state.current_data
    state.current_data = lambda: data  # the page reads the session's data through this
    try:
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.title[0].value == "Over time"
        at.button(key="run_monitor").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        shown = [m.value for m in at.markdown]
        assert expected.sentences  # the toy's drop is flagged by the engine ...
        for text in expected.sentences + expected.gap_sentences:  # ... every flag is shown
            assert "- " + literal_markdown(text) in shown
        charts = at.get("plotly_chart")
        # volume, rating mean, RMSE, NDCG, exposure share and share of ratings per provider
        assert len(charts) == 6
        titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in charts]
        assert titles[4].startswith("Exposure share in the top-k lists per provider")
        exposure = json.loads(charts[4].proto.spec)["data"]
        assert {"Even Co", "Odd Co", "Even Co (catalogue share)"} <= {t["name"] for t in exposure}
        at.selectbox(key="monitor_grouping").set_value("gender").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        assert len(figures) == 8  # + the RMSE and NDCG@k gaps by gender
        names = [t.get("name", "") for f in figures for t in f["data"]]
        assert "flagged change (F)" in names  # the red X on the women's line
        assert expected.gap_sentences and "flagged gap (M)" in names  # men vs women (reference)
    finally:
        state.current_data = original


# --- the report's Over time section ---------------------------------------------------------


def test_report_gets_an_over_time_section_when_a_monitoring_is_given(shifted):
    from html import escape
    from types import SimpleNamespace

    from engine.report.html import render_html

    _, result = shifted
    dataset = {"synthetic": False, "fingerprint": "f" * 16, "users": 1, "items": 1,
               "rows_kept": 1}  # fmt: skip

    class Report(SimpleNamespace):  # other optional report parts: absent (None)
        def __getattr__(self, name: str) -> None:
            return None

    report = Report(title="<b>toy</b>", sections=(), monitoring=None,
                    provenance={"created": "2026-11-29", "dataset": dataset})  # fmt: skip
    plain = render_html(report)  # type: ignore[arg-type]
    assert 'id="over_time"' not in plain
    page = render_html(report, result)  # type: ignore[arg-type]
    section = page[page.index('<section id="over_time">') :]
    assert "<h2>Over time</h2>" in section
    for sentence in result.sentences + result.gap_sentences:
        assert f"<li>{escape(sentence)}</li>" in section
    assert any(s.startswith("RMSE of gender = M was") for s in result.gap_sentences)
    # volume, rating mean, RMSE, NDCG; the gender gaps (RMSE, NDCG): the toy has no provider
    assert section.count('class="chart"') == 6
    assert "Fairness gaps per window" in section and "ratio to the reference by gender" in page
    assert "Model quality per window" in section and "2020-03" in section


def test_the_default_baseline_skips_the_warm_up_windows_of_mostly_new_users():
    from engine.monitor import _warm_baseline

    quality = pd.DataFrame({"label": ["m1", "m2", "m3", "m4"], "n_test": [100, 100, 50, 80],
                            "n_cold_ratings": [90, 60, 20, 16]})  # fmt: skip
    label, sentence = _warm_baseline(quality)  # cold shares 0.9, 0.6, 0.4, 0.2
    assert label == "m3" and sentence.startswith("Baseline window m3 (40% of its test ratings")
    cold = quality.assign(n_cold_ratings=[90, 70, 45, 60])  # 0.9, 0.7, 0.9, 0.75: none warm
    label, sentence = _warm_baseline(cold)
    assert label == "m1" and "every window has more than 50%" in sentence
