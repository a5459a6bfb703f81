r"""The Spark engine: the same model as the SVD engine's, trained by Spark.

.. math:: \hat r_{ui} = \mu + b_i + [1, q_i]^\top [b_u, p_u]

with ``mu`` and ``b_i`` from Surprise's BaselineOnly ALS method in Spark SQL
(``engine.spark.baselines``), ``q_i`` from Spark ALS on the bias residuals and
``[b_u, p_u]`` from the exact ridge refit run per user in the executors
(``engine.spark.factors``). The result is a ``TrainedModel``, so prediction, top-N,
every explanation (exact split, Shapley, counterfactuals), the audit and the report work
on it unchanged. With ``refit_users=False`` the user side is ALS's own user factors with
the baseline ``b_u``.

``train_data`` is what ``Analysis.model`` calls for ``ModelConfig.engine == "spark"``;
``engine.evaluate`` trains each split with ``engine.spark.evaluate.evaluate_split_in_spark``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.data.types import RatingData
from engine.model.base import check_finite
from engine.model.comparators import BaselineModel
from engine.model.config import ModelConfig
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from engine.spark.baselines import SparkBaselines

log = logging.getLogger(__name__)
#: ``fit_spark``'s log line for each stage: the stage and its wall seconds.
STAGE_LOG = "Spark fit stage %s: %.1f s"
#: The refit sends users to the executors in groups of about this many ratings.
RATINGS_PER_BUCKET = 250_000


@dataclass(frozen=True)
class SparkFit:
    """The Spark engine's parameters, still in Spark (indices are the input's ``u``/``i``).

    Attributes
    ----------
    mu
        Mean of the training ratings.
    users
        ``u, bu, p``: each user's ``b_u`` and ``p_u`` (``array<double>``).
    items
        ``i, bi, q``: each item's ``b_i`` and ``q_i`` (``array<float>``).
    baselines
        The BaselineOnly fit the item side rests on (its ``b_u`` are replaced by the refit's).
    config
        The settings it was fitted with (its ``refit_lambda`` is the explanations' too).
    """

    mu: float
    users: DataFrame
    items: DataFrame
    baselines: SparkBaselines
    config: ModelConfig

    def user_vector(self, user: int) -> tuple[float, np.ndarray]:
        """Fetch one user's ``(b_u, p_u)`` on demand (for a page), without collecting the rest."""
        from pyspark.sql import functions as F

        row = self.users.where(F.col("u") == int(user)).first()
        if row is None:
            return 0.0, np.zeros(0)
        return float(row["bu"]), np.asarray(row["p"], dtype=np.float64)


def fit_spark(ratings: DataFrame, config: ModelConfig) -> SparkFit:
    """Fit the Spark engine on ``u, i, rating`` (integer ids): biases, ALS, refit.

    The ratings and the residuals ALS iterates over are cached for the fit (ALS reads its
    input once per iteration; uncached, Spark recomputes the joins each time). Each stage's
    wall time is logged at INFO (``STAGE_LOG``: ``baselines``, ``item factors``, ``users``).
    """
    from pyspark.sql import functions as F

    from engine.spark.baselines import fit_baselines, residual_frame
    from engine.spark.factors import fit_item_factors, refit_users

    clock = [time.perf_counter()]

    def done(stage: str) -> None:
        now = time.perf_counter()
        log.info(STAGE_LOG, stage, now - clock[0])
        clock[0] = now

    ratings = ratings.select(
        F.col("u").cast("int"), F.col("i").cast("int"), F.col("rating").cast("double")
    ).cache()
    baselines = fit_baselines(ratings)
    done("baselines")
    residuals = residual_frame(ratings, baselines).cache()
    item_factors, user_factors = fit_item_factors(
        residuals, config.n_factors, config.n_epochs, config.refit_lambda, config.seed
    )
    item_factors = item_factors.localCheckpoint(eager=True)
    done("item factors")
    if config.refit_users:
        spark = ratings.sparkSession
        buckets = max(spark.sparkContext.defaultParallelism, ratings.count() // RATINGS_PER_BUCKET)
        users = refit_users(
            ratings, baselines.mu, baselines.bi, item_factors, config.refit_lambda, buckets
        )
    else:
        users = baselines.bu.join(
            user_factors.select(
                F.col("id").alias("u"), F.col("features").cast("array<double>").alias("p")
            ),
            "u",
        )
    users = users.localCheckpoint(eager=True)
    items = baselines.bi.join(
        item_factors.select(F.col("id").alias("i"), F.col("features").alias("q")), "i"
    ).localCheckpoint(eager=True)
    done("users")
    residuals.unpersist()
    ratings.unpersist()
    return SparkFit(baselines.mu, users, items, baselines, config)


def ratings_frame(spark: SparkSession, interactions: Interactions) -> DataFrame:
    """Return the training ratings as a Spark DataFrame ``u, i, rating`` (our indices)."""
    from engine.spark.session import from_pandas

    frame = pd.DataFrame(
        {
            "u": interactions.rows().astype(np.int32),
            "i": interactions.items.astype(np.int32),
            "rating": interactions.ratings,
        }
    )
    return from_pandas(spark, frame)


def train_spark(
    ratings: pd.DataFrame,
    scale: tuple[float, float],
    config: ModelConfig,
    *,
    item_ids: np.ndarray | None = None,
    fingerprint: str = "",
) -> TrainedModel:
    """Train the Spark engine on canonical ratings held in memory; return a ``TrainedModel``.

    The same contract as ``engine.model.svd.train_svd``: ``item_ids`` fixes the item axis
    (items without training ratings get ``b_i = 0``, ``q_i = 0``); users and items in
    ``Interactions`` order. The session is ``engine.spark.session.spark_session()``.
    """
    from engine.spark.session import quiet_pandas_warning, spark_session

    quiet_pandas_warning()
    spark = spark_session()
    interactions = Interactions.from_frame(ratings, item_ids)
    fit = fit_spark(ratings_frame(spark, interactions), config)
    return model_from_fit(fit, interactions, config, scale, fingerprint)


def model_from_fit(
    fit: SparkFit,
    interactions: Interactions,
    config: ModelConfig,
    scale: tuple[float, float],
    fingerprint: str = "",
) -> TrainedModel:
    """Collect a ``SparkFit`` whose ``u``/``i`` are ``interactions``' indices into a model.

    Items without training ratings keep ``b_i = 0``, ``q_i = 0`` (Surprise's unknown item).

    Raises
    ------
    ConfigError
        ALS or the refit produced NaN or infinite parameters.
    """
    from engine.spark.factors import factor_arrays, scalar_array

    k, n_users, n_items = config.n_factors, interactions.n_users, interactions.n_items
    bu = scalar_array(fit.users, "u", "bu", n_users)
    _, P = factor_arrays(fit.users, "u", "p", n_users, k)
    bi = scalar_array(fit.items, "i", "bi", n_items)
    _, Q = factor_arrays(fit.items, "i", "q", n_items, k)
    check_finite("Spark ALS", f"raise refit_lambda (now {config.refit_lambda})", bu, bi, P, Q)
    log.info("trained the Spark engine on %d ratings (%s)", interactions.n_ratings, config)
    return TrainedModel(config, fit.mu, bu, bi, P, Q, interactions, scale, fingerprint)


def train_baseline_spark(
    ratings: pd.DataFrame | None,
    scale: tuple[float, float],
    item_ids: np.ndarray | None = None,
    *,
    fitted: SparkBaselines | None = None,
    interactions: Interactions | None = None,
) -> BaselineModel:
    """Fit Surprise's ``BaselineOnly`` comparator by Spark (``train_baseline``'s contract).

    The Spark engine's own first stage (``engine.spark.baselines``, equal to Surprise's
    ``baseline_als`` to rounding), so an evaluation with ``engine="spark"`` builds no
    Surprise trainset in this process (about 2.7 GB per 6.5M ratings). ``fitted``: the
    baselines the Spark engine already fitted on these ``ratings``, indexed as
    ``Interactions.from_frame(ratings, item_ids)`` (``SparkFit.baselines`` of the same
    split): they are collected, not fitted again. ``interactions``: that indexing if
    already built (``engine.evaluate`` indexes each split once for every model); ``ratings``
    is then not read (it may be ``None``).
    """
    from engine.spark.baselines import fit_baselines
    from engine.spark.factors import scalar_array
    from engine.spark.session import spark_session

    if interactions is None:
        interactions = Interactions.from_frame(ratings, item_ids)
    frame = None
    if fitted is None:
        frame = ratings_frame(spark_session(), interactions).cache()
        fitted = fit_baselines(frame)
    bu = scalar_array(fitted.bu, "u", "bu", interactions.n_users)
    bi = scalar_array(fitted.bi, "i", "bi", interactions.n_items)
    if frame is not None:
        frame.unpersist()
    check_finite("BaselineOnly", "check the ratings for extreme values", bu, bi)
    return BaselineModel(fitted.mu, bu, bi, interactions, scale)


def train_data(data: RatingData, config: ModelConfig) -> TrainedModel:
    """Train the Spark engine on a whole dataset (``engine.model.train``'s contract)."""
    return train_spark(
        data.ratings, (data.scale.low, data.scale.high), config, fingerprint=data.fingerprint
    )
