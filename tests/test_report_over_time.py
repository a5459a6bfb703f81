"""The report JSON carries the monitoring of its "Over time" section (schema 2.6, #15 item 4).

Known answers come from the toy timeline of ``tests.test_monitor`` (a planted drop of the
women's March ratings; providers "Even Co" / "Odd Co"): counts and means by hand from the
ratings, everything else equal to the ``Monitoring`` object's own tables.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace

import jsonschema
import pandas as pd
import pytest

from engine.analysis import Analysis, AnalysisSettings
from engine.audit import AuditConfig
from engine.data import load_dataset
from engine.evaluate import EvaluationConfig
from engine.monitor import MonitorConfig, monitor
from engine.report import SCHEMA_PATH, render_csv, render_json
from engine.report.build import SCHEMA_VERSION
from engine.report.formats import report_to_dict
from engine.report.over_time import QUALITY_FIELDS, describe
from engine.text import literal_markdown
from tests.conftest import ROOT
from tests.test_monitor import FAST, MONTHS, write_toy

CHEAP = AnalysisSettings(
    evaluation=EvaluationConfig(folds=2, models=("SVD",)),
    audit=AuditConfig(bootstrap=20, permutations=20, min_group_size=10),
)
NUMBERS = ("value", "other_value", "ratio", "ci_low", "ci_high", "p_value", "p_adjusted")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """``(data, report, monitoring)``: the shifted toy with providers, audited cheaply."""
    data = load_dataset(write_toy(tmp_path_factory.mktemp("toy"), shift=True, providers=True))
    report = Analysis(data, CHEAP).report()
    return data, report, monitor(data, "month", FAST)


def _month(data) -> pd.DataFrame:
    stamps = pd.to_datetime(data.ratings["timestamp"].astype("int64"), unit="s")
    return data.ratings.assign(month=stamps.dt.strftime("%Y-%m").to_numpy())


def _same(left: float | None, right: float) -> bool:
    return left is None if not math.isfinite(right) else left == pytest.approx(right)


def _validated(report) -> dict:
    document = json.loads(render_json(report))
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(document)
    return document


def test_json_validates_and_carries_the_toys_windows_and_settings(toy):
    data, report, m = toy
    document = _validated(replace(report, monitoring=m))
    assert document["schema_version"] == SCHEMA_VERSION == "2.8"
    section = document["over_time"]
    assert (section["window"], section["baseline"]) == ("month", "2020-02")
    assert section["baseline_reason"].startswith("Baseline window 2020-02 (8% of its test")
    assert section["settings"] == {"k": 10, "threshold": None, "min_ratings": 100,
                                   "min_group_size": 10, "bootstrap": 100, "permutations": 400,
                                   "alpha": 0.05, "band": [0.8, 1.25]}  # FAST  # fmt: skip
    windows = section["windows"]
    assert [w["label"] for w in windows] == [*MONTHS, "2020-05"]
    assert [w["status"] for w in windows] == ["ok"] * 4 + ["insufficient data"]
    rated = _month(data)
    counts = rated.groupby("month").size()
    means = rated.groupby("month")["rating"].mean()
    for w in windows:  # data by hand; a model from February on, trained on what came before
        assert w["data"]["n_ratings"] == counts[w["label"]]
        assert w["data"]["rating_mean"] == pytest.approx(means[w["label"]])
        assert w["data"]["n_users"] == rated.loc[rated["month"] == w["label"], "user_id"].nunique()
    assert windows[0]["quality"] is None and windows[4]["quality"] is None  # none before / tiny
    quality = m.quality.set_index("label")
    for w in windows[1:4]:
        before = int((rated["timestamp"] < w["start"]).sum())
        assert w["quality"]["n_train"] == before == quality.at[w["label"], "n_train"]
        assert w["quality"]["train_latest"] < w["start"]
        assert set(w["quality"]) == set(QUALITY_FIELDS)  # fit_seconds (wall time) left out
        for field in ("rmse", "ndcg", "n_cold_ratings"):
            assert w["quality"][field] == pytest.approx(quality.at[w["label"], field])


def test_the_flags_and_their_numbers_are_the_monitorings(toy):
    data, report, m = toy
    section = report_to_dict(replace(report, monitoring=m))["over_time"]
    assert section["flagged"] == m.sentences and section["flagged_gaps"] == m.gap_sentences
    notable = pd.concat([m.changes[m.changes["tier"] == "notable"],
                         m.gap_changes[m.gap_changes["tier"] == "notable"]])  # fmt: skip
    assert sorted(section["notable"]) == sorted(notable["sentence"])
    tables = {"changes": m.changes, "gaps": m.fairness, "gap_changes": m.gap_changes}
    tiers = {"changes": {"flagged", "notable"}, "gaps": {"flagged"},
             "gap_changes": {"flagged", "notable"}}  # fmt: skip
    for name, table in tables.items():
        chosen = table[table["tier"].isin(tiers[name])].set_index("sentence")
        rows = section[name]
        assert sorted(r["sentence"] for r in rows) == sorted(chosen.index)
        severity = [chosen.at[r["sentence"], "severity"] for r in rows]
        assert severity == sorted(severity, reverse=True)  # most severe first
        for r in rows:
            row = chosen.loc[r["sentence"]]
            keys = ("quantity", "grouping", "group", "label", "tier")
            assert [r[k] for k in keys] == [row[k] for k in keys]
            mine = {"value": row.get("value"), "other_value": row.get("other_value"),
                    "ratio": row["ratio"], "ci_low": row["ci_low"], "ci_high": row["ci_high"],
                    "p_value": row["p_value"], "p_adjusted": row["p_adjusted"]}  # fmt: skip
            if name == "gaps":
                mine["other_value"] = row["reference_value"]
                assert (r["comparison"], r["other"]) == ("reference group", row["reference_group"])
            elif name == "gap_changes":
                mine.update(value=row["ratio"], other_value=row["other_ratio"],
                            ratio=row["ratio_change"])  # fmt: skip
                assert r["reference_group"] == row["reference_group"]
            if name != "gaps":
                assert (r["comparison"], r["other"]) == (row["comparison"], row["other_label"])
            for field in NUMBERS:
                assert _same(r[field], mine[field]), (name, field, r)
    # The planted drop, by hand: the women's rating mean from February to March.
    rated = _month(data)
    women = rated[rated["user_id"].str[1:].astype(int) % 2 == 0].groupby("month")["rating"]
    (drop,) = [r for r in section["changes"] if (r["quantity"], r["group"], r["label"],
               r["comparison"]) == ("rating_mean", "F", "2020-03", "previous")]  # fmt: skip
    assert drop["value"] == pytest.approx(women.mean()["2020-03"])
    assert drop["other_value"] == pytest.approx(women.mean()["2020-02"])
    assert drop["ratio"] == pytest.approx(drop["value"] / drop["other_value"])
    assert drop["ratio"] < 0.8
    assert drop["tier"] == "flagged" and drop["ci_of"] == "difference" and drop["ci_high"] < 0
    (gap,) = [r for r in section["gaps"] if (r["quantity"], r["label"]) == ("rmse", "2020-03")]
    assert (gap["group"], gap["reference_group"]) == ("M", "F")
    assert gap["ratio"] == pytest.approx(gap["value"] / gap["other_value"])
    assert gap["ratio"] < 0.8


def test_exposure_per_provider_and_no_user_ids(toy):
    data, report, m = toy
    section = report_to_dict(replace(report, monitoring=m))["over_time"]
    expected = m.exposure.to_dict("records")
    assert [r.keys() for r in section["exposure"]] == [r.keys() for r in expected]
    for mine, theirs in zip(section["exposure"], expected, strict=True):
        assert mine == pytest.approx(theirs, nan_ok=True)
    rated = _month(data)
    shares = {(r["label"], r["group"]): r["catalogue_share"] for r in section["exposure"]}
    for label in ("2020-02", "2020-04"):  # catalogue known to training: items rated before
        known = rated.loc[rated["month"] < label, "item_id"].unique()
        even = sum(int(i[1:]) % 2 == 0 for i in known) / len(known)
        assert shares[(label, "Even Co")] == pytest.approx(even)
    assert shares[("2020-04", "Even Co")] == pytest.approx(33 / 65)  # i00-i64: 33 even
    text = json.dumps(section)
    assert not re.search(r"\bu\d{3}\b", text)  # no user id


def test_a_report_without_monitoring_is_unchanged(toy):
    _, report, m = toy
    plain = report_to_dict(report)
    assert "over_time" not in plain and "over_time" not in _validated(report)
    with_section = report_to_dict(replace(report, monitoring=m))
    assert {k: v for k, v in with_section.items() if k != "over_time"} == plain
    assert render_csv(replace(report, monitoring=m)) == render_csv(report)  # no monitoring rows


def test_a_chosen_baseline_says_so_and_untested_changes_validate(toy):
    data, report, _ = toy
    config = MonitorConfig(min_group_size=10, bootstrap=0, permutations=0, baseline="2020-03")
    m = monitor(data, "month", config)
    section = _validated(replace(report, monitoring=m))["over_time"]
    assert section["baseline"] == "2020-03" and describe(m) == "month windows, baseline 2020-03"
    assert section["baseline_reason"] == (
        "Baseline window 2020-03: chosen in the settings (baseline '2020-03')."
    )
    assert section["flagged"] == [] and section["changes"] == []  # nothing tested


# --- the dashboard's Report page ------------------------------------------------------------


@pytest.fixture
def kept(tmp_path, monkeypatch):
    """Session work goes to a fresh folder."""
    monkeypatch.setenv("RECSYS_SESSION_DIR", str(tmp_path / "sessions"))


def _report_json(store) -> dict:
    """The JSON download of the latest report the Report page rendered."""
    made = [(k, v) for k, v in store.extras.items() if k[0] == "report files"]
    return json.loads(made[-1][1]["report.json"])


def test_the_report_page_includes_the_over_time_pages_monitoring(toy, kept):
    from streamlit.testing.v1 import AppTest

    data, *_ = toy
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.switch_page("views/report.py").run()
    store = at.session_state["store"]
    store.analysis = Analysis(data, CHEAP)  # the toy as the session's data
    store.analysis.audit()  # what the Bias audit page's button computes
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("run the monitoring on the Over time page first" in c.value for c in at.caption)
    assert "over_time" not in _report_json(store)

    at.switch_page("views/over_time.py").run()
    at.button(key="run_monitor").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    _, window, monitoring = store.extras[("monitoring",)]
    baseline = monitoring.windows["label"].iloc[monitoring.baseline]
    assert (window, baseline) == ("month", "2020-02")

    at.switch_page("views/report.py").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    notice = [i.value for i in at.info if "**Over time**" in i.value]
    assert notice and f"({literal_markdown(describe(monitoring))})" in notice[0]
    assert describe(monitoring) == "month windows, baseline 2020-02"
    section = _report_json(store)["over_time"]
    assert (section["window"], section["baseline"]) == ("month", baseline)
    assert section["flagged"] == monitoring.sentences
