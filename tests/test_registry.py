"""The metric registry (issue #13): one declaration per metric drives the audit and the report.

Adding a metric is one ``MetricSpec``: the toy metric below is registered in a fresh
registry and audited end to end, with its value computed by hand.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import textwrap

import numpy as np
import pandas as pd
import pytest

from engine import ConfigError, DataFile, load_dataset
from engine.audit import AuditConfig, run_audit
from engine.audit import inputs as audit_inputs
from engine.audit.registry import (
    BETTER,
    FAMILIES,
    LEVELS,
    InputSpec,
    MetricSpec,
    Parts,
    Registry,
    RegistryError,
)
from engine.audit.specs import REGISTRY, SHARED_INPUTS
from engine.evaluate import EvaluationConfig, evaluate
from engine.model import ModelConfig, train
from engine.recommend import recommend_all
from engine.report import SCHEMA_PATH, build_report, render_html
from engine.report.build import REFERENCES, definitions, references
from engine.report.findings import findings

SMALL = ModelConfig(n_factors=4, n_epochs=5)
QUICK = {"bootstrap": 20, "permutations": 50, "min_group_size": 2, "explanations": False}

# --- a toy metric: declared once, nowhere else ----------------------------------------------

BUILT: list[str] = []


def _squares(sources, needs) -> pd.DataFrame:
    """Per user: summed squared ratings ``sq`` and number of ratings ``n`` (counts builds)."""
    BUILT.append("squares")
    ratings = needs["ratings"]
    return ratings.assign(sq=ratings["rating"] ** 2).groupby("user_id").agg(
        sq=("sq", "sum"), n=("rating", "size"))  # fmt: skip


def _quadratic_mean(x) -> Parts:
    return Parts(x["squares"]["sq"], x["squares"]["n"].astype(float), np.sqrt)


def _mean_square(x) -> Parts:
    return Parts(x["squares"]["sq"], x["squares"]["n"].astype(float), lambda v: v)


SQUARES = InputSpec("squares", "per-user sums of squared ratings", _squares, needs=("ratings",))
TOY = MetricSpec(
    key="quadratic_mean_rating", family="accuracy", level="user group", better="higher",
    display_name="quadratic mean rating",
    definition="root of the mean squared rating the group's users gave",
    formula="Q(G) = sqrt( sum_{u in G} sum_{i in R_u} r_ui^2 / sum_{u in G} |R_u| )",
    references=("A toy reference (2024), for the registry test",),
    inputs=("squares",), no_value="there is no rating", compute=_quadratic_mean,
)  # fmt: skip
TOY_SQUARE = dataclasses.replace(TOY, key="mean_square_rating", display_name="mean square rating",
                                 compute=_mean_square)  # fmt: skip


def _fresh() -> Registry:
    """A new registry over the audit's shared inputs plus ``squares``, with the toy metrics."""
    return Registry([*SHARED_INPUTS, SQUARES], [TOY, TOY_SQUARE])


@pytest.fixture(scope="module")
def toy_audit():
    """30 users x 6 items, 4 rated each. The 20 'big' users rate 1 (even items) and 3 (odd);
    the 10 'small' users rate 2 and 4. Every user rates two even and two odd items."""
    small = lambda u: u >= 20  # noqa: E731
    rows = ["user,item,rating"] + [
        f"u{u:02d},i{i},{(2 if small(u) else 1) + (2 if i % 2 else 0)}"
        for u in range(30)
        for i in range(6)
        if (u + i) % 3
    ]
    data = load_dataset(DataFile("r.csv", ("\n".join(rows) + "\n").encode()))
    ids = sorted(data.ratings["user_id"].unique())
    users = pd.DataFrame({"size": ["small" if small(int(u[1:])) else "big" for u in ids]},
                         index=pd.Index(ids, name="user_id"))  # fmt: skip
    data = dataclasses.replace(data, users=users)
    evaluation = evaluate(data, SMALL, EvaluationConfig(folds=2, models=("SVD",)))
    model = train(data, SMALL)
    BUILT.clear()
    registry = _fresh()
    result = run_audit(data, model, evaluation, AuditConfig(**QUICK), registry=registry)
    return data, model, evaluation, result, registry


