"""Shared fixtures of the Spark tests (no tests here): one small local session for all, and
one synthetic dataset evaluated, fitted and audited in Spark for the audit and report tests.

Every Spark test module imports ``spark`` from here; the session is started once per test
run (``local[2]``, 2 GB driver, 4 shuffle partitions, no UI) and stopped at the end, so its
JVM does not outlive the tests. Without pyspark or Java the tests skip, saying which.
"""

from __future__ import annotations

import pandas as pd
import pytest

from engine import load_dataset
from engine.audit.config import AuditConfig
from engine.errors import ConfigError
from engine.model import ModelConfig
from engine.model.interactions import Interactions
from engine.synth import SynthConfig, generate, write_dataset

LOCAL = {"master": "local[2]", "driver_memory": "2g", "shuffle_partitions": 4}
CONFIG = AuditConfig(bootstrap=200, permutations=200, seed=4)
MODEL = ModelConfig(engine="spark", n_factors=5, n_epochs=5, seed=1)


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


@pytest.fixture(scope="session", name="synthetic_folder")
def synthetic_fixture(tmp_path_factory):
    """A synthetic dataset (400 users, 16,000 ratings; planted effects) written to a folder."""
    folder = tmp_path_factory.mktemp("synthetic")
    config = SynthConfig(n_users=400, n_items=300, n_ratings=16_000, min_ratings=20, seed=5)
    write_dataset(generate(config), folder)
    return folder


# The Spark computations of ``audited_in_spark`` (about 90 s), made once per test run: a
# fixture imported into a test module is that module's own, so each module that imports it
# runs it again. Only the ``SparkRatings`` is loaded again, since it is bound to the module's
# session (a CLI test in between stops the session); its ids are indexed in ascending order,
# so the kept Parquet tables' ``u`` and ``i`` still mean the same users and items.
_COMPUTED: list[tuple] = []


@pytest.fixture(scope="session", name="audited_in_spark")
def audited_fixture(spark, synthetic_folder, tmp_path_factory):
    """The synthetic data (400 users, 16,000 ratings), its Spark evaluation, fit and audit.

    ``(data, ratings, evaluation, result, statistics, model)``: the in-memory ``RatingData``,
    the ``SparkRatings``, ``evaluate_spark``'s 2 folds, ``audit_spark``'s result,
    ``user_statistics`` and the Spark fit collected as a ``TrainedModel``.
    """
    from engine.spark.audit import audit_spark, user_statistics
    from engine.spark.evaluate import evaluate_spark
    from engine.spark.load import load_ratings
    from engine.spark.train import fit_spark, model_from_fit

    folder = synthetic_folder
    data = load_dataset(folder)
    ratings = load_ratings(folder / "ratings.csv")
    if not _COMPUTED:
        out = tmp_path_factory.mktemp("evaluation")
        evaluation = evaluate_spark(
            ratings.ratings, (1, 5), out, MODEL, folds=2, k=5, threshold=4.0
        )
        fit = fit_spark(ratings.ratings, MODEL)
        result = audit_spark(
            ratings, evaluation, CONFIG, fit=fit, users=data.users, items=data.items
        )
        model = model_from_fit(fit, Interactions.from_frame(data.ratings), MODEL, (1.0, 5.0))
        _COMPUTED.append((evaluation, result, user_statistics(ratings, evaluation), model))
    evaluation, result, statistics, model = _COMPUTED[0]
    return data, ratings, evaluation, result, statistics, model


def evaluation_frame(ratings, evaluation, table: str) -> pd.DataFrame:
    """One of evaluate_spark's tables read by pandas, with the raw ids."""
    frame = pd.read_parquet(evaluation.out / table)
    frame["fold"] = frame["fold"].astype(int)
    users = ratings.users.toPandas().set_index("u")["user_id"]
    frame["user_id"] = users.reindex(frame["u"]).to_numpy().astype(object)
    if "i" in frame:
        items = ratings.items.toPandas().set_index("i")["item_id"]
        frame["item_id"] = items.reindex(frame["i"]).to_numpy().astype(object)
    return frame
