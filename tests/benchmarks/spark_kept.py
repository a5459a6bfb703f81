"""The audit of ratings that never leave Spark, end to end, for the scale benchmark.

``python -m tests.benchmarks.spark_kept CSV OUT [--factors F]``: read ``CSV`` with Spark
(``engine.spark.load.load_ratings``), hashed 5-fold evaluation of the SVD, BaselineOnly and
Popularity written as Parquet under ``OUT/evaluation`` (``engine.spark.evaluate.evaluate_spark``:
held-out predictions, top-10 lists with rated items excluded, per-user ranking metrics; each
model's mean RMSE, NDCG@10 and coverage are printed), the fit on all ratings
(``fit_spark``) and the audit from aggregates computed in Spark
(``engine.spark.audit.audit_spark``), its tables written as CSV under ``OUT``, and the report
of that audit (``engine.spark.report.report_spark``) written as HTML, JSON and CSV under
``OUT/report``. Spark runs in
``local[2]`` with an 8 GB driver JVM, as the scale benchmark's ``--engine spark`` run. Each
stage's wall seconds are printed. ``tests.benchmarks.scale --engines spark-kept`` runs this in
a child process and samples its memory.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path


def main() -> int:
    """Run the stages and print their times (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.spark_kept")
    parser.add_argument("csv", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--factors", type=int, default=None)
    args = parser.parse_args()
    from engine.audit.config import AuditConfig
    from engine.memory import release_free_memory
    from engine.model.config import ModelConfig
    from engine.report.write import write_report
    from engine.spark.audit import audit_spark, user_statistics
    from engine.spark.evaluate import evaluate_spark
    from engine.spark.load import load_ratings
    from engine.spark.report import report_spark
    from engine.spark.session import SparkSettings, configure, stop_session
    from engine.spark.train import fit_spark

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    configure(SparkSettings(master="local[2]", driver_memory="8g"))
    config = ModelConfig(engine="spark")
    if args.factors:
        config = ModelConfig(engine="spark", n_factors=args.factors)
    clock = time.perf_counter()

    def done(stage: str) -> None:
        nonlocal clock
        release_free_memory()
        now = time.perf_counter()
        print(f"{stage}: {now - clock:.0f} s", flush=True)
        clock = now

    ratings = load_ratings(args.csv)
    done(f"load ({ratings.report.rows_kept:,} ratings)")
    scale = ratings.report.scale
    evaluation = evaluate_spark(
        ratings.ratings, (scale.low, scale.high), args.out / "evaluation", config, folds=5,
        k=10, threshold=scale.relevance_threshold(),
    )  # fmt: skip
    done(f"5-fold evaluation ({', '.join(evaluation.models)})")
    means = evaluation.summary()["mean"].unstack()[["rmse", "ndcg", "coverage"]]
    print(means.round(4).to_string(), flush=True)
    fit = fit_spark(ratings.ratings, config)
    done("fit on all ratings")
    statistics = user_statistics(ratings, evaluation)
    result = audit_spark(ratings, evaluation, AuditConfig(), fit=fit, statistics=statistics)
    done("audit")
    for name in ("metrics", "yao", "catalogue", "delta_gap"):
        getattr(result, name).to_csv(args.out / f"{name}.csv", index=False)
    print(f"{len(result.metrics):,} audit rows, {int(result.metrics['flag'].sum())} flagged")
    report = report_spark(ratings, evaluation, result, config, statistics=statistics)
    write_report(report, args.out / "report", "html,json,csv")
    done("report (HTML, JSON, CSV)")
    stop_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
