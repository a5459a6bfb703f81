"""Choosing the Spark engine: validated settings, stage keys kept, one-sentence failures.

None of these start a JVM in this process (the checks run before Spark would). What
reaches the CLI's stderr with Spark is checked by ``test_spark_standalone``, whose CLI runs
in subprocesses.
"""

from __future__ import annotations

import os
import socket
from dataclasses import fields

import pytest

from engine.analysis import AnalysisSettings
from engine.cli import main
from engine.errors import ConfigError
from engine.model import ModelConfig
from engine.spark.session import SparkSettings, SparkUnavailableError, require_spark
from tests.conftest import SAMPLE_DIR
from tests.test_spark_support import spark_fixture, spark_missing, toy_ratings  # noqa: F401

#: Read when the tests are collected, before any test starts a Spark session.
_BLAS_THREADS_BEFORE_ANY_SESSION = os.environ.get("OPENBLAS_NUM_THREADS")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_model_config_engine_is_validated():
    assert ModelConfig().engine == "surprise"
    assert ModelConfig(engine="spark").engine == "spark"
    with pytest.raises(ConfigError, match=r"ModelConfig.engine='mllib' is not allowed: use one of"):
        ModelConfig(engine="mllib")


def test_default_engine_leaves_the_settings_and_stage_keys_as_before():
    model = AnalysisSettings().to_dict()["model"]
    assert set(model) == {f.name for f in fields(ModelConfig)} - {"engine"}
    spark = AnalysisSettings(model=ModelConfig(engine="spark"))
    assert spark.to_dict()["model"]["engine"] == "spark"
    assert spark.digest() != AnalysisSettings().digest()
    assert AnalysisSettings.from_dict(AnalysisSettings().to_dict()) == AnalysisSettings()
    assert AnalysisSettings.from_dict(spark.to_dict()) == spark


def test_spark_settings_refuse_bad_values_in_one_sentence(monkeypatch):
    with pytest.raises(ConfigError, match=r"Spark master 'foo' is not a master URL: use local"):
        SparkSettings(master="foo")
    with pytest.raises(ConfigError, match=r"driver_memory='lots' is not a memory size"):
        SparkSettings(driver_memory="lots")
    monkeypatch.setenv("SPARK_MASTER", "spark://10.0.0.1:7077")
    assert SparkSettings().master == "spark://10.0.0.1:7077"
    monkeypatch.delenv("SPARK_MASTER")
    assert SparkSettings().master == "local[*]"
    for master in ("local[2]", "local[*]", "yarn", "k8s://https://host:6443", "spark://h:7077"):
        assert SparkSettings(master=master).master == master


def test_missing_java_is_one_sentence_naming_the_fix(monkeypatch, tmp_path):
    pytest.importorskip("pyspark")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(SparkUnavailableError, match=r"needs Java 17.*openjdk-17-jre-headless"):
        require_spark()


def test_unreachable_master_is_one_sentence_naming_the_fix():
    reason = spark_missing()
    if reason:
        pytest.skip(reason)
    port = _closed_port()
    with pytest.raises(SparkUnavailableError, match=rf"spark://127.0.0.1:{port} does not answer"):
        require_spark(f"spark://127.0.0.1:{port}")


def test_cli_spark_options_need_the_spark_engine(capsys):
    code = main(["evaluate", str(SAMPLE_DIR), "--spark-master", "local[2]"])
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "error: --spark-master applies to --engine spark only: add --engine spark."
    )
    code = main(["evaluate", str(SAMPLE_DIR), "--engine", "spark", "--spark-master", "nowhere"])
    err = capsys.readouterr().err
    assert code == 2 and "is not a master URL" in err and "Traceback" not in err


def test_cli_unreachable_master_is_one_line_not_a_traceback(capsys):
    reason = spark_missing()
    if reason:
        pytest.skip(reason)
    master = f"spark://127.0.0.1:{_closed_port()}"
    code = main(["recommend", str(SAMPLE_DIR), "--user", "u0001", "--engine", "spark",
                 "--spark-master", master])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: The Spark master {master} does not answer")
    assert len(err.strip().splitlines()) == 1


