r"""Item factors by Spark ALS on the bias residuals, then the exact ridge user refit per user.

1. ``pyspark.ml.recommendation.ALS`` (explicit feedback, seeded) factorises the residuals
   :math:`r_{ui} - \mu - b_u - b_i` of ``engine.spark.baselines``: rank ``n_factors``,
   ``maxIter = n_epochs``, ``regParam = refit_lambda``. Spark's ALS regularises each
   user's and item's least-squares step by ``regParam * n`` (ratings of that user or item),
   the same :math:`\lambda n_u` convention as the refit. Only its item factors
   :math:`q_i` are kept (stored by Spark as float32, used as float64).
2. The user side is then the exact ridge refit of ``engine.model.ridge`` on each user's
   own ratings, run per user in the executors (``applyInPandas``):
   :math:`x_j = [1, q_j]`, :math:`y_j = r_{uj} - \mu - b_j`,
   :math:`\theta_u = (X^\top X + \lambda n_u I)^{-1} X^\top y`, with ``ridge.design``,
   ``ridge.residuals`` and ``ridge.solve`` themselves, on the user's ratings in ascending
   item order, so each user's vector is ``ridge.fit_user``'s (``tests/test_spark_model.py``).

Input ratings: a Spark DataFrame with integer ``u``, ``i`` and double ``rating``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: ALS checkpoints its factors every this many iterations (long lineage otherwise).
CHECKPOINT_INTERVAL = 5
#: Schema of the refit's output: user index, ``b_u`` and ``p_u``.
USER_SCHEMA = "u int, bu double, p array<double>"


def fit_item_factors(
    residuals: DataFrame, rank: int, max_iter: int, reg: float, seed: int
) -> tuple[DataFrame, DataFrame]:
    """Run explicit ALS on ``u, i, residual``; return ``(item factors, user factors)``.

    Both are DataFrames ``id, features`` (``array<float>``). ``coldStartStrategy`` is
    ``"drop"``: the factors are used directly, never ALS's own predictions (``"nan"`` would
    turn every metric computed on them into NaN).
    """
    from pyspark.ml.recommendation import ALS

    als = ALS(
        rank=rank, maxIter=max_iter, regParam=reg, userCol="u", itemCol="i",
        ratingCol="residual", implicitPrefs=False, nonnegative=False, seed=int(seed),
        checkpointInterval=CHECKPOINT_INTERVAL, coldStartStrategy="drop",
    )  # fmt: skip
    model = als.fit(residuals)
    return model.itemFactors, model.userFactors


def refit_users(
    ratings: DataFrame,
    mu: float,
    bi: DataFrame,
    item_factors: DataFrame,
    lam: float,
    buckets: int = 8,
) -> DataFrame:
    """Each user's ``theta_u = [b_u, p_u]`` by ``ridge.solve``, in the executors.

    Users are sent to the executors in ``buckets`` groups (``u mod buckets``; one pandas
    frame per group rather than per user, which costs a round trip each) and solved one by
    one there. Returns a DataFrame ``u, bu, p`` (``USER_SCHEMA``), one row per user with a
    rating.
    """
    from pyspark.sql import functions as F

    rows = ratings.join(bi, "i").join(
        item_factors.withColumnRenamed("id", "i").withColumnRenamed("features", "q"), "i"
    )

    def solve_bucket(group: pd.DataFrame) -> pd.DataFrame:
        from engine.model.ridge import design, residuals, solve

        group = group.sort_values(["u", "i"], kind="stable")
        users = group["u"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        Q = np.asarray(np.stack(group["q"].to_numpy()), dtype=np.float64)
        bi_rows, ratings_rows = group["bi"].to_numpy(np.float64), group["rating"].to_numpy()
        bu, P = np.empty(len(starts)), []
        for n, (lo, hi) in enumerate(zip(starts, ends, strict=True)):
            own = np.arange(lo, hi)
            theta = solve(design(Q, own), residuals(mu, bi_rows, own, ratings_rows[own]), lam)
            bu[n] = theta[0]
            P.append(theta[1:])
        return pd.DataFrame({"u": users[starts].astype(np.int32), "bu": bu, "p": P})

    return (
        rows.withColumn("bucket", F.col("u") % F.lit(int(buckets)))
        .groupBy("bucket")
        .applyInPandas(solve_bucket, USER_SCHEMA)
    )


def factor_arrays(
    frame: DataFrame, key: str, value: str, n: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Collect ``key, value`` (an array column) into ``(present, M)`` of shape ``(n, k)``.

    ``present[j]`` says whether row ``j`` came back; absent rows of ``M`` are 0. Collected
    through Arrow batches (no row objects), for frames that fit the driver.
    """
    table = frame.select(key, value).toArrow()
    index = table.column(key).to_numpy().astype(np.int64)
    values = table.column(value).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    M = np.zeros((n, k))
    present = np.zeros(n, dtype=bool)
    if len(index):
        M[index] = np.asarray(values, dtype=np.float64).reshape(len(index), k)
        present[index] = True
    return present, M


def scalar_array(frame: DataFrame, key: str, value: str, n: int) -> np.ndarray:
    """Collect ``key, value`` (a double column) into a length-``n`` array, 0 where absent."""
    table = frame.select(key, value).toArrow()
    out = np.zeros(n)
    index = table.column(key).to_numpy().astype(np.int64)
    if len(index):
        out[index] = table.column(value).to_numpy()
    return out
