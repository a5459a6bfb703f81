"""End to end at scale: ``python -m engine run`` on synthetic data of MovieLens 25M's shape.

For each size and engine, one ``run`` (load, train on all ratings, 5-fold evaluation of
SVD / BaselineOnly / Popularity, top-10 for every user, audit, report as JSON) runs in a
fresh subprocess, with a time limit. While it runs, the resident memory of its process
tree is sampled from ``/proc`` every half second: the peak of the Python driver, of the
Java process (in ``local`` mode Spark's driver and executors are that one JVM) and of the
tree's total. Usage::

    python -m tests.benchmarks.scale --ratings 100000,1000000 --engines surprise,spark

The data: MovieLens 25M has 162,541 users, 59,047 items and 25,000,095 half-star ratings
(0.5-5), every user with at least 20. A size of ``n`` ratings keeps its shape:
``162541 n / 25M`` users (activity log-normal; ~154 ratings each, as there) and
``59047 sqrt(n / 25M)`` items (Zipf-like popularity, exponent 1; the square root keeps
smaller sets from saturating every profile); (user, item) pairs drawn, a user's repeated
draws of one item dropped, more drawn until n remain, n kept at random (the table counts
users and items). Half-star ratings from user and item effects plus noise, timestamps
over 1995-2019. Written once under ``.bench/``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.model.config import ModelConfig
from tests.benchmarks.cases import WORK

ML25M_USERS, ML25M_ITEMS, ML25M_RATINGS = 162_541, 59_047, 25_000_095
MIN_PER_USER = 20
#: At most this many (user, item) draws per wanted rating.
MAX_DRAWS = 4
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20


def ml25m_shape(n_ratings: int, seed: int = 0) -> Path:
    """Write (once) and return a CSV of about ``n_ratings`` ratings of MovieLens 25M's shape."""
    path = WORK / f"ml25m_shape_{n_ratings}.csv"
    if path.exists():
        return path
    WORK.mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    scale = n_ratings / ML25M_RATINGS
    n_users = max(10, round(ML25M_USERS * scale))
    n_items = max(50, round(ML25M_ITEMS * scale**0.5))
    activity = rng.lognormal(0.0, 1.0, n_users)
    weights = 1.0 / np.arange(1, n_items + 1)
    weights /= weights.sum()
    pairs = pd.DataFrame({"u": [], "i": []}, dtype=np.int64)
    draws = n_ratings
    while len(pairs) < n_ratings and draws < MAX_DRAWS * n_ratings:
        draws = round(draws * 1.25)  # a user's repeated draws of one item are dropped
        per_user = MIN_PER_USER + np.floor(
            activity / activity.sum() * (draws - MIN_PER_USER * n_users)
        ).astype(np.int64)
        users = np.repeat(np.arange(n_users), np.minimum(per_user, n_items))
        items = rng.choice(n_items, len(users), p=weights)
        pairs = pd.DataFrame({"u": users, "i": items}).drop_duplicates()
    if len(pairs) > n_ratings:
        pairs = pairs.sample(n_ratings, random_state=seed).sort_index()
    users, items = pairs["u"].to_numpy(), pairs["i"].to_numpy()
    user_effect = rng.normal(0, 0.4, n_users)
    item_effect = rng.normal(0, 0.5, n_items)
    raw = 3.5 + user_effect[users] + item_effect[items] + rng.normal(0, 0.9, len(users))
    ratings = np.clip(np.round(raw * 2) / 2, 0.5, 5.0)
    times = rng.integers(789_000_000, 1_574_000_000, len(users))
    frame = pd.DataFrame({"userId": users + 1, "movieId": items + 1, "rating": ratings,
                          "timestamp": times})  # fmt: skip
    frame.to_csv(path, index=False)
    return path


@dataclass
class Peaks:
    """Peak resident memory (MiB) seen while sampling a process tree."""

    python: float = 0.0
    java: float = 0.0
    total: float = 0.0


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _rss_and_name(pid: int) -> tuple[float, str]:
    try:
        with open(f"/proc/{pid}/statm", encoding="utf-8") as statm:
            rss = int(statm.read().split()[1]) * PAGE_MIB
        with open(f"/proc/{pid}/comm", encoding="utf-8") as comm:
            return rss, comm.read().strip()
    except (OSError, ValueError, IndexError):
        return 0.0, ""


