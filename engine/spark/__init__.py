"""The Spark engine: the same model, explanations, audit and report beyond one machine.

The only package that imports pyspark, and only inside functions, so the rest of the
engine works without Java or pyspark. Modules, one concern each:

* ``session``: where Spark runs (master URL, memory, checkpoints), one session per process;
* ``baselines``: ``mu, b_u, b_i`` by Surprise's BaselineOnly ALS method in Spark SQL;
* ``factors``: Spark ALS on the residuals for ``Q``, the exact ridge user refit per user;
* ``train``: the ``TrainedModel`` from those, and the engine choice (``ModelConfig.engine``);
* ``load``: CSV/Parquet read by Spark with the same validation rules and load report;
* ``inputs``: the CLI's inputs with the rating file read by Spark (``load``);
* ``evaluate``: one split of ``engine.protocols`` (the evaluation's SVD slot) or hashed
  K-fold in Spark: held-out predictions, top-N lists (rated items excluded) and per-user
  ranking metrics computed in the executors;
* ``recommend``: every user's top-N list of a model, computed in the executors;
* ``audit``: the audit of ratings that stay in Spark (``evaluate_spark``'s output), from
  per-user, per-item and per-group sums aggregated in the executors;
* ``report``: the report of that audit, its other figures counted in Spark too;
* ``run``: load, evaluate, fit, audit and report with the ratings kept in Spark (the CLI's
  ``run --engine spark --keep-in-spark``).
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public names and the module each is imported from on first use (pyspark stays unloaded).
_LAZY: dict[str, str] = {
    "SparkSettings": "engine.spark.session",
    "SparkUnavailableError": "engine.spark.session",
    "configure": "engine.spark.session",
    "spark_session": "engine.spark.session",
    "stop_session": "engine.spark.session",
    "fit_baselines": "engine.spark.baselines",
    "fit_spark": "engine.spark.train",
    "train_spark": "engine.spark.train",
    "train_data": "engine.spark.train",
    "load_ratings": "engine.spark.load",
    "evaluate_spark": "engine.spark.evaluate",
    "evaluate_split_in_spark": "engine.spark.evaluate",
    "recommend_all_in_spark": "engine.spark.recommend",
    "audit_spark": "engine.spark.audit",
    "user_statistics": "engine.spark.audit",
    "load_kept_inputs": "engine.spark.inputs",
    "report_spark": "engine.spark.report",
    "run_in_spark": "engine.spark.run",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'engine.spark' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
