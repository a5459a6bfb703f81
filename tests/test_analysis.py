"""The analysis pipeline: stage keys, computed once, reuse across settings, refusals."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

import engine.analysis as pipeline
from engine import AuditConfig, EvaluationConfig, ModelConfig, load_dataset
from engine.analysis import (
    STAGES,
    Analysis,
    AnalysisSettings,
    RankingConfig,
    StageMismatchError,
    with_sections,
)
from engine.errors import ConfigError
from tests.conftest import synth_ratings

SMALL = ModelConfig(n_factors=4, n_epochs=5)
FAST_AUDIT = AuditConfig(bootstrap=10, permutations=20, explanations=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    synth_ratings(60, 40, 1500, seed=3).to_csv(folder / "ratings.csv", index=False)
    return load_dataset(folder / "ratings.csv")


def settings(**changes) -> AnalysisSettings:
    base = AnalysisSettings(model=SMALL, evaluation=EvaluationConfig(folds=3), audit=FAST_AUDIT)
    return replace(base, **changes)


def changed_keys(a: Analysis, b: Analysis) -> set[str]:
    return {stage for stage in STAGES if a.key(stage) != b.key(stage)}


def test_the_ranking_settings_are_shared_by_the_evaluation_and_the_audit():
    s = AnalysisSettings(
        ranking=RankingConfig(k=7, threshold=3.5),
        evaluation=EvaluationConfig(k=20, threshold=1.0, models=("Popularity",)),
        audit=AuditConfig(k=3, threshold=2.0),
    )
    assert (s.evaluation.k, s.evaluation.threshold) == (7, 3.5)
    assert (s.audit.k, s.audit.threshold) == (7, 3.5)
    assert s.evaluation.models == ("SVD", "Popularity")  # the SVD is always evaluated


def test_settings_round_trip_through_json_and_refuse_unknown_fields():
    s = settings(ranking=RankingConfig(k=5))
    assert AnalysisSettings.from_dict(s.to_dict()) == s
    assert AnalysisSettings.from_dict(s.to_dict()).digest() == s.digest()
    broken = s.to_dict()
    broken["audit"]["colour"] = "red"
    with pytest.raises(ConfigError, match=r"unknown field.*colour"):
        AnalysisSettings.from_dict(broken)
    broken = s.to_dict()
    broken["model"]["n_factors"] = -1
    with pytest.raises(ConfigError):
        AnalysisSettings.from_dict(broken)
    with pytest.raises(ConfigError, match="k=0"):
        RankingConfig(k=0)


def test_a_change_reaches_exactly_the_stages_that_rest_on_it(data):
    base = Analysis(data, settings())
    assert changed_keys(base, Analysis(data, settings())) == set()
    audit = Analysis(data, settings(audit=replace(FAST_AUDIT, min_group_size=5)))
    assert changed_keys(base, audit) == {"audit", "report"}
    ranking = Analysis(data, settings(ranking=RankingConfig(k=5)))
    assert changed_keys(base, ranking) == {"evaluation", "lists", "audit", "report"}
    model = Analysis(data, settings(model=replace(SMALL, n_factors=5)))
    assert changed_keys(base, model) == set(STAGES)
    folds = Analysis(data, settings(evaluation=EvaluationConfig(folds=4)))
    assert changed_keys(base, folds) == {"evaluation", "audit", "report"}


def test_each_stage_is_computed_once_even_when_asked_concurrently(data, monkeypatch):
    calls = []
    real_train = pipeline.train

    def slow_train(*args, **kwargs):
        calls.append(1)
        time.sleep(0.2)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(pipeline, "train", slow_train)
    analysis = Analysis(data, settings())
    models = []
    threads = [threading.Thread(target=lambda: models.append(analysis.model)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert all(m is models[0] for m in models)
    assert analysis.lists is analysis.lists
    assert analysis.computed() == ["model", "lists"]


def test_new_settings_keep_the_stages_they_do_not_change(data):
    analysis = Analysis(data, settings())
    analysis.audit()
    stricter = analysis.with_settings(settings(audit=replace(FAST_AUDIT, min_group_size=5)))
    assert stricter.computed() == ["model", "evaluation", "lists"]
    assert stricter.model is analysis.model
    assert stricter.evaluation() is analysis.evaluation()
    assert stricter.audit().config.min_group_size == 5
    assert analysis.with_settings(analysis.settings) is analysis


def test_a_cancelled_stage_keeps_nothing_and_runs_again(data):
    analysis = Analysis(data, settings())

    class Cancelled(BaseException):  # what Streamlit's rerun raises in a progress update
        pass

    def cancel(fraction, message):
        raise Cancelled

    with pytest.raises(Cancelled):
        analysis.evaluation(progress=cancel)
    assert "evaluation" not in analysis.computed()
    assert analysis.evaluation().evaluation.folds == 3


def test_a_stage_from_other_data_or_settings_is_refused(data, tmp_path):
    analysis = Analysis(data, settings())
    other = Analysis(data, settings(model=replace(SMALL, n_factors=5)))
    with pytest.raises(StageMismatchError, match="model's settings differ"):
        analysis.adopt("model", other.model)
    with pytest.raises(StageMismatchError, match="computed from other data or settings"):
        analysis.adopt("model", other.model, key=other.key("model"))
    with pytest.raises(StageMismatchError, match="other model settings"):
        analysis.adopt("evaluation", other.evaluation())
    synth_ratings(50, 30, 1100, seed=4).to_csv(tmp_path / "ratings.csv", index=False)
    elsewhere = Analysis(load_dataset(tmp_path / "ratings.csv"), settings())
    with pytest.raises(StageMismatchError, match="trained on another dataset"):
        analysis.adopt("model", elsewhere.model)
    analysis.adopt("model", Analysis(data, settings()).model, key=analysis.key("model"))
    assert analysis.computed() == ["model"]


def test_the_report_rests_on_this_analysis_and_sections_are_a_view(data):
    analysis = Analysis(data, settings())
    report = analysis.report()
    assert report.provenance["dataset"]["fingerprint"] == data.fingerprint
    assert report.model["config"]["n_factors"] == SMALL.n_factors
    assert analysis.computed() == list(STAGES)
    short = analysis.report(("summary", "provenance"))
    assert short.sections == ("summary", "provenance")
    assert short.metrics is report.metrics  # a view, not a rebuild
    with pytest.raises(ConfigError, match="Unknown or no report sections"):
        with_sections(report, ("nonsense",))


def test_k_beyond_the_catalogue_is_capped_and_the_evaluation_still_belongs(data):
    analysis = Analysis(data, settings(ranking=RankingConfig(k=data.n_items + 5)))
    assert analysis.evaluation().evaluation.k == data.n_items
    unrated = data.n_items - data.ratings.groupby("user_id").size()
    listed = analysis.lists.groupby("user_id").size()
    assert listed.to_dict() == unrated[unrated > 0].to_dict()  # every unrated item, ranked
