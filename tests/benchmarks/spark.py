"""MovieLens 100K through both engines in the same run: 5-fold RMSE and time of each.

The Surprise engine (SVD defaults + exact refit) and the Spark engine (BaselineOnly ALS
biases, Spark ALS rank 100 / 20 iterations / regParam 0.1 on the residuals, the same exact
refit) are evaluated by ``engine.evaluate`` on the same 5 folds, SVD only, one after the
other in this process; Spark in ``local[2]`` with 2 GB for the driver. The issue's target:
Spark RMSE within 0.01 of Surprise's. Usage: ``python -m tests.benchmarks --only spark``
(or ``python -m tests.benchmarks.spark`` for the row alone).
"""

from __future__ import annotations

import sys
import time

from tests.benchmarks.cases import CASES, ML100K


def both_engines_ml100k() -> tuple[int, str, float]:
    """Return ``(ratings, notes, Spark engine seconds)``; notes hold both RMSEs and times."""
    import warnings

    from engine import load_dataset
    from engine.evaluate import EvaluationConfig, evaluate
    from engine.model import ModelConfig
    from engine.spark.session import SparkSettings, configure, spark_session, stop_session

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    data = load_dataset(ML100K)
    settings = EvaluationConfig(models=("SVD",))
    figures = {}
    configure(SparkSettings(master="local[2]", driver_memory="2g", shuffle_partitions=4))
    start = time.perf_counter()
    spark_session()
    session_s = time.perf_counter() - start
    for engine in ("surprise", "spark"):
        start = time.perf_counter()
        result = evaluate(data, ModelConfig(engine=engine), settings).to_dict()["models"]["SVD"]
        figures[engine] = (result["rmse"]["mean"], time.perf_counter() - start)
    stop_session()
    (rmse_a, time_a), (rmse_b, time_b) = figures["surprise"], figures["spark"]
    diff = rmse_b - rmse_a
    verdict = "within 0.01" if abs(diff) <= 0.01 else "better" if diff < 0 else "WORSE"
    verdict += "" if abs(diff) <= 0.01 else " by more than 0.01"
    return (
        data.n_ratings,
        f"5-fold SVD RMSE: Surprise engine {rmse_a:.4f} in {time_a:.1f} s, Spark engine "
        f"{rmse_b:.4f} in {time_b:.1f} s (+{session_s:.1f} s session start), local[2]; "
        f"difference {diff:+.4f} ({verdict}); Spark/Surprise time "
        f"{time_b / time_a:.1f}x",
        time_b,
    )


CASES.update(
    {"ml-100k 5-fold SVD, Surprise vs Spark engine": (both_engines_ml100k, "ml100k", None, 1)}
)


def main() -> int:
    if not (ML100K / "u.data").exists():
        print(f"skipped: MovieLens 100K not found at {ML100K}")
        return 0
    rows, notes, seconds = both_engines_ml100k()
    print(f"{rows:,} ratings; {notes}; {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
