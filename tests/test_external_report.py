"""The report's JSON and CSV carry the side by side of external systems (schema 2.5, #16)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from html import escape

import jsonschema
import numpy as np
import pandas as pd
import pytest

from engine.audit import AuditConfig
from engine.external import (
    BUILT_IN_SVD,
    ExternalSystem,
    compare_systems,
    temporal_heldout,
    with_pairs,
)
from engine.external.systems import TABLE_COLUMNS, built_in_systems
from engine.model import ModelConfig, train
from engine.report import SCHEMA_PATH, render_csv, render_html, render_json

K = 10
CONFIG = AuditConfig(k=K, bootstrap=20, permutations=100, min_group_size=20)
POP = "=pop"  # a name a spreadsheet would run as a formula


@pytest.fixture(scope="module")
def side(hostile_report):
    """The hostile report with a popularity system and a copy of the SVD side by side."""
    data, *_, report = hostile_report
    heldout = temporal_heldout(data)
    model = train(heldout.train, ModelConfig(n_factors=8, n_epochs=15))
    train_ratings = heldout.train.ratings
    popular = train_ratings["item_id"].value_counts().index[:K].tolist()
    users = sorted(train_ratings["user_id"].unique())
    lists = pd.DataFrame([(u, r + 1, i, np.nan) for u in users for r, i in enumerate(popular)],
                         columns=["user_id", "rank", "item_id", "score"])  # fmt: skip
    svd = built_in_systems(model, heldout, K)[0]
    systems = [ExternalSystem(POP, lists=lists), replace(svd, name="svd-copy")]
    comparison = with_pairs(compare_systems(heldout, systems, config=CONFIG, model=model))
    return replace(report, systems=comparison), report, heldout


def test_json_validates_and_carries_the_known_numbers(side):
    report, _, heldout = side
    schema = json.loads(SCHEMA_PATH.read_text())
    document = json.loads(render_json(report))
    jsonschema.Draft202012Validator(schema).validate(document)
    assert document["schema_version"] == schema["properties"]["schema_version"]["const"]
    systems = document["systems"]
    held = systems["heldout"]
    assert held["source"] == "temporal" and held["n_ratings"] == len(heldout.ratings) > 0
    assert held["n_train_ratings"] == len(heldout.train.ratings)
    assert held["first"] and held["last"] and "temporal split" in held["description"]
    rows = {r["system"]: r for r in systems["rows"]}
    assert list(rows) == ["SVD (built-in)", "Popularity (built-in)", POP, "svd-copy"]
    assert set(rows[POP]) == set(TABLE_COLUMNS)
    n_items = heldout.train.ratings["item_id"].nunique()
    assert rows[POP]["long_tail_exposure"] == 0.0 and rows[POP]["aplt"] == 0.0
    assert rows[POP]["coverage"] == pytest.approx(K / n_items)
    assert rows[POP]["rmse"] is None and rows[POP]["surrogate_r2"] is None  # no predictions
    same = ["n_users", "n_pairs", "ndcg", "recall", "rmse", "mae", "aplt", "arp",
            "long_tail_exposure", "coverage", "gini_exposure", "flagged"]  # fmt: skip
    assert {c: rows["svd-copy"][c] for c in same} == {c: rows["SVD (built-in)"][c] for c in same}
    fidelity = {s["system"]: s for s in systems["surrogates"]}
    assert fidelity["svd-copy"]["overall_r2"] == pytest.approx(1.0, abs=1e-6)
    assert POP not in fidelity
    assert systems["load"] == []  # hand-built systems come from no file
    assert any(head.endswith("vs SVD (built-in)") for head in systems["pairs"])


def test_json_rows_are_the_html_tables_numbers(side):
    report, *_ = side
    document = json.loads(render_json(report))
    html = render_html(report)
    for row in document["systems"]["rows"]:
        for column in ("ndcg", "coverage", "long_tail_exposure"):
            if row[column] is not None:
                assert f"<td>{row[column]:.3f}</td>" in html


def test_json_schema_refuses_a_system_row_without_its_numbers(side):
    report, *_ = side
    schema = json.loads(SCHEMA_PATH.read_text())
    document = json.loads(render_json(report))
    del document["systems"]["rows"][2]["coverage"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_csv_has_every_systems_rows_after_the_unchanged_built_in_rows(side):
    report, plain, _ = side
    with_systems = pd.read_csv(io.BytesIO(render_csv(report)), keep_default_na=False)
    before = pd.read_csv(io.BytesIO(render_csv(plain)), keep_default_na=False)
    assert list(with_systems.columns) == [*before.columns, "system"]
    own = with_systems[with_systems["system"] == ""].drop(columns="system")
    pd.testing.assert_frame_equal(own.reset_index(drop=True), before)
    comparison = report.systems
    for name, audit in comparison.audits.items():
        shown = "'" + name if name.startswith("=") else name  # formula-neutralised
        assert (with_systems["system"] == shown).sum() == len(audit.result.metrics)
    assert POP not in set(with_systems["system"])
    rows = with_systems[with_systems["system"] == "'" + POP]
    tail = rows[(rows["metric"] == "exposure_share") & (rows["group"] == "long tail")]
    assert float(tail["value"].iloc[0]) == 0.0


def test_a_report_without_systems_renders_as_before(side):
    _, plain, _ = side
    document = json.loads(render_json(plain))
    assert "systems" not in document
    assert "system" not in pd.read_csv(io.BytesIO(render_csv(plain))).columns


def test_html_places_the_systems_right_after_the_summary_with_a_brief_of_each(side):
    report, plain, _ = side
    html = render_html(report)
    summary, systems = html.index('<section id="summary">'), html.index('<section id="systems">')
    after = html.index("</section>", summary)
    assert summary < after < systems < html.index('<section id="data">')
    assert systems < html.index('<section id="provenance">')
    assert html.count('<section id="systems">') == 1
    assert "<h3>Executive summary: about the built-in SVD</h3>" in html
    assert "about the built-in SVD" not in render_html(plain)  # no systems: unchanged label
    brief = html[systems : html.index("<h3>Load reports</h3>", systems)]
    assert "Your systems in brief" in brief
    rows = report.systems.table.set_index("system")
    # popularity of the training data: its long-tail exposure is 0, its coverage k items
    pop = rows.loc[POP]
    expected = (f"{POP}: NDCG@k {pop['ndcg']:.3f} over {int(pop['n_users_ranked']):,} users "
                f"(SVD {rows.loc['SVD (built-in)', 'ndcg']:.3f}; popularity "
                f"{rows.loc['Popularity (built-in)', 'ndcg']:.3f})")  # fmt: skip
    assert escape(expected) in brief
    assert "long-tail exposure 0.0%" in brief
    assert f"{int(pop['flagged']):,} flagged audit rows" in brief


def test_a_system_that_cannot_score_on_utility_is_warned_in_html_and_json(side):
    report, _, heldout = side
    ratings = heldout.train.ratings  # temporal split of the whole data
    everything = pd.concat([ratings, heldout.ratings])
    order = everything["item_id"].value_counts().index.tolist()
    rated = everything.groupby("user_id")["item_id"].agg(set)
    lists = pd.DataFrame([(u, r + 1, i, np.nan) for u in sorted(ratings["user_id"].unique())
                          for r, i in enumerate([i for i in order if i not in rated[u]][:K])],
                         columns=["user_id", "rank", "item_id", "score"])  # fmt: skip
    comparison = with_pairs(compare_systems(heldout, [ExternalSystem("blind", lists=lists)],
                                            config=CONFIG, model=report.systems.model))  # fmt: skip
    blind = replace(report, systems=comparison)
    warning = comparison.warnings["blind"]
    assert warning.startswith("None of blind's ") and "cannot score on utility" in warning
    html = render_html(blind)
    start = html.index('<section id="systems">')
    assert html.index(f"<strong>Warning: {escape(warning)}</strong>", start) < html.index(
        "<h3>Side by side</h3>", start)  # fmt: skip
    assert "<td>0.000 (not interpretable)</td>" in html
    utility = [s for s in comparison.pairs[f"blind vs {BUILT_IN_SVD}"]
               if s.startswith(("ndcg:", "recall:"))]  # fmt: skip
    assert len(utility) == 2 and all("worse" not in s and "no verdict" in s for s in utility)
    assert all(escape(s) in html for s in utility)
    document = json.loads(render_json(blind))
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(document)
    assert document["systems"]["warnings"] == [warning]
    row = next(r for r in document["systems"]["rows"] if r["system"] == "blind")
    assert (row["n_hits"], row["utility_interpretable"]) == (0, False)
    assert row["n_users_ranked"] > 0 and row["n_users"] > row["n_users_ranked"]
