"""The whole analysis of ratings that stay in Spark: evaluate, fit, audit, report.

``run_in_spark`` chains ``engine.spark.evaluate.evaluate_spark`` (the SVD and its
comparators BaselineOnly and Popularity by hashed K-fold or the temporal split, Parquet
under ``out``), ``engine.spark.train.fit_spark`` on all ratings,
``engine.spark.audit.audit_spark`` and the report (``engine.spark.report``'s
``report_parts_in_spark``, then ``assemble_report``), computing the
per-user statistics and the ratings per item once for the audit and the report. The driver
holds per-user and per-item aggregates and the users x k lists, never the ratings (the
CLI's ``run --engine spark --keep-in-spark``).

It makes no saved analysis (``engine.saved``): that holds the ratings, the held-out
predictions and the model in memory-sized files, which is what this route avoids. Its
outputs are the report, the evaluation's Parquet tables and the report's parts, which
``engine.saved.kept`` stores so that the report can be written again without Spark.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine.audit.config import AuditConfig
from engine.audit.run import AuditResult
from engine.errors import ConfigError
from engine.metrics import resolve_threshold
from engine.model.config import ModelConfig
from engine.report.build import Report, ReportParts, assemble_report
from engine.spark.evaluate import KEPT_MODELS, evaluate_spark

if TYPE_CHECKING:
    from engine.spark.evaluate import SparkEvaluation
    from engine.spark.inputs import KeptInputs

#: The protocols ``evaluate_spark`` runs where the ratings lie.
KEPT_SPLITS = ("kfold", "temporal")


@dataclass(frozen=True)
class KeptRun:
    """What ``run_in_spark`` computed.

    The evaluation (its Parquet under ``out``), the audit's result, what the report shows
    next to it (``parts``, stored by ``engine.saved.kept.save_kept``), the report and the
    manifest records of the user side's files (``None`` when not written).
    """

    evaluation: SparkEvaluation
    result: AuditResult
    parts: ReportParts
    report: Report
    user_side: dict[str, dict[str, Any]] | None = None


def run_in_spark(
    inputs: KeptInputs,
    out: str | Path,
    model: ModelConfig | None = None,
    audit: AuditConfig | None = None,
    *,
    split: Literal["kfold", "temporal"] = "kfold",
    folds: int = 5,
    test_share: float = 0.2,
    sections: tuple[str, ...] | list[str] | None = None,
    models: tuple[str, ...] = KEPT_MODELS,
    user_side: str | Path | None = None,
) -> KeptRun:
    """Evaluate, fit, audit and report ``inputs`` in Spark (module docstring).

    ``audit`` gives ``k``, the relevance ``threshold`` (``None``: the top quarter of the
    scale) and the seed, used by the evaluation too; ``out``: the folder of the
    evaluation's Parquet tables; ``models``: the SVD and the comparators to evaluate
    (``evaluate_spark``'s); ``user_side``: the run's folder, where
    ``engine.saved.user_side``'s files are written (``None``: not written).

    Raises
    ------
    ConfigError
        ``split`` is a protocol this route does not run, or ``models`` a model.
    """
    from engine.spark.audit import audit_spark, item_popularity, user_statistics
    from engine.spark.report import report_parts_in_spark
    from engine.spark.train import fit_spark

    if split not in KEPT_SPLITS:
        raise ConfigError(
            f"The split {split!r} is not run where the ratings lie: choose kfold or temporal, "
            "or leave out --keep-in-spark to evaluate in memory."
        )
    model = replace(model or ModelConfig(), engine="spark")
    audit = audit or AuditConfig()
    ratings = inputs.ratings
    scale = ratings.report.scale
    threshold = resolve_threshold(audit.threshold, scale)[0]
    evaluation = evaluate_spark(
        ratings.ratings, (scale.low, scale.high), out, model, split=split, folds=folds,
        seed=audit.seed, test_share=test_share, k=audit.k, threshold=threshold, models=models,
    )  # fmt: skip
    fit = fit_spark(ratings.ratings, model)
    counted = {"statistics": user_statistics(ratings, evaluation),
               "popularity": item_popularity(ratings)}  # fmt: skip
    tables = {"users": inputs.users, "items": inputs.items}
    result = audit_spark(ratings, evaluation, audit, fit=fit, model=model, **counted, **tables)
    parts = report_parts_in_spark(ratings, evaluation, result, model, name=inputs.name,
                                  synthetic=inputs.synthetic, **counted, **tables)  # fmt: skip
    report = assemble_report(result, **parts.arguments(), sections=sections)
    written = None
    if user_side is not None:
        from engine.spark.user_side import write_user_side_in_spark

        written = write_user_side_in_spark(user_side, fit, ratings, **counted, **tables)
    return KeptRun(evaluation, result, parts, report, written)
