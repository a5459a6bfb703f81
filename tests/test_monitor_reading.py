"""How the monitoring reads to a first-time analyst (engine.monitor, monitor_charts, the page).

Known answers on hand-built tables and on the toy timeline of ``tests.test_monitor``: what
of the gaps was tested (a group too small in every window), insufficient-data points
drawn apart, no duplicated comparison right after the baseline, partial windows, the
baseline control, flags grouped per (quantity, group), one colour per group, legends.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from engine import monitor_charts
from engine.data import load_dataset
from engine.monitor import MonitorConfig, group_flags, monitor
from engine.monitor_changes import change_table, value_table
from engine.monitor_fairness import gap_change_table, gap_summary, gap_table
from engine.monitor_windows import make_windows, partial_windows, window_names
from engine.text import literal_markdown
from tests.conftest import ROOT
from tests.test_monitor import _epoch, write_toy

CHEAP = MonitorConfig(min_group_size=40, bootstrap=30, permutations=50)


@pytest.fixture(scope="module")
def skewed(tmp_path_factory):
    """The toy with 24 women and 96 men: F (< 30 users) is insufficient in every window."""
    folder = write_toy(tmp_path_factory.mktemp("skewed"), shift=False)
    users = pd.read_csv(folder / "users.csv")
    users["gender"] = ["F" if int(u[1:]) % 5 == 0 else "M" for u in users["user_id"]]
    users.to_csv(folder / "users.csv", index=False)
    data = load_dataset(folder)
    return data, monitor(data, "month", CHEAP)


# --- 1. what of the gaps was tested ------------------------------------------------------


def _gap_rows(tested: list[bool], n_f: list[int]) -> pd.DataFrame:
    rows = []
    for w, (done, n) in enumerate(zip(tested, n_f, strict=True)):
        for q in ("rmse", "ndcg"):
            rows.append({"window": w, "label": f"w{w}", "quantity": q, "grouping": "gender",
                         "group": "M", "n_users": 80, "status": "reference", "ratio": 1.0,
                         "p_value": math.nan, "tier": "", "reference_group": "M"})  # fmt: skip
            rows.append({"window": w, "label": f"w{w}", "quantity": q, "grouping": "gender",
                         "group": "F", "n_users": n,
                         "status": "ok" if done else "insufficient data",
                         "ratio": 1.1 if done else math.nan,
                         "p_value": 0.4 if done else math.nan, "tier": "",
                         "reference_group": "M"})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_gap_sentence_says_what_was_tested():
    never = _gap_rows([False] * 7, [7, 12, 25, 20, 18, 15, 9])
    assert gap_summary(never, 30) == [
        "No gap could be tested for gender: F has fewer than 30 users in every window."
    ]
    some = _gap_rows([True, False, True, True, False, False, False], [35, 9, 31, 40, 8, 8, 8])
    assert gap_summary(some, 30) == [
        "No tested gap is flagged for gender (F was tested in 3 of 7 windows)."
    ]
    some.loc[(some["group"] == "F") & (some["window"] == 0), "tier"] = "flagged"
    assert gap_summary(some, 30) == [
        "2 of 6 tested gaps are flagged for gender (F was tested in 3 of 7 windows)."
    ]
    # Not charted: nothing to draw for a grouping never tested.
    assert not monitor_charts.has_gaps(never, "rmse", "gender")
    assert monitor_charts.has_gaps(some, "rmse", "gender")


def test_the_toy_with_few_women_says_no_gap_could_be_tested(skewed):
    from engine.report.over_time import over_time_section

    _, m = skewed
    sentence = "No gap could be tested for gender: F has fewer than 40 users in every window."
    assert m.gap_summary() == [sentence]
    assert m.fairness.loc[m.fairness["group"] == "F", "p_value"].isna().all()
    section = over_time_section(m, lambda figure, literal=True: '<div class="chart"></div>')
    assert f"<p>{sentence}</p>" in section
    assert "No gap between user groups is flagged" not in section
    assert m.to_dict()["gap_summary"] == [sentence]


# --- 3. gap charts: window labels on the x-axis ------------------------------------------


def test_gap_chart_x_axis_is_the_window_labels():
    some = _gap_rows([True, False, True, True, False, False, False], [35, 9, 31, 40, 8, 8, 8])
    some["value"], some["ci_low"], some["ci_high"] = 1.0, 0.9, 1.3
    figure = monitor_charts.fairness_gaps(some, "rmse", "gender")
    axis = figure.layout.xaxis
    assert axis.type == "category" and list(axis.categoryarray) == [f"w{i}" for i in range(7)]
    (line,) = [t for t in figure.data if t.name == "F"]
    assert list(line.x) == ["w0", "w2", "w3"]  # tested windows only, by label


# --- 2. insufficient-data points ---------------------------------------------------------


def _values(n_users: list[int], grouping: str = "gender", group: str = "F") -> pd.DataFrame:
    rows = [{"window": w, "label": f"2020-0{w + 1}", "scope": "data", "quantity": "rating_mean",
             "grouping": grouping, "group": group, "n_users": n, "value": 3.5 + 0.1 * w,
             "ci_low": 3.3 + 0.1 * w, "ci_high": 3.7 + 0.1 * w,
             "status": "ok" if n >= 30 else "insufficient data"}
            for w, n in enumerate(n_users)]  # fmt: skip
    return pd.DataFrame(rows)


def test_insufficient_points_are_hollow_grey_without_interval():
    values = _values([45, 12, 50])
    figure = monitor_charts.series(values, values.iloc[:0].assign(tier=""), "rating_mean",
                                   "gender", 30)  # fmt: skip
    line, small = figure.data
    assert line.name == "F" and np.isnan(line.y[1]) and not np.isnan(line.y[0])
    assert np.isnan(line.error_y.array[1]) and line.error_y.array[0] == pytest.approx(0.2)
    assert small.name == "insufficient data (n users < 30)" and list(small.x) == ["2020-02"]
    assert small.marker.symbol == "circle-open" and small.marker.color == monitor_charts.GREY
    assert small.error_y.array is None  # no interval
    assert "insufficient data (12 users < 30)" in small.hovertext[0]


# --- 4. no duplicated comparison right after the baseline --------------------------------


def _units(n_windows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame([{"window": w, "quantity": "rating_mean", "user_id": f"w{w}u{u}",
                          "a": float(rng.integers(1, 6)), "b": 1.0}
                         for w in range(n_windows) for u in range(40)])  # fmt: skip


def test_the_window_after_the_baseline_is_compared_once():
    windows = pd.DataFrame({"window": range(4), "label": [f"w{i}" for i in range(4)],
                            "status": ["ok"] * 4})  # fmt: skip
    config = MonitorConfig(min_group_size=10, bootstrap=20, permutations=20)
    units = _units(4)
    values = value_table(units, {}, windows, config)
    changes = change_table(units, {}, windows, values, 1, config)
    pairs = sorted(zip(changes["window"], changes["comparison"], strict=True))
    # w2 vs w1 is the baseline comparison itself: tested once, as "previous".
    assert pairs == [(1, "previous"), (2, "previous"), (3, "baseline"), (3, "previous")]


def test_the_gap_change_after_the_baseline_is_tested_once():
    rows, labels = [], {}
    for w in range(3):
        for group, n in (("A", 40), ("B", 60)):
            for u in range(n):
                user = f"{group}{w}_{u}"
                rows.append((w, "rmse", user, 4.0 + (u % 3), 4.0))
                labels[user] = group
    units = pd.DataFrame(rows, columns=["window", "quantity", "user_id", "a", "b"])
    windows = pd.DataFrame({"window": range(3), "label": ["w0", "w1", "w2"],
                            "status": ["ok"] * 3})  # fmt: skip
    config = MonitorConfig(min_group_size=10, bootstrap=50, permutations=20)
    gaps, replicates = gap_table(units, {"side": pd.Series(labels)}, windows, config)
    changes = gap_change_table(gaps, replicates, 0, config)
    assert sorted(zip(changes["window"], changes["comparison"], strict=True)) == [
        (1, "previous"),
        (2, "baseline"),
        (2, "previous"),
    ]


# --- 5. partial windows ------------------------------------------------------------------


def test_partial_first_and_last_windows_are_marked():
    times = np.array([_epoch("1998-01-15 10:00"), _epoch("1998-02-10"),
                      _epoch("1998-03-07 18:00")], dtype=float)  # fmt: skip
    windows = make_windows(times, "month")
    windows["partial"] = partial_windows(times, windows)
    assert windows["partial"].tolist() == ["from 1998-01-15", "", "to 1998-03-07"]
    assert window_names(windows) == ["1998-01 (partial: from 1998-01-15)", "1998-02",
                                     "1998-03 (partial: to 1998-03-07)"]  # fmt: skip
    full = np.array([_epoch("1998-01-01 00:10"), _epoch("1998-01-31 23:00")], dtype=float)
    assert partial_windows(full, make_windows(full, "month")) == [""]
    inside = np.array([_epoch("1998-01-02"), _epoch("1998-01-30")], dtype=float)
    assert partial_windows(inside, make_windows(inside, "month")) == ["1998-01-02 to 1998-01-30"]


def test_the_toys_last_window_is_partial_everywhere(skewed):
    from engine.report.over_time import over_time_section

    _, m = skewed
    assert m.windows["partial"].tolist() == [""] * 4 + ["to 2020-05-02"]
    name = "2020-05 (partial: to 2020-05-02)"
    assert m.window_names()[-1] == name
    assert any(name in note for note in m.notes)
    section = over_time_section(m, lambda figure, literal=True: "")
    assert f"to {name};" in section
    hover = monitor_charts.volume(m.data, m.windows).data[0].hovertext
    assert hover[-1] == name and hover[0] == "2020-01"


# --- 9. flags grouped per (quantity, group) ------------------------------------------------


def test_flags_are_grouped_per_quantity_and_group():
    base = {"quantity": "rmse", "grouping": "gender", "group": "F", "tier": "flagged",
            "other_label": "w1", "severity": 1.0}  # fmt: skip
    changes = pd.DataFrame([
        {**base, "window": 2, "label": "w2", "comparison": "previous", "ratio": 1.31},
        {**base, "window": 3, "label": "w3", "comparison": "baseline", "ratio": 1.40},
        {**base, "window": 4, "label": "w4", "comparison": "baseline", "ratio": 1.28},
        {**base, "window": 4, "label": "w4", "comparison": "baseline", "ratio": 0.5,
         "group": "M", "severity": 5.0},
        {**base, "window": 5, "label": "w5", "comparison": "baseline", "ratio": 2.0,
         "tier": "notable"},
    ])  # fmt: skip
    lines = group_flags(changes, None, {"w4": "w4 (partial: to 2020-05-02)"})
    assert lines == [
        "RMSE for gender = M (1 flagged): vs the baseline window w1 in "
        "w4 (partial: to 2020-05-02) (ratio 0.50)",
        "RMSE for gender = F (3 flagged): vs the previous window in w2 (ratio 1.31); vs the "
        "baseline window w1 in w3, w4 (partial: to 2020-05-02) (ratios 1.28 to 1.40)",
    ]


# --- 7. colours, 8. legends ------------------------------------------------------------------


def test_each_provider_has_one_colour_never_the_flag_red():
    groups = [f"genre {i:02d}" for i in range(13)]
    parts = []
    for quantity in ("exposure", "rating_share"):
        for g in groups if quantity == "exposure" else groups[3:]:  # fewer groups rated
            part = _values([50, 60], "genres", g).assign(quantity=quantity, scope="model")
            parts.append(part)
    values = pd.concat(parts, ignore_index=True)
    exposure = values[values["quantity"] == "exposure"].assign(
        exposure_share=0.1, catalogue_share=0.1)[["window", "label", "grouping", "group",
                                                  "exposure_share", "catalogue_share"]]  # fmt: skip
    no_flags = pd.DataFrame({"tier": [], "quantity": [], "group": [], "window": []})
    colours = {}
    for quantity in ("exposure", "rating_share"):
        figure = monitor_charts.provider_shares(values, no_flags, exposure, quantity)
        lines = {t.name: t.line.color for t in figure.data if t.mode == "lines+markers"}
        colours[quantity] = lines
        assert figure.layout.legend.orientation == "h"
        assert figure.layout.height >= 340 + 22 * math.ceil(len(lines) / 4)
    assert len(set(colours["exposure"].values())) == 13  # no colour reused
    for name, colour in colours["rating_share"].items():
        assert colours["exposure"][name] == colour  # the same genre, the same colour
    assert monitor_charts.FLAG_RED.lower() not in {c.lower() for c in monitor_charts.PALETTE}
    for colour in monitor_charts.PALETTE:  # no red: R high, G and B low
        r, g, b = (int(colour[k : k + 2], 16) for k in (1, 3, 5))
        assert not (r > 180 and g < 90 and b < 90), colour


def test_the_volume_legend_is_above_the_plot(skewed):
    _, m = skewed
    legend = monitor_charts.volume(m.data, m.windows).layout.legend
    assert legend.orientation == "h" and legend.y > 1 and legend.yanchor == "bottom"


# --- 6. the baseline on the page, and the page as a whole ----------------------------------


def test_the_page_has_a_baseline_control_and_reads_the_skewed_toy(skewed):
    from streamlit.testing.v1 import AppTest

    from dashboard import state

    data, _ = skewed
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.switch_page("views/over_time.py")
    original = state.current_data
    state.current_data = lambda: data
    try:
        at.run()
        control = at.selectbox(key="monitor_baseline")
        assert control.label == "Baseline window"  # the page's BASELINE_CONTROL
        assert control.options[1:] == ["2020-02", "2020-03", "2020-04"]  # 2020-05: too small
        control.set_value("2020-03").run()
        at.button(key="run_monitor").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        _, _, result = at.session_state["store"].extras[("monitoring",)]
        assert result.windows["label"].iloc[result.baseline] == "2020-03"
        at.selectbox(key="monitor_grouping").set_value("gender").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        shown = [m.value for m in at.markdown]
        assert literal_markdown(result.gap_summary()[0]) in shown
        # volume, rating mean, RMSE, NDCG by gender; no gap chart: none could be tested
        figures = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
        assert len(figures) == 4
        names = {t.get("name", "") for f in figures for t in f["data"]}
        assert {"F", "insufficient data (n users < 30)"} <= names  # F: 24 users < 30
        assert any("could be tested in any window: no chart" in c.value for c in at.caption)
    finally:
        state.current_data = original


def test_the_baseline_note_names_no_cli_flag_and_the_cli_adds_it(tmp_path, skewed):
    from tests.test_monitor import _cli

    _, m = skewed
    (note,) = [n for n in m.notes if n.startswith("Baseline window ")]
    assert "--baseline" not in note
    folder = write_toy(tmp_path / "toy", shift=False)
    done = _cli("monitor", str(folder), "--out", str(tmp_path / "out"), "--bootstrap", "0",
                "--permutations", "0", "--min-group-size", "10")  # fmt: skip
    assert done.returncode == 0, done.stderr
    notes = json.loads(done.stdout)["notes"]
    (said,) = [n for n in notes if n.startswith("Baseline window ")]
    assert said.endswith("Set --baseline to choose another.")