def sample_peaks(root: int, running: Callable[[], bool], peaks: Peaks) -> None:
    """Raise ``peaks`` to the process tree of ``root``'s resident memory while ``running()``."""
    while running():
        total = 0.0
        for pid in _tree(root):
            rss, name = _rss_and_name(pid)
            total += rss
            if name == "java":
                peaks.java = max(peaks.java, rss)
            elif pid == root:
                peaks.python = max(peaks.python, rss)
        peaks.total = max(peaks.total, total)
        time.sleep(0.5)


def run_end_to_end(
    csv: Path, engine: str, limit_s: float, factors: int | None = None
) -> tuple[float, int, Peaks, str]:
    """Run ``engine run csv`` with ``engine``: (seconds, exit code, peaks, last line if failed).

    ``engine``: ``surprise``, ``spark`` (``--engine spark``: the ratings collected into the
    driver, Spark where the work is) or ``spark-kept`` (the ratings never leave Spark:
    ``tests.benchmarks.spark_kept``: evaluation, audit and report). ``factors``:
    ``--factors`` (latent factors; the ALS rank under Spark), else the preset's.
    """
    out = Path(tempfile.mkdtemp(prefix="scale_", dir=WORK))
    with open(csv, "rb") as lines:  # sizes above the CLI's default --max-rows (10M) too
        rows = sum(1 for _ in lines)
    command = [sys.executable, "-m", "engine", "run", str(csv), "--out", str(out / "run"),
               "--format", "json", "--max-rows", str(rows)]  # fmt: skip
    if engine == "spark-kept":  # the ratings never leave Spark (tests.benchmarks.spark_kept)
        command = [sys.executable, "-m", "tests.benchmarks.spark_kept", str(csv), str(out)]
    if factors is not None:
        command += ["--factors", str(factors)]
    if engine == "spark":
        command += ["--engine", "spark", "--spark-master", "local[2]",
                    "--spark-driver-memory", "8g"]  # fmt: skip
    peaks = Peaks()
    start = time.perf_counter()
    with open(out / "log.txt", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        sampler = threading.Thread(
            target=sample_peaks,
            args=(process.pid, lambda: process.poll() is None, peaks),
            daemon=True,
        )
        sampler.start()
        try:
            code = process.wait(timeout=limit_s)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
            code = -9 if code == 0 else code
        sampler.join(timeout=5)
    seconds = time.perf_counter() - start
    tail = (out / "log.txt").read_text(errors="replace").strip().splitlines()[-1:]
    return seconds, code, peaks, "" if code == 0 else " ".join(tail)[:160]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.scale")
    parser.add_argument("--ratings", default="100000,1000000",
                        help="comma-separated sizes, in ratings")  # fmt: skip
    parser.add_argument("--engines", default="surprise,spark",
                        help="surprise, spark, spark-kept (ratings kept in Spark)")  # fmt: skip
    parser.add_argument("--limit-min", type=float, default=60.0,
                        help="time limit per run, minutes (the issue's: 60)")  # fmt: skip
    parser.add_argument("--factors", type=int, default=None,
                        help="latent factors, the ALS rank under Spark (default: 100)")  # fmt: skip
    args = parser.parse_args()
    rank = args.factors or ModelConfig().n_factors
    print(f"python -m engine run, {os.cpu_count()} cores, {rank} factors, "
          f"limit {args.limit_min:g} min\n")  # fmt: skip
    print("| ratings | users | items | engine | exit | wall s | peak Python MiB | "
          "peak Java MiB | peak total MiB | error |")  # fmt: skip
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for size in (int(s) for s in args.ratings.split(",")):
        csv = ml25m_shape(size)
        head = pd.read_csv(csv, usecols=["userId", "movieId"])
        for engine in args.engines.split(","):
            seconds, code, peaks, tail = run_end_to_end(
                csv, engine, args.limit_min * 60, args.factors
            )
            print(f"| {len(head):,} | {head['userId'].nunique():,} | "
                  f"{head['movieId'].nunique():,} | {engine} | {code} | {seconds:.0f} | "
                  f"{peaks.python:.0f} | {peaks.java:.0f} | {peaks.total:.0f} | {tail} |",
                  flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
