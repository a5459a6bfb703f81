"""Run every benchmark case in its own process and print one markdown table.

Usage: ``python -m tests.benchmarks [--only SUBSTRING]``. Times are the median of
the case's repeats (wall clock); peak memory is the process's maximum resident
set size, and "+MiB" is that peak minus the resident size after imports.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import date

from tests.benchmarks import browser, spark, update  # noqa: F401  (add their cases to CASES)
from tests.benchmarks.cases import CASES, ML100K, ensure_million_csv, ensure_synthetic_million


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(name: str) -> dict[str, float]:
    """Run one case in this process (called in the child) and return its figures."""
    func, _, _, repeats = CASES[name]
    import pandas  # noqa: F401
    import surprise  # noqa: F401

    import engine  # noqa: F401  (imports are not part of the measurement)

    baseline = _rss_mib()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        elapsed = time.perf_counter() - start
        times.append(result[2] if len(result) == 3 else elapsed)
    peak = _rss_mib()
    return {
        "rows": result[0],
        "notes": result[1],
        "seconds": statistics.median(times),
        "peak": peak,
        "extra": peak - baseline,
    }


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("--only", help="run the cases whose name contains this (any case)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case)))
        return 0

    have = {"": True, "ml100k": (ML100K / "u.data").exists(), "million": True, "synth1m": True}
    ensure_million_csv()
    ensure_synthetic_million()
    results: dict[str, dict[str, float]] = {}
    skipped = []
    for name, (_, needs, _, _) in CASES.items():
        if args.only and args.only.lower() not in name.lower():
            continue
        if not have[needs]:
            skipped.append(f"{name} (needs {ML100K})")
            continue
        done = subprocess.run(
            [sys.executable, "-m", "tests.benchmarks", "--case", name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])

    print(
        f"Benchmarks, {date.today()}, {os.cpu_count()} cores, {_cpu()}, "
        f"Python {platform.python_version()}\n"
    )
    print("| case | rows | median s | peak RSS MiB | +MiB over imports | vs baseline | notes |")
    print("|---|---:|---:|---:|---:|---|---|")
    for name, r in results.items():
        baseline = CASES[name][2]
        ratio = ""
        if baseline in results:
            speed = results[baseline]["seconds"] / r["seconds"]
            ratio = f"{speed:.2f}x the speed of {baseline}"
        print(
            f"| {name} | {int(r['rows']):,} | {r['seconds']:.3f} | {r['peak']:.0f} | "
            f"{r['extra']:.0f} | {ratio} | {r['notes']} |"
        )
    for name in skipped:
        print(f"\nskipped: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
