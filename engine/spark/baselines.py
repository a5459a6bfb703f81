r"""Global mean and biases by Spark SQL: Surprise's ``BaselineOnly`` ``als`` method, exactly.

With :math:`\mu` the mean of the training ratings, :math:`U_i` the users who rated item
:math:`i` and :math:`I_u` the items user :math:`u` rated, each of ``n_epochs`` rounds
updates every item bias, then every user bias (biases start at 0):

.. math::

    b_i \leftarrow \frac{\sum_{u \in U_i} (r_{ui} - \mu - b_u)}{\lambda_i + |U_i|}, \qquad
    b_u \leftarrow \frac{\sum_{i \in I_u} (r_{ui} - \mu - b_i)}{\lambda_u + |I_u|}.

This is ``surprise/prediction_algorithms/optimize_baselines.pyx`` (``baseline_als``,
after MyMediaLite's ``UserItemBaseline``) with its defaults ``n_epochs = 10``,
``reg_u = 15``, ``reg_i = 10``: every item update of a round uses the previous round's
user biases, every user update this round's item biases, so the order within a round
does not matter and one grouped aggregation per side computes it. Only the order of the
floating-point sums differs from Surprise (agreement to about 1e-13).

Input: a Spark DataFrame with integer columns ``u``, ``i`` and a double ``rating``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine.checks import is_int

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: Surprise's ``bsl_options`` defaults for ``method="als"``.
BASELINE_EPOCHS = 10
REG_U = 15.0
REG_I = 10.0
#: A bias table with at most this many rows is broadcast to the executors for its join
#: (about 16 bytes a row); larger ones are joined by a shuffle.
BROADCAST_ROWS = 2_000_000


@dataclass(frozen=True)
class SparkBaselines:
    """The fitted baselines, still in Spark.

    Attributes
    ----------
    mu
        Mean of the training ratings.
    bu
        DataFrame ``u, bu``: one row per user with a rating.
    bi
        DataFrame ``i, bi``: one row per item with a rating.
    seconds
        Wall-clock seconds the fit took (the BaselineOnly comparator that reuses the
        Spark engine's baselines of a split reports them as its fit time).
    """

    mu: float
    bu: DataFrame
    bi: DataFrame
    seconds: float = 0.0


def fit_baselines(
    ratings: DataFrame,
    n_epochs: int = BASELINE_EPOCHS,
    reg_u: float = REG_U,
    reg_i: float = REG_I,
) -> SparkBaselines:
    """Fit ``mu, b_u, b_i`` by alternating regularised means (module docstring).

    Each round's user biases are checkpointed locally (one Spark job per round), so the
    plan does not grow with the number of rounds (the lineage that otherwise ends in a
    StackOverflowError); a round's item biases are computed within that job.
    """
    from pyspark.sql import functions as F

    if not is_int(n_epochs) or n_epochs < 1 or reg_u < 0 or reg_i < 0:
        from engine.errors import ConfigError

        raise ConfigError(
            f"Baseline options n_epochs={n_epochs!r}, reg_u={reg_u!r}, reg_i={reg_i!r} are not "
            "allowed: use n_epochs >= 1 and regularisations >= 0 (Surprise: 10, 15, 10)."
        )
    start = time.perf_counter()
    stats = ratings.agg(
        F.avg("rating"), F.countDistinct("u").alias("users"), F.countDistinct("i").alias("items")
    ).first()
    mu = float(stats[0])

    def small(frame: DataFrame, rows: int) -> DataFrame:
        return F.broadcast(frame) if rows <= BROADCAST_ROWS else frame

    bu = None
    bi = None
    for _ in range(n_epochs):
        dev = F.col("rating") - F.lit(mu)
        with_bu = ratings if bu is None else ratings.join(small(bu, stats["users"]), "u", "left")
        if bu is not None:
            dev = dev - F.coalesce(F.col("bu"), F.lit(0.0))
        bi = (
            with_bu.groupBy("i")
            .agg(F.sum(dev).alias("dev"), F.count(F.lit(1)).alias("n"))
            .select("i", (F.col("dev") / (F.lit(reg_i) + F.col("n"))).alias("bi"))
        )
        bu = (
            ratings.join(small(bi, stats["items"]), "i")
            .groupBy("u")
            .agg(
                F.sum(F.col("rating") - F.lit(mu) - F.col("bi")).alias("dev"),
                F.count(F.lit(1)).alias("n"),
            )
            .select("u", (F.col("dev") / (F.lit(reg_u) + F.col("n"))).alias("bu"))
            .localCheckpoint(eager=True)
        )
    bi = bi.localCheckpoint(eager=True)
    return SparkBaselines(mu, bu, bi, time.perf_counter() - start)


def residual_frame(ratings: DataFrame, baselines: SparkBaselines) -> DataFrame:
    """Return ``u, i, rating, residual`` with ``residual = r_ui - mu - b_u - b_i`` (for ALS)."""
    from pyspark.sql import functions as F

    return (
        ratings.join(baselines.bu, "u")
        .join(baselines.bi, "i")
        .select(
            "u", "i", "rating",
            (F.col("rating") - F.lit(baselines.mu) - F.col("bu") - F.col("bi")).alias("residual"),
        )
    )  # fmt: skip
