"""A real cluster: a standalone master and one worker on 127.0.0.1, the CLI run on them.

``python -m engine run DATA --out DIR --engine spark --spark-master spark://127.0.0.1:PORT``
runs in a subprocess (its own driver, the executor in the worker); its saved analysis must
equal the same command with ``--spark-master local[2]``, run meanwhile in this process
(``engine.cli.main`` in the JVM the Spark tests already started: no second JVM to start on 2
cores): the report's RMSE to 1e-9 and the model (biases, factors, refit users) to 1e-9 (the
model does not depend on where Spark runs). The cluster run writes none of Spark's log lines
to stderr (``SPARK_NOISE``; its driver is launched as a local one is), and its stdout is the
JSON only. The master and worker are stopped in teardown.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.model.persist import load_model
from tests.conftest import ROOT
from tests.test_spark_support import spark_fixture, spark_missing  # noqa: F401  (fixture)

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
START_TIMEOUT_S = 90
CLI_TIMEOUT_S = 300
#: Words of the JVM's start-up lines and log4j's WARN/INFO lines, kept off stderr.
SPARK_NOISE = ("WARN", "INFO", "log4j", "NativeCodeLoader")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(spark_home: Path, args: list[str], log: Path, env: dict) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [str(spark_home / "bin" / "spark-class"), *args], stdout=out,
            stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip


def _wait_for(check, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tails = "\n".join(p.read_text(errors="replace")[-2000:] for p in logs if p.exists())
    raise AssertionError(f"{what} within {START_TIMEOUT_S} s; logs:\n{tails}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = spark_missing()
    if reason:
        pytest.skip(reason)
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    folder = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "SPARK_HOME": str(spark_home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(folder), "SPARK_WORKER_DIR": str(folder / "work")}  # fmt: skip
    port = _free_port()
    master_log, worker_log = folder / "master.log", folder / "worker.log"
    processes = [
        _start(spark_home, ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                            "--port", str(port), "--webui-port", str(_free_port())],
               master_log, env),
    ]  # fmt: skip
    try:
        _wait_for(lambda: _answers(port), "the master did not open its port", [master_log])
        processes.append(
            _start(spark_home, ["org.apache.spark.deploy.worker.Worker",
                                f"spark://127.0.0.1:{port}", "--host", "127.0.0.1",
                                "--cores", "2", "--memory", "2g",
                                "--webui-port", str(_free_port())], worker_log, env)
        )  # fmt: skip
        _wait_for(
            lambda: "Successfully registered with master" in worker_log.read_text(errors="replace"),
            "the worker did not register", [master_log, worker_log],
        )  # fmt: skip
        yield f"spark://127.0.0.1:{port}"
    finally:
        for process in reversed(processes):
            _stop(process)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _ratings_csv(path: Path) -> Path:
    """A small rating file with epoch timestamps (12 users, 6 of 10 items each)."""
    rng = np.random.default_rng(3)
    rows = [(f"u{u:02d}", f"i{i:02d}", int(rng.integers(1, 6)))
            for u in range(12) for i in sorted(rng.choice(10, size=6, replace=False))]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    frame["timestamp"] = 1_600_000_000 + 3600 * np.arange(len(frame))
    frame.to_csv(path, index=False)
    return path


def _arguments(data: Path, out: Path, master: str) -> list[str]:
    return ["run", str(data), "--out", str(out), "--engine", "spark", "--spark-master", master,
            "--spark-driver-memory", "1g", "--spark-executor-memory", "1g", "--split",
            "temporal", "--models", "SVD", "--factors", "2", "--epochs", "3", "--bootstrap",
            "0", "--format", "json"]  # fmt: skip


def _rmse(report: Path) -> float:
    rows = json.loads(report.read_text(encoding="utf-8"))["accuracy"]
    return next(r["mean"] for r in rows if r["model"] == "SVD" and r["metric"] == "rmse")


def test_the_cli_on_a_standalone_cluster_equals_local_mode(cluster, spark, tmp_path, capsys):
    """``python -m engine run ... --spark-master spark://...``: the same analysis as local[2]."""
    from engine.cli import main

    data = _ratings_csv(tmp_path / "ratings.csv")
    on_cluster = subprocess.Popen(
        [sys.executable, "-m", "engine", *_arguments(data, tmp_path / "cluster", cluster)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert main(_arguments(data, tmp_path / "local", "local[2]")) == 0  # meanwhile, here
        assert json.loads(capsys.readouterr().out)["analysis"] == str(tmp_path / "local")
        stdout, stderr = on_cluster.communicate(timeout=CLI_TIMEOUT_S)
    finally:
        if on_cluster.poll() is None:  # a failure here leaves no driver behind
            on_cluster.kill()
            on_cluster.communicate()
    assert on_cluster.returncode == 0, stderr[-3000:]
    assert json.loads(stdout)["analysis"] == str(tmp_path / "cluster")  # stdout: the JSON only
    noisy = [line for line in stderr.splitlines() if any(w in line for w in SPARK_NOISE)]
    assert noisy == [], stderr[-3000:]
    results = {name: tmp_path / name / "report" / "report.json" for name in ("local", "cluster")}
    assert (tmp_path / "cluster" / "manifest.json").exists()
    assert math.isfinite(_rmse(results["local"]))
    assert _rmse(results["cluster"]) == pytest.approx(_rmse(results["local"]), abs=1e-9)
    local, model = (load_model(tmp_path / name / "model" / "model") for name in results)
    assert model.config == local.config and model.mu == local.mu
    for name in ("bu", "bi", "P", "Q"):
        np.testing.assert_allclose(getattr(model, name), getattr(local, name), atol=1e-9)
