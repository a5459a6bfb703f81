"""One Spark-engine fit at scale, stage by stage, with the peak memory after each stage.

On synthetic data of MovieLens 25M's shape (``tests.benchmarks.scale.ml25m_shape``), in
``local[2]`` with an 8g driver, as ``python -m engine run --engine spark`` does it:

1. ``load``: the rating file read and validated by Spark, collected into a ``RatingData``
   (``engine.spark.inputs.load_inputs``);
2. ``baselines``, ``item factors`` (ALS), ``users`` (the exact ridge refit): the stages
   ``engine.spark.train.fit_spark`` logs, including sending the ratings to Spark;
3. ``fit, in all``: ``train_data`` from the ``RatingData`` (the stages above, and collecting
   the parameters into a ``TrainedModel``);
4. ``top-10``: every user's top-10 list in the executors (``recommend_all_in_spark``).

The peaks are the resident memory of this process (the Python driver), of its JVM (in local
mode Spark's driver and executors) and of both, sampled from ``/proc`` twice a second, so
far. Usage::

    python -m tests.benchmarks.spark_stages --ratings 25000000 [--factors 100]
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import threading
import time

from tests.benchmarks.scale import Peaks, ml25m_shape, sample_peaks

#: A stage line of ``engine.spark.train.fit_spark``'s log.
_STAGE = re.compile(r"Spark fit stage (.+): ([0-9.]+) s")


class _Stages(logging.Handler):
    """Print each stage ``fit_spark`` logs, with the peaks so far."""

    def __init__(self, peaks: Peaks) -> None:
        super().__init__(logging.INFO)
        self.peaks = peaks

    def emit(self, record: logging.LogRecord) -> None:
        found = _STAGE.fullmatch(record.getMessage())
        if found:
            print_stage(found[1], float(found[2]), self.peaks)


def print_stage(stage: str, seconds: float, peaks: Peaks) -> None:
    print(f"| {stage} | {seconds:.1f} | {peaks.python:.0f} | {peaks.java:.0f} | "
          f"{peaks.total:.0f} |", flush=True)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.spark_stages")
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--factors", type=int, default=100, help="ALS rank (default 100)")
    args = parser.parse_args()

    from engine.data import LoadOptions
    from engine.model.config import ModelConfig
    from engine.spark.inputs import load_inputs
    from engine.spark.recommend import recommend_all_in_spark
    from engine.spark.session import SparkSettings, configure, spark_session
    from engine.spark.train import train_data

    csv = ml25m_shape(args.ratings)
    peaks, running = Peaks(), threading.Event()
    running.set()
    threading.Thread(target=sample_peaks, args=(os.getpid(), running.is_set, peaks),
                     daemon=True).start()  # fmt: skip
    fit_log = logging.getLogger("engine.spark.train")
    fit_log.setLevel(logging.INFO)
    fit_log.addHandler(_Stages(peaks))
    configure(SparkSettings(master="local[2]", driver_memory="8g"))
    spark_session()
    print(f"One Spark fit of {csv.name}, rank {args.factors}, local[2], {os.cpu_count()} cores\n")
    print("| stage | s | peak Python MiB | peak Java MiB | peak total MiB |")
    print("|---|---:|---:|---:|---:|")
    start = time.perf_counter()
    data = load_inputs(csv, options=LoadOptions(max_rows=2 * args.ratings + 1))
    print_stage(f"load ({len(data.ratings):,} ratings)", time.perf_counter() - start, peaks)
    start = time.perf_counter()
    model = train_data(data, ModelConfig(n_factors=args.factors, engine="spark"))
    print_stage("fit, in all", time.perf_counter() - start, peaks)
    start = time.perf_counter()
    lists = recommend_all_in_spark(model, 10)
    users = lists["user_id"].nunique()
    print_stage(f"top-10 for {users:,} users", time.perf_counter() - start, peaks)
    running.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
