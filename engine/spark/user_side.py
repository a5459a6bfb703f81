"""Write the user side of a run kept in Spark (``engine.saved.user_side``) from the final fit.

The driver collects the fit's user and item sides (users x rank and items x rank, as the
audit's aggregates) and the ratings one part at a time: the users are cut into ranges of
about ``RATINGS_PER_PART`` ratings from the per-user counts the audit already has, and each
range is read from Spark, sorted and written before the next, so the driver never holds more
than one part. The driver writes every file, so ``--out`` need not be visible to executors.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.saved.user_side import RATINGS_PER_PART, side_tables, user_ranges, write_user_side

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from engine.spark.load import SparkRatings
    from engine.spark.train import SparkFit


def write_user_side_in_spark(
    out: str | Path,
    fit: SparkFit,
    ratings: SparkRatings,
    statistics: pd.DataFrame,
    popularity: pd.Series,
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
    per_part: int = RATINGS_PER_PART,
) -> dict[str, dict[str, Any]]:
    """Write ``OUT/user_side/`` from the final fit; return the files' manifest records.

    ``statistics``: ``engine.spark.audit.user_statistics``' table (its ``u`` and
    ``n_ratings``); ``popularity``: ``item_popularity``'s ratings per item; ``users`` /
    ``items``: the attribute tables.
    """
    from engine.spark.factors import factor_arrays, scalar_array

    started = time.perf_counter()
    k = fit.config.n_factors
    user_frame = ratings.users.toArrow().to_pandas().sort_values("u")
    item_frame = ratings.items.toArrow().to_pandas().sort_values("i")
    user_ids = user_frame["user_id"].to_numpy(dtype=object)
    item_ids = item_frame["item_id"].to_numpy(dtype=object)
    n_users, n_items = len(user_ids), len(item_ids)
    bu = scalar_array(fit.users, "u", "bu", n_users)
    _, P = factor_arrays(fit.users, "u", "p", n_users, k)
    bi = scalar_array(fit.items, "i", "bi", n_items)
    _, Q = factor_arrays(fit.items, "i", "q", n_items, k)
    n_ratings = popularity.reindex(pd.Index(item_ids, dtype="str")).fillna(0).to_numpy(np.int64)
    user_table, item_table = side_tables(user_ids, bu, P, item_ids, bi, Q, n_ratings)
    counts = statistics.set_index("u")["n_ratings"].reindex(np.arange(n_users), fill_value=0)
    parts = _parts(ratings, user_ranges(counts.to_numpy(np.int64), per_part))
    written = write_user_side(out, fit.mu, user_table, item_table, parts, users, items)
    log.info("user side written: %d files, %.1f s", len(written), time.perf_counter() - started)
    return written


def _parts(ratings: SparkRatings, ranges: list[tuple[int, int]]) -> Iterator[pd.DataFrame]:
    """Yield each user range's ratings ``u, i, rating, timestamp``, sorted, one at a time."""
    from pyspark.sql import functions as F

    frame = ratings.ratings.select(
        F.col("u").cast("int"), F.col("i").cast("int"), F.col("rating").cast("double"),
        F.col("timestamp").cast("long"),
    )  # fmt: skip
    for first, last in ranges:
        part = frame.where(F.col("u").between(first, last)).toArrow().to_pandas()
        part["timestamp"] = pd.array(part["timestamp"], dtype="Int64")
        yield part.sort_values(["u", "i"], ignore_index=True)