def test_a_toy_metric_is_audited_end_to_end_with_its_hand_computed_value(toy_audit):
    *_, result, registry = toy_audit
    m = result.metrics
    assert set(m["metric"]) == {TOY.key, TOY_SQUARE.key}  # only the registry's metrics
    rows = m[(m["metric"] == TOY.key) & (m["grouping"] == "size")].set_index("group")
    # big: squares 1, 9, 1, 9 per user -> sqrt(20 / 4); small: 4, 16, 4, 16 -> sqrt(40 / 4).
    assert rows.loc["big", "value"] == pytest.approx(math.sqrt(5), abs=1e-12)
    assert rows.loc["small", "value"] == pytest.approx(math.sqrt(10), abs=1e-12)
    assert rows.loc["small", "ratio"] == pytest.approx(math.sqrt(2), abs=1e-12)
    assert rows.loc["big", "status"] == "reference" and rows.loc["big", "n_users"] == 20
    assert rows.loc["small", "n_users"] == 10 and rows.loc["small", "n_ratings"] == 40
    assert rows.loc["small", "flag"] and rows.loc["small", "direction"] == "better"
    assert (rows[["family", "better", "definition"]].drop_duplicates().to_numpy().tolist()
            == [[TOY.family, TOY.better, TOY.definition]])  # fmt: skip
    squares = m[(m["metric"] == TOY_SQUARE.key) & (m["grouping"] == "size")].set_index("group")
    assert squares.loc["big", "value"] == pytest.approx(5.0, abs=1e-12)
    assert squares.loc["small", "value"] == pytest.approx(10.0, abs=1e-12)
    # The input both metrics declared was built once for the whole audit.
    assert BUILT == ["squares"]
    assert result.registry is registry


def test_findings_definitions_and_references_of_a_metric_come_from_its_spec(toy_audit):
    data, model, evaluation, result, registry = toy_audit
    (finding, *_) = [f for f in findings(result.metrics, registry) if f.metric == TOY.key]
    assert finding.sentence.startswith(
        "Quadratic mean rating is better for size = small: 3.162 (95% CI 3.162 to 3.162) vs "
        "2.236 for big (ratio 1.41; higher is better;"
    )
    report = build_report(data, model, evaluation, result)
    assert report.definitions == {TOY.key: TOY.describe(), TOY_SQUARE.key: TOY_SQUARE.describe()}
    assert report.definitions[TOY.key]["formula"] == TOY.formula
    assert any(f.sentence == finding.sentence for f in report.findings)
    html = render_html(report)
    assert "Q(G) = sqrt( sum_{u in G} sum_{i in R_u} r_ui^2" in html
    assert "A toy reference (2024), for the registry test [quadratic_mean_rating, " in html


def test_the_audit_keeps_its_lists_and_the_report_counts_them(toy_audit, monkeypatch):
    data, model, evaluation, result, registry = toy_audit
    pd.testing.assert_frame_equal(result.lists, recommend_all(model, 6))  # k 10 capped at 6
    doctored = result.lists.assign(item_id="i5")  # every slot shows i5
    report = build_report(data, model, evaluation, dataclasses.replace(result, lists=doctored))
    assert report.top_items[["title", "recommendations"]].to_numpy().tolist() == [
        ["i5", len(doctored)]
    ]
    with pytest.raises(ConfigError, match="carries no top-k lists"):
        build_report(data, model, evaluation, dataclasses.replace(result, lists=None))

    def refuse(*args, **kwargs):
        raise AssertionError("the lists were recomputed")

    monkeypatch.setattr(audit_inputs, "recommend_all", refuse)
    again = run_audit(data, model, evaluation, AuditConfig(**QUICK), registry=registry,
                      lists=result.lists)  # fmt: skip
    assert again.lists is result.lists
    pd.testing.assert_frame_equal(again.metrics, result.metrics)
    with pytest.raises(ConfigError, match="recommend_all"):
        run_audit(data, model, evaluation, AuditConfig(**QUICK), lists=result.lists[["rank"]])


# --- declarations: complete, unique, never inferred ------------------------------------------


