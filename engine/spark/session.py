"""The Spark session of the Spark engine: where it runs, with what memory, made once.

``SparkSettings`` says where Spark runs (the master URL: ``local[*]``, ``local[N]``,
``spark://HOST:PORT``, ``yarn``, ``k8s://https://HOST:PORT``; by default ``$SPARK_MASTER``,
else ``local[*]``), the driver and executor memory, the number of shuffle partitions and
the checkpoint folder (ALS and the bias rounds cut their lineage there; a temporary folder
by default). ``spark_session`` starts one session per process, quiet (errors only, no
progress bar, no web UI) and checks first what makes a start fail with a Java traceback:
pyspark missing, Java missing, a standalone master that does not answer. Each of those
is one ``SparkUnavailableError`` sentence naming the problem and the fix.

Quiet means: the driver JVM logs through ``log4j2.properties`` (errors only), and its
stdout/stderr pass through ``_forward``, which drops the lines Spark and the JVM print at
every start (``NOISE``: the incubator-module notice, "Setting default log level", native
BLAS fallbacks, WARN/INFO log lines, the pandas-3 notice; and the broken-pipe traceback of
pyspark's worker daemon when Spark stops reading a partition early, as ``limit`` does) and
hands every other line to this process's stderr, so real errors still show and the CLI's
stdout stays JSON only.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ConfigError, one_line

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

#: Master URL forms accepted (Spark's own; ``local-cluster`` is for Spark's tests only).
_MASTER = re.compile(r"^(local(\[(\*|\d+)(,\s*\d+)?\])?|spark://.+|yarn|k8s://.+|mesos://.+)$")
_MEMORY = re.compile(r"^\d+[kmgt]?$", re.IGNORECASE)
_LOG_CONFIG = Path(__file__).with_name("log4j2.properties")
#: Seconds to wait for a standalone master's port before refusing to start.
CONNECT_TIMEOUT_S = 5.0
#: Lines of the driver JVM's output that are not errors: dropped, everything else is shown.
NOISE = re.compile(
    r"WARNING: Using incubator modules|Setting default log level to|To adjust logging level"
    r"|Using Spark's default log4j profile|Failed to load implementation from:"
    r"|NativeCodeLoader|^\S+ \S+ (WARN|INFO|DEBUG|TRACE) |^\S+ (WARN|INFO|DEBUG|TRACE) "
    r"|PySpark does not yet fully support pandas|^\s*warnings\.warn\("
)
_BROKEN_PIPE = re.compile(r"(BrokenPipeError|ConnectionResetError)\b")
#: ``from_pandas`` merges a frame's partitions up to about this many rows each.
ROWS_PER_PARTITION = 1_000_000


class SparkUnavailableError(ConfigError):
    """Spark cannot start here: pyspark or Java missing, or the master unreachable."""


@dataclass(frozen=True)
class SparkSettings:
    """Where and how the Spark engine runs; none of these change a result.

    Parameters
    ----------
    master
        Spark master URL: ``local[*]``, ``local[N]``, ``spark://HOST:PORT``, ``yarn``,
        ``k8s://https://HOST:PORT``. Default: ``$SPARK_MASTER``, else ``local[*]``.
    driver_memory, executor_memory
        JVM heap of the driver and of each executor, Spark's notation (``2g``, ``512m``).
        In local mode the driver is the executor, so only ``driver_memory`` counts.
    shuffle_partitions
        ``spark.sql.shuffle.partitions``, >= 1 (adaptive execution merges small ones).
    checkpoint_dir
        Folder for checkpoints (``None``: a temporary folder removed at exit). On a cluster
        it must be on storage every executor sees (HDFS, S3, a shared mount).
    """

    master: str = field(default_factory=lambda: os.environ.get("SPARK_MASTER") or "local[*]")
    driver_memory: str = "2g"
    executor_memory: str = "2g"
    shuffle_partitions: int = 16
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.master, str) or not _MASTER.match(self.master.strip()):
            raise ConfigError(
                f"Spark master {self.master!r} is not a master URL: use local[*], local[N], "
                "spark://HOST:PORT, yarn or k8s://https://HOST:PORT."
            )
        object.__setattr__(self, "master", self.master.strip())
        for name in ("driver_memory", "executor_memory"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _MEMORY.match(value):
                raise ConfigError(
                    f"SparkSettings.{name}={value!r} is not a memory size: use Spark's "
                    "notation, e.g. 2g or 512m."
                )
        if not isinstance(self.shuffle_partitions, int) or self.shuffle_partitions < 1:
            raise ConfigError(
                f"SparkSettings.shuffle_partitions={self.shuffle_partitions!r} is not allowed: "
                "use an integer >= 1, e.g. 16."
            )


_lock = threading.Lock()
_default = None  # SparkSettings chosen by configure(), else built from the environment
_running: tuple[SparkSettings, SparkSession] | None = None


def configure(settings: SparkSettings | None) -> None:
    """Set the settings ``spark_session()`` uses when called without any (``None``: defaults)."""
    global _default
    _default = settings


def current_settings() -> SparkSettings:
    """Return the settings ``spark_session()`` would use now."""
    return _default or SparkSettings()


def require_spark(master: str = "local[*]") -> None:
    """Raise ``SparkUnavailableError`` unless pyspark imports and Java runs here.

    For a ``spark://`` master, also that its port answers within ``CONNECT_TIMEOUT_S``.
    """
    try:
        import pyspark  # noqa: F401
    except ImportError as e:
        raise SparkUnavailableError(
            "The Spark engine needs pyspark, which is not installed: run "
            "`pip install pyspark==4.3.0` (see requirements.txt) or use --engine surprise."
        ) from e
    java_home = os.environ.get("JAVA_HOME")
    java = Path(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise SparkUnavailableError(
            "The Spark engine needs Java 17, and no `java` was found (PATH or JAVA_HOME): "
            "install it (Debian: apt-get install openjdk-17-jre-headless) or use --engine "
            "surprise."
        )
    if master.startswith("spark://"):
        for address in master[len("spark://") :].split(","):
            host, _, port = address.rpartition(":")
            try:
                with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
                    pass
            except (OSError, ValueError) as e:
                raise SparkUnavailableError(
                    f"The Spark master {master} does not answer ({one_line(e, 80)}): start it "
                    "(sbin/start-master.sh), check the URL, or use --spark-master local[*]."
                ) from e


def spark_session(settings: SparkSettings | None = None) -> SparkSession:
    """Return the process's Spark session, started with ``settings`` on first use.

    A later call with other settings stops the running session and starts a new one
    (one ``SparkContext`` per process is Spark's rule).

    Raises
    ------
    SparkUnavailableError
        pyspark or Java missing, the master unreachable, or the JVM did not start.
    """
    global _running
    settings = settings or current_settings()
    with _lock:
        if _running is not None and _running[0] == settings and not _stopped(_running[1]):
            return _running[1]
        if _running is not None:
            _running[1].stop()
            _running = None
        require_spark(settings.master)
        quiet_pandas_warning()
        session = _start(settings)
        _running = (settings, session)
        return session


def _stopped(session: SparkSession) -> bool:
    return session.sparkContext._jsc is None or session.sparkContext._jsc.sc().isStopped()


def stop_session() -> None:
    """Stop the session ``spark_session`` started, if any (its JVM exits with this process)."""
    global _running
    with _lock:
        if _running is not None:
            _running[1].stop()
            _running = None


def _start(settings: SparkSettings) -> SparkSession:
    from pyspark.sql import SparkSession

    # Executors must run this interpreter (the one with numpy, pandas and this engine).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    if settings.master.startswith("local") or "127.0.0.1" in settings.master:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    checkpoints = settings.checkpoint_dir
    if checkpoints is None:
        checkpoints = tempfile.mkdtemp(prefix="engine-spark-")
        atexit.register(shutil.rmtree, checkpoints, ignore_errors=True)
    java_options = f"-Dlog4j2.configurationFile=file:{_LOG_CONFIG}"
    builder = (
        SparkSession.builder.master(settings.master)
        .appName("engine")
        .config("spark.driver.memory", settings.driver_memory)
        .config("spark.executor.memory", settings.executor_memory)
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.extraJavaOptions", java_options)
        .config("spark.executor.extraJavaOptions", java_options)
        .config("spark.pyspark.python", sys.executable)
        .config("spark.executorEnv.PYTHONPATH", os.pathsep.join(_python_path()))
        .config("spark.executorEnv.PYTHONWARNINGS", _QUIET_WORKERS)
    )
    for name, value in one_blas_thread().items():  # cluster executors (local: the driver's)
        builder = builder.config(f"spark.executorEnv.{name}", value)
    if settings.master.startswith("local") or "127.0.0.1" in settings.master:
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    try:
        _launch_quietly(builder)
        session = builder.getOrCreate()
    except Exception as e:  # the JVM did not start: one sentence, not a Java traceback
        raise SparkUnavailableError(
            f"Spark did not start with master {settings.master} ({one_line(e, 160)}): check "
            "Java 17 (`java -version`) and the master URL, or use --engine surprise."
        ) from e
    session.sparkContext.setLogLevel("ERROR")
    session.sparkContext.setCheckpointDir(checkpoints)
    return session


#: Python workers: no pandas-3 notice (``PYTHONWARNINGS`` syntax: action:message:category).
_QUIET_WORKERS = "ignore:PySpark does not yet fully support pandas:FutureWarning"
#: Threads of a native BLAS (OpenBLAS, MKL, OpenMP) in the JVM and its Python workers.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def one_blas_thread() -> dict[str, str]:
    """Environment giving a native BLAS one thread, unless this process's environment says.

    Spark runs one task per core, and ALS calls BLAS inside each task: a multi-threaded
    native BLAS (Debian's ``libopenblas0`` answers to ``libblas.so.3``) then puts several
    threads on each core. Measured here (ml-100k, rank 100, 20 iterations, ``local[2]``):
    ALS took 48-52 s with OpenBLAS's default threads, 13-15 s with one thread, 19-21 s with
    Java's own BLAS. As Spark's ML guide advises, one thread per task; a value already set
    in the environment is kept.
    """
    return {name: os.environ.get(name, "1") for name in BLAS_THREAD_VARIABLES}


def _launch_quietly(builder: SparkSession.Builder) -> None:
    """Start the driver JVM (pyspark's gateway) with its output filtered by ``_forward``.

    pyspark starts the JVM once per process, on the first session, with the output of this
    process; started here first (with the builder's settings, as pyspark would), its stdout
    and stderr go through a pipe instead. Later sessions reuse it, as in pyspark. The JVM
    (and, in local mode, the Python workers it starts) get ``one_blas_thread``'s
    environment; this process's own is left as it was.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    conf = SparkConf(loadDefaults=False)
    for key, value in builder._options.items():
        conf.set(key, value)
    read, write = os.pipe()
    # Reading first: a JVM that fails to start has its reason shown, not left in the pipe.
    threading.Thread(target=_forward, args=(read,), name="spark-output", daemon=True).start()
    saved = dict(os.environ)
    os.environ.update(one_blas_thread())  # the JVM copies this process's environment
    try:
        gateway = launch_gateway(conf, popen_kwargs={"stdout": write, "stderr": write})
    finally:
        os.close(write)
        os.environ.clear()
        os.environ.update(saved)
    with SparkContext._lock:
        SparkContext._gateway, SparkContext._jvm = gateway, gateway.jvm


def _forward(fd: int) -> None:
    """Copy the JVM's output lines to this process's stderr, as ``shown`` keeps them."""
    with open(fd, encoding="utf-8", errors="replace") as lines:
        for line in shown(lines):
            sys.stderr.write(line)
            sys.stderr.flush()


def shown(lines: Iterable[str]) -> Iterator[str]:
    """Yield the lines of the JVM's output a user should see: all but noise.

    Noise: lines matching ``NOISE``, and a Python traceback of pyspark's ``daemon.py``
    ending in ``BrokenPipeError`` or ``ConnectionResetError`` (a worker whose reader went
    away). Other tracebacks are shown whole.
    """
    block: list[str] = []
    for line in lines:
        if block:
            block.append(line)
            if line[:1].isspace():
                continue
            if not _BROKEN_PIPE.match(line) or not any("daemon.py" in b for b in block):
                yield from block
            block = []
        elif line.startswith("Traceback (most recent call last)"):
            block = [line]
        elif not NOISE.search(line):
            yield line
    yield from block


def _python_path() -> list[str]:
    """``PYTHONPATH`` of the executors: the folder holding ``engine``, then the driver's own.

    Only these, never the driver's whole ``sys.path`` (its script folder may hold modules
    that shadow the standard library's). Executors on other machines need this folder
    (or the package installed) at the same place.
    """
    root = str(Path(__file__).resolve().parents[2])
    given = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    return [root, *given]


def from_pandas(spark: SparkSession, frame: pd.DataFrame, schema: str | None = None) -> DataFrame:
    """Send ``frame`` to Spark (Arrow), merged into fewer partitions (``ROWS_PER_PARTITION``).

    ``max(defaultParallelism, ceil(rows / ROWS_PER_PARTITION))`` partitions. Above
    ``spark.sql.execution.arrow.localRelationThreshold`` (48 MiB), Spark makes one partition per
    Arrow batch (``spark.sql.execution.arrow.maxRecordsPerBatch``, 10,000 rows): 4M ratings
    arrive as 400 partitions, 25M as 2,500, and every later stage over them runs that many
    tasks. Merging them (``coalesce``: no shuffle) made three bias rounds on 4M ratings
    take 3.2 s instead of 17.3 s on 2 cores.
    """
    created = spark.createDataFrame(frame, schema) if schema else spark.createDataFrame(frame)
    wanted = max(spark.sparkContext.defaultParallelism, -(-len(frame) // ROWS_PER_PARTITION))
    return created.coalesce(wanted)


def quiet_pandas_warning() -> None:
    """Silence PySpark's notice that pandas >= 3 is not fully supported (Arrow is used)."""
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")


def with_master(settings: SparkSettings, master: str | None) -> SparkSettings:
    """Return ``settings`` with ``master`` when given."""
    return settings if master is None else replace(settings, master=master)