def test_spark_output_noise_is_dropped_and_errors_are_kept():
    from engine.spark.session import shown

    noise = [
        "WARNING: Using incubator modules: jdk.incubator.vector\n",
        "Using Spark's default log4j profile: org/apache/spark/log4j2-defaults.properties\n",
        'Setting default log level to "WARN".\n',
        "To adjust logging level use sc.setLogLevel(newLevel). For SparkR, use setLogLevel.\n",
        "26/11/29 11:00:00 WARN NativeCodeLoader: Unable to load native-hadoop library\n",
        "11:00:00 WARN InstanceBuilder: Failed to load implementation from:"
        "dev.ludovic.netlib.blas.JNIBLAS\n",
        "11:00:01 INFO SparkContext: Running Spark version 4.3.0\n",
        "Traceback (most recent call last):\n",
        '  File "/x/pyspark/daemon.py", line 264, in manager\n',
        "BrokenPipeError: [Errno 32] Broken pipe\n",
    ]
    errors = [
        "11:00:02 ERROR Executor: Exception in task 0.0 in stage 3.0\n",
        "Traceback (most recent call last):\n",
        '  File "/x/engine/spark/factors.py", line 1, in refit\n',
        "ValueError: bad input\n",
    ]
    assert list(shown(noise[:4] + errors[:1] + noise[4:] + errors[1:])) == errors


def test_native_blas_gets_one_thread_per_task_and_this_process_is_left_alone(spark):
    """A multi-threaded native BLAS oversubscribes Spark's one task per core (ALS 3.5x slower
    here): the JVM and its Python workers get one thread; the driver's environment is as it was."""
    jvm_env = spark.sparkContext._jvm.java.lang.System.getenv()
    in_worker = (
        spark.sparkContext.parallelize([0], 1)
        .map(lambda _: __import__("os").environ.get("OPENBLAS_NUM_THREADS"))
        .collect()
    )
    assert jvm_env.get("OPENBLAS_NUM_THREADS") == "1" and jvm_env.get("MKL_NUM_THREADS") == "1"
    assert in_worker == ["1"]
    assert os.environ.get("OPENBLAS_NUM_THREADS") == _BLAS_THREADS_BEFORE_ANY_SESSION


def test_report_provenance_names_pyspark_only_for_the_spark_engine(tmp_path):
    """A reader of a Spark-trained report sees the engine, pyspark's version, no SGD settings."""
    from dataclasses import replace
    from importlib.metadata import version

    from engine.data import load_dataset
    from engine.model import train
    from engine.report.build import provenance

    path = tmp_path / "ratings.csv"
    toy_ratings().to_csv(path, index=False)
    data = load_dataset(path)
    model = train(data, ModelConfig(n_factors=2, n_epochs=1))
    surprise = provenance(data, model)
    assert "pyspark" not in surprise["versions"]
    assert surprise["model"]["config"]["lr_all"] == model.config.lr_all
    as_spark = replace(model, config=replace(model.config, engine="spark"))
    made = provenance(data, as_spark)
    assert made["versions"]["pyspark"] == version("pyspark")
    assert made["model"]["config"]["engine"] == "spark"
    # Spark does not use the SGD settings: a reader must not take them for Spark's.
    assert not {"lr_all", "reg_all", "init_std_dev"} & set(made["model"]["config"])
    assert made["model"]["config"]["n_factors"] == model.config.n_factors


def test_frames_from_pandas_are_merged_into_few_partitions_in_order(spark, monkeypatch):
    """A frame above ``spark.sql.execution.arrow.localRelationThreshold`` (48 MiB) reaches Spark
    as one partition per Arrow batch; ``from_pandas`` merges them (without a shuffle) into
    ``max(defaultParallelism, ceil(rows / ROWS_PER_PARTITION))``, rows in order. Both
    settings are lowered here so that 5,500 rows behave as tens of millions do."""
    import pandas as pd

    import engine.spark.session as session

    frame = pd.DataFrame({"row": range(5_500), "value": [x * 0.5 for x in range(5_500)]})
    monkeypatch.setattr(session, "ROWS_PER_PARTITION", 1_000)
    lowered = {"spark.sql.execution.arrow.maxRecordsPerBatch": "100",
               "spark.sql.execution.arrow.localRelationThreshold": "0"}  # fmt: skip
    before = {key: spark.conf.get(key) for key in lowered}
    for key, value in lowered.items():
        spark.conf.set(key, value)
    try:
        assert spark.createDataFrame(frame).rdd.getNumPartitions() == 55  # one per batch
        sent = session.from_pandas(spark, frame, "row long, value double")
        assert sent.rdd.getNumPartitions() == 6
        pd.testing.assert_frame_equal(sent.toPandas(), frame)
    finally:
        for key, value in before.items():
            spark.conf.set(key, value)
    # below the threshold Spark makes defaultParallelism partitions itself, left as they are
    assert session.from_pandas(spark, frame).rdd.getNumPartitions() == 2
