"""Shared fixtures of the Spark tests (no tests here): one small local session for all.

Every Spark test module imports ``spark`` from here; the session is started once per test
run (``local[2]``, 2 GB driver, 4 shuffle partitions, no UI) and stopped at the end, so its
JVM does not outlive the tests. Without pyspark or Java the tests skip, saying which.
"""

from __future__ import annotations

import pandas as pd
import pytest

from engine.errors import ConfigError

LOCAL = {"master": "local[2]", "driver_memory": "2g", "shuffle_partitions": 4}


def spark_missing() -> str | None:
    """The reason Spark cannot run here (pyspark or Java missing), else ``None``."""
    try:
        from engine.spark.session import require_spark

        require_spark()
    except ConfigError as e:
        return str(e)
    return None


@pytest.fixture(scope="session", name="spark")
def spark_fixture():
    """The Spark session of the whole test run (skips when Spark cannot run here)."""
    reason = spark_missing()
    if reason:
        pytest.skip(reason)
    from engine.spark.session import SparkSettings, configure, spark_session, stop_session

    configure(SparkSettings(**LOCAL))
    yield spark_session()
    stop_session()
    configure(None)


def toy_ratings() -> pd.DataFrame:
    """A hand-built 6-user, 5-item rating table (canonical columns, sorted)."""
    rows = [
        ("u1", "i1", 5), ("u1", "i2", 3), ("u1", "i3", 4),
        ("u2", "i1", 4), ("u2", "i3", 5), ("u2", "i4", 1),
        ("u3", "i2", 2), ("u3", "i4", 2), ("u3", "i5", 1),
        ("u4", "i1", 5), ("u4", "i5", 2),
        ("u5", "i2", 1), ("u5", "i3", 4), ("u5", "i4", 3), ("u5", "i5", 5),
        ("u6", "i1", 3),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    frame["rating"] = frame["rating"].astype(float)
    frame["timestamp"] = pd.array(range(len(frame)), dtype="Int64")
    return frame
