"""A real cluster: a standalone master and one worker on 127.0.0.1, the pipeline run on them.

The analysis's model stage runs with the Spark master
``spark://127.0.0.1:PORT``; the model (biases, factors, refit users) must equal the same stage in
local mode (the model does not depend on where Spark runs). The master and worker are stopped
in teardown. This module runs after the other Spark tests (file order): it switches the
process's session to the cluster and back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from engine.analysis import Analysis, AnalysisSettings
from engine.data import load_dataset
from engine.model import ModelConfig
from tests.test_spark_support import LOCAL, spark_fixture, spark_missing, toy_ratings  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
START_TIMEOUT_S = 90


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


def test_the_pipeline_on_a_standalone_cluster_equals_local_mode(cluster, spark, tmp_path):
    from engine.spark.session import SparkSettings, configure, spark_session, stop_session

    path = tmp_path / "ratings.csv"
    toy_ratings().to_csv(path, index=False)
    data = load_dataset(path)
    settings = AnalysisSettings(model=ModelConfig(engine="spark", n_factors=2, n_epochs=3, seed=5))
    local_model = Analysis(data, settings).model
    configure(SparkSettings(master=cluster, driver_memory="1g", executor_memory="1g",
                            shuffle_partitions=4))  # fmt: skip
    try:
        model = Analysis(data, settings).model
        assert spark_session().sparkContext.master == cluster
    finally:
        stop_session()
        configure(SparkSettings(**LOCAL))
    assert model.config == local_model.config and model.mu == local_model.mu
    for name in ("bu", "bi", "P", "Q"):
        np.testing.assert_allclose(getattr(model, name), getattr(local_model, name), atol=1e-9)