def test_every_spec_is_complete_with_a_formula_and_a_reference():
    assert len(REGISTRY) == 13 and len(set(REGISTRY.keys())) == 13
    for spec in REGISTRY:
        assert spec is REGISTRY[spec.key]
        assert spec.family in FAMILIES and spec.level in LEVELS and spec.better in BETTER
        for name in ("display_name", "definition", "formula", "no_value"):
            assert getattr(spec, name).strip(), (spec.key, name)
        assert spec.references and all(r.strip() for r in spec.references)
        assert spec.inputs and all(n in REGISTRY.inputs for n in spec.inputs)
        assert callable(spec.compute)
        assert set(spec.describe()) == {"family", "level", "better", "name", "definition",
                                         "formula", "references"}  # fmt: skip
        assert spec.formula in spec.help_text() and spec.references[0] in spec.help_text()
    assert {s.key for s in REGISTRY.at_level("item group")} == {"exposure_share",
                                                                "interaction_share"}  # fmt: skip
    schema = json.loads(SCHEMA_PATH.read_text())
    family = schema["$defs"]["metric_row"]["properties"]["family"]["enum"]
    assert tuple(family) == FAMILIES
    definition = schema["properties"]["definitions"]["additionalProperties"]
    assert set(definition["required"]) == set(REGISTRY["rmse"].describe())


def test_report_references_are_the_specs_plus_the_general_ones():
    cited = {r for spec in REGISTRY for r in spec.references}
    assert all(any(r.startswith(c) for r in REFERENCES) for c in cited)
    assert "Steck (2018), Calibrated recommendations [miscalibration]." in REFERENCES
    assert REFERENCES[-1].startswith("Holm (1979)")
    assert references(definitions(_fresh()))[0] == (
        "A toy reference (2024), for the registry test [quadratic_mean_rating, mean_square_rating]."
    )


def test_registering_a_key_twice_fails():
    registry = Registry(SHARED_INPUTS, [REGISTRY["rmse"]])
    with pytest.raises(RegistryError, match="'rmse' is registered twice"):
        registry.register(dataclasses.replace(REGISTRY["mae"], key="rmse"))
    with pytest.raises(RegistryError, match="'lists' is declared twice"):
        Registry([*SHARED_INPUTS, InputSpec("lists", "again", _squares)])


def test_a_module_declaring_a_duplicate_key_fails_at_import(tmp_path):
    module = tmp_path / "extra_metrics.py"
    module.write_text(
        textwrap.dedent("""
        import dataclasses
        from engine.audit.specs import REGISTRY
        REGISTRY.register(dataclasses.replace(REGISTRY["ndcg"], display_name="again"))
    """)
    )
    spec = importlib.util.spec_from_file_location("extra_metrics", module)
    with pytest.raises(RegistryError, match="'ndcg' is registered twice"):
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert REGISTRY["ndcg"].display_name == "NDCG@k"


def test_undeclared_or_incomplete_declarations_are_refused():
    with pytest.raises(RegistryError, match="undeclared input squares"):
        Registry(SHARED_INPUTS, [TOY])  # "squares" is not one of the shared inputs
    with pytest.raises(RegistryError, match="needs nowhere, not declared before it"):
        Registry([InputSpec("later", "built from nothing declared", _squares, needs=("nowhere",))])
    with pytest.raises(RegistryError, match="'formula' must be a non-empty sentence"):
        dataclasses.replace(TOY, formula=" ")
    with pytest.raises(RegistryError, match="give at least one entry in 'references'"):
        dataclasses.replace(TOY, references=())
    with pytest.raises(RegistryError, match="better 'more' is not one of"):
        dataclasses.replace(TOY, better="more")
    with pytest.raises(RegistryError, match="family 'fairness' is not one of"):
        dataclasses.replace(TOY, family="fairness")


def test_a_spec_reads_only_the_inputs_it_declared(toy_audit):
    data, model, evaluation, _, _ = toy_audit

    def sneaky(x) -> Parts:
        return Parts(x["popularity"], x["popularity"], np.sqrt)  # declared only "ratings"

    registry = Registry(SHARED_INPUTS, [dataclasses.replace(TOY, inputs=("ratings",),
                                                            compute=sneaky)])  # fmt: skip
    with pytest.raises(KeyError, match="reads input 'popularity' without declaring it"):
        run_audit(data, model, evaluation, AuditConfig(**QUICK), registry=registry)


def test_a_registry_without_the_audit_inputs_is_refused(toy_audit):
    data, model, evaluation, _, _ = toy_audit
    with pytest.raises(ConfigError, match="does not declare the inputs lists"):
        run_audit(data, model, evaluation, AuditConfig(**QUICK), registry=Registry())
