"""One analysis: a dataset, frozen settings, and each stage computed once, on demand.

The stages and what each rests on::

    data ─┬─ model ───────┬─ lists ─┐
          │               │         ├─ audit ── report
          └─ evaluation ──┴─────────┘

* ``model``: the SVD trained on all ratings (``engine.model.train``);
* ``evaluation``: K-fold out-of-fold predictions and metrics of the SVD and the
  comparators (``engine.evaluate``);
* ``lists``: every user's top-``k`` list from ``model`` (``engine.recommend.recommend_all``,
  in the Spark executors with the Spark engine);
* ``audit``: every metric family by every grouping (``engine.audit.run_audit``), on those
  lists;
* ``report``: the renderer-independent ``Report`` (``engine.report.build_report``).

Each stage has a **key**: the SHA-256 of the canonical JSON of its name, ``CODE_VERSION``,
its own settings and the keys of the stages it rests on (the data's key is its content
fingerprint). A stage is computed at most once per ``Analysis`` (concurrent callers wait
for the first), and ``with_settings`` makes a new ``Analysis`` that keeps every stage
whose key did not change: a new audit setting reuses the model and the evaluation, a new
``k`` recomputes the evaluation, lists, audit and report but not the model. A stage
computed elsewhere (a saved analysis) is ``adopt``-ed only after ``check_stage`` verified
it matches what it claims to rest on (fingerprints and configs), so a report can never
pair one model's audit with another model's accuracy.

The settings hold one ranking configuration (``k`` and the relevance ``threshold``) that
the evaluation and the audit share; ``AnalysisSettings`` writes it into both.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import pandas as pd

from engine.audit import AuditConfig, AuditResult, run_audit
from engine.checks import is_finite_number, is_int
from engine.data.types import RatingData
from engine.errors import ConfigError, EngineError
from engine.evaluate import Evaluation, EvaluationConfig, evaluate
from engine.memory import release_free_memory
from engine.model import ModelConfig, TrainedModel, train
from engine.model.svd import Progress
from engine.recommend import recommend_all
from engine.report import Report, build_report
from engine.report.build import SECTIONS
from engine.spark.train import train_data

#: Bump when a stage's computation changes its results, so stored stages are recomputed.
CODE_VERSION = "2"
#: Every stage, in the order they are computed, with the stages each rests on.
STAGES: dict[str, tuple[str, ...]] = {
    "model": ("data",),
    "evaluation": ("data",),
    "lists": ("model",),
    "audit": ("data", "model", "evaluation", "lists"),
    "report": ("data", "model", "evaluation", "audit"),
}
#: Models the evaluation compares by default: KNNBaseline is left out because its
#: all-items top-N scoring is slow (choose it on the Model page or with ``--models``).
DEFAULT_MODELS: tuple[str, ...] = ("SVD", "BaselineOnly", "Popularity")


class StageMismatchError(EngineError):
    """A stage result that does not rest on the stages it is paired with."""


@dataclass(frozen=True)
class RankingConfig:
    """The top-N settings the evaluation and the audit share.

    Parameters
    ----------
    k
        Length of every top-N list (ranking metrics, audited lists, report), >= 1.
    threshold
        A held-out rating >= threshold is relevant, in rating units; ``None`` (default)
        takes the top quarter of the data's scale (``RatingScale.relevance_threshold``).
    """

    k: int = 10
    threshold: float | None = None

    def __post_init__(self) -> None:
        if not is_int(self.k) or self.k < 1:
            raise ConfigError(f"k={self.k!r} is not allowed: use a whole number >= 1 (default 10).")
        if self.threshold is not None and not is_finite_number(self.threshold):
            raise ConfigError(
                f"threshold={self.threshold!r} is not allowed: use a finite rating, or None "
                "to take the top quarter of the data's scale."
            )


@dataclass(frozen=True)
class AnalysisSettings:
    """Frozen settings of every stage.

    ``ranking`` is the one ``k``/``threshold``: on construction it replaces the ``k`` and
    ``threshold`` of ``evaluation`` and ``audit``, so the two can never disagree.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    evaluation: EvaluationConfig = field(
        default_factory=lambda: EvaluationConfig(models=DEFAULT_MODELS)
    )
    audit: AuditConfig = field(default_factory=AuditConfig)

    def __post_init__(self) -> None:
        for name, kind in (("model", ModelConfig), ("ranking", RankingConfig),
                           ("evaluation", EvaluationConfig), ("audit", AuditConfig)):  # fmt: skip
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(
                    f"AnalysisSettings.{name} must be a {kind.__name__}, not "
                    f"{type(getattr(self, name)).__name__}."
                )
        shared = {"k": self.ranking.k, "threshold": self.ranking.threshold}
        models = tuple(dict.fromkeys(("SVD", *self.evaluation.models)))
        object.__setattr__(self, "evaluation", replace(self.evaluation, models=models, **shared))
        object.__setattr__(self, "audit", replace(self.audit, **shared))

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready nested dictionaries (tuples become lists).

        The evaluation holds only the protocol settings its ``split`` uses
        (``EvaluationConfig.protocol_fields``): a K-fold evaluation's dictionary, digest and
        stage keys are those of analyses saved before the time protocols existed. The
        model's ``engine`` is left out when it is the default ``"surprise"``, likewise.
        """
        values = asdict(self)
        for name in ("split", "test_share", "last_n", "windows"):
            del values["evaluation"][name]
        values["evaluation"].update(self.evaluation.protocol_fields())
        if values["model"]["engine"] == "surprise":  # the default: keys as before it existed
            del values["model"]["engine"]
        return json.loads(json.dumps(values))

    @classmethod
    def from_dict(cls, values: object) -> AnalysisSettings:
        """Rebuild settings from ``to_dict`` output, validating every field.

        Raises
        ------
        ConfigError
            A part is missing or not a dictionary, a field is unknown, or a value is outside
            its allowed range (the config's own check).
        """
        if not isinstance(values, dict):
            raise ConfigError("The analysis settings are not a JSON object.")
        parts: dict[str, Any] = {}
        for part in fields(cls):
            kind = {"model": ModelConfig, "ranking": RankingConfig,
                    "evaluation": EvaluationConfig, "audit": AuditConfig}[part.name]  # fmt: skip
            given = values.get(part.name)
            if not isinstance(given, dict):
                raise ConfigError(f"The analysis settings have no '{part.name}' object.")
            known = {f.name for f in fields(kind)}
            unknown = sorted(set(given) - known)
            if unknown:
                raise ConfigError(
                    f"The '{part.name}' settings have unknown field(s) {', '.join(unknown)}: "
                    "the analysis was saved by another version of the tool."
                )
            try:
                parts[part.name] = kind(**{k: _tuples(v) for k, v in given.items()})
            except TypeError as e:
                raise ConfigError(f"The '{part.name}' settings are not valid: {e}.") from e
        return cls(**parts)

    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON of all settings."""
        return _digest(self.to_dict())

    def of_stage(self, stage: str) -> dict[str, Any]:
        """Return the settings ``stage`` depends on directly (its key hashes these)."""
        d = self.to_dict()
        return {
            "model": {"model": d["model"]},
            "evaluation": {"model": d["model"], "evaluation": d["evaluation"]},
            "lists": {"k": d["ranking"]["k"]},
            "audit": {"audit": d["audit"]},
            "report": {},
        }[stage]


def _tuples(value: object) -> object:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Analysis:
    """A dataset with frozen ``AnalysisSettings``; each stage computed once, on demand.

    Thread-safe: two callers asking for the same stage get the same object, computed once.
    A computation that raises (including a cancelled one, whose progress callback raised)
    stores nothing, so the next call starts again.
    """

    def __init__(self, data: RatingData, settings: AnalysisSettings | None = None) -> None:
        self.data = data
        self.settings = settings or AnalysisSettings()
        self._results: dict[str, tuple[str, Any]] = {}
        self._locks = {stage: threading.Lock() for stage in STAGES}
        self._guard = threading.Lock()
        self._keys: dict[str, str] = {}
        #: Sentences about how this analysis came to be, e.g. stages of a saved analysis
        #: left out because another code version computed them.
        self.notes: list[str] = []

    def __repr__(self) -> str:
        done = ", ".join(self.computed()) or "nothing"
        return f"Analysis({self.data.name!r}, settings {self.settings.digest()[:12]}, {done})"

    # -- keys --------------------------------------------------------------------------
    def key(self, stage: str) -> str:
        """Return the stage's key (see the module docstring); ``"data"`` gives the fingerprint."""
        if stage == "data":
            return self.data.fingerprint
        if stage not in STAGES:
            raise ConfigError(f"Unknown stage {stage!r}: use one of {', '.join(STAGES)}.")
        if stage not in self._keys:
            self._keys[stage] = _digest({
                "stage": stage,
                "code": CODE_VERSION,
                "settings": self.settings.of_stage(stage),
                "rests_on": {up: self.key(up) for up in STAGES[stage]},
            })  # fmt: skip
        return self._keys[stage]

    def computed(self) -> list[str]:
        """Return the stages already computed (or adopted), in ``STAGES`` order."""
        return [s for s in STAGES if s in self._results]

    def result(self, stage: str) -> Any | None:
        """Return the stage's result if it is computed, else ``None`` (never computes)."""
        held = self._results.get(stage)
        return held[1] if held is not None and held[0] == self.key(stage) else None

    # -- stages ------------------------------------------------------------------------
    def _stage(self, stage: str, compute: Callable[[], Any]) -> Any:
        held = self.result(stage)
        if held is not None:
            return held
        with self._locks[stage]:
            held = self.result(stage)
            if held is None:
                held = compute()
                check_stage(self, stage, held)
                self._results[stage] = (self.key(stage), held)
                release_free_memory()  # a stage's intermediate tables (engine.memory)
            return held

    @property
    def model(self) -> TrainedModel:
        """The SVD trained on every rating with ``settings.model``."""
        trainer = train if self.settings.model.engine == "surprise" else train_data
        return self._stage("model", lambda: trainer(self.data, self.settings.model))

    def evaluation(self, progress: Progress | None = None) -> Evaluation:
        """Return the K-fold evaluation of the SVD and the comparators (``settings.evaluation``)."""
        return self._stage(
            "evaluation",
            lambda: evaluate(
                self.data, self.settings.model, self.settings.evaluation, progress=progress
            ),
        )

    @property
    def lists(self) -> pd.DataFrame:
        """Every user's top-``k`` unrated items from ``model``: ``recommend_all`` columns.

        With ``settings.model.engine == "spark"`` the lists are computed in the Spark
        executors (``engine.spark.recommend.recommend_all_in_spark``, the same rows).
        """
        k = min(self.settings.ranking.k, self.model.interactions.n_items)
        return self._stage("lists", lambda: _recommend_all(self.model, k))

    def audit(self, progress: Progress | None = None) -> AuditResult:
        """Return the audit of ``model`` on ``lists`` with ``evaluation`` (``settings.audit``)."""

        def compute() -> AuditResult:
            model, lists = self.model, self.lists
            evaluation = self.evaluation(progress=_part(progress, 0.0, 0.7))
            return run_audit(self.data, model, evaluation, self.settings.audit,
                             lists=lists, progress=_part(progress, 0.7, 1.0))  # fmt: skip

        return self._stage("audit", compute)

    def report(
        self, sections: tuple[str, ...] | None = None, created: datetime | None = None
    ) -> Report:
        """Return the report; ``sections`` (default all of ``SECTIONS``) are what HTML/PDF show.

        Built once with every section; a choice of sections is a view of it. ``created``
        (default now) is the only field two runs of the same analysis differ in.
        """
        report = self._stage(
            "report",
            lambda: build_report(
                self.data, self.model, self.evaluation(), self.audit(), created=created
            ),
        )
        return report if sections is None else with_sections(report, sections)

    # -- reuse and adoption -----------------------------------------------------------
    def with_settings(self, settings: AnalysisSettings) -> Analysis:
        """Return a new analysis of the same data that keeps every stage whose key is unchanged."""
        if settings == self.settings:
            return self
        other = Analysis(self.data, settings)
        for stage, (key, value) in self._results.items():
            if other.key(stage) == key:
                other._results[stage] = (key, value)
        return other

    def adopt(self, stage: str, value: Any, key: str | None = None) -> None:
        """Take a stage computed elsewhere (a saved analysis), after checking it.

        Raises
        ------
        StageMismatchError
            ``key`` (the key it was stored under) is not this analysis's key for the stage,
            or the value does not rest on this analysis's data and settings.
        """
        if key is not None and key != self.key(stage):
            raise StageMismatchError(
                f"The stored {stage} was computed from other data or settings than this "
                f"analysis (key {key[:12]} vs {self.key(stage)[:12]}): compute it again."
            )
        check_stage(self, stage, value)
        self._results[stage] = (self.key(stage), value)


def with_sections(report: Report, sections: tuple[str, ...] | list[str]) -> Report:
    """``report`` showing ``sections`` in HTML/PDF (JSON and CSV carry everything)."""
    unknown = sorted(set(sections) - set(SECTIONS))
    chosen = tuple(s for s in SECTIONS if s in sections)
    if unknown or not chosen:
        raise ConfigError(
            f"Unknown or no report sections {unknown or list(sections)}: choose from "
            f"{', '.join(SECTIONS)}."
        )
    return replace(report, sections=chosen)


def _recommend_all(model: TrainedModel, k: int) -> pd.DataFrame:
    """``recommend_all(model, k)``, computed in Spark when the model's engine is Spark."""
    if model.config.engine == "spark":
        from engine.spark.recommend import recommend_all_in_spark  # pyspark only now

        return recommend_all_in_spark(model, k)
    return recommend_all(model, k)


def _part(progress: Progress | None, start: float, end: float) -> Progress | None:
    """Map a stage's 0..1 progress into ``[start, end]`` of the caller's bar."""
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


def check_stage(analysis: Analysis, stage: str, value: Any) -> None:
    """Refuse a stage result that does not rest on ``analysis``'s data and settings.

    Checks what each result records about its inputs: the model's dataset fingerprint
    and config; the evaluation's fingerprint, model config and settings (threshold
    compared after resolution); the lists' users and length; the audit's settings.
    """
    data, settings = analysis.data, analysis.settings
    problems: list[str] = []
    if stage == "model":
        if value.fingerprint != data.fingerprint:
            problems.append("the model was trained on another dataset")
        if value.config != settings.model:
            problems.append("the model's settings differ")
    elif stage == "evaluation":
        if value.fingerprint != data.fingerprint:
            problems.append("the evaluation used another dataset")
        if value.config != settings.model:
            problems.append("the evaluation used other model settings")
        # The evaluation caps k at the catalogue and resolves a threshold of None.
        wanted = replace(settings.evaluation, k=min(settings.evaluation.k, data.n_items))
        if replace(value.evaluation, threshold=wanted.threshold) != wanted or (
            wanted.threshold is not None and value.evaluation.threshold != wanted.threshold
        ):
            problems.append("the evaluation used other folds, seed, k, threshold or models")
    elif stage == "lists":
        if len(value) and int(value["rank"].max()) > settings.ranking.k:
            problems.append(f"the lists are longer than k = {settings.ranking.k}")
    elif stage == "audit":
        wanted = settings.audit
        if replace(value.config, threshold=wanted.threshold) != wanted or (
            wanted.threshold is not None and value.config.threshold != wanted.threshold
        ):
            problems.append("the audit used other settings")
    elif stage == "report" and value.provenance["dataset"]["fingerprint"] != data.fingerprint:
        problems.append("the report is about another dataset")
    if problems:
        raise StageMismatchError(
            f"The {stage} does not belong to this analysis of {data.name}: "
            f"{'; '.join(problems)}. Compute it again."
        )
