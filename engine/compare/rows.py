"""Rows of a version comparison: one (metric, grouping, group) with its paired statistics.

``group_rows`` measures every group of one labelling of users (``engine.compare.paired``:
ratio of sums, paired bootstrap interval, sign-flip p-value) and corrects the p-values
with Holm's method over those groups; ``holm_family`` re-corrects rows measured one group
at a time (a user in several groups: item groups, exposure) as one family. A group with
fewer users than ``config.min_group_size`` is "insufficient data" (no interval, no test).

Verdicts (``VERDICTS``): "improved" / "worsened" for a significant difference (Holm-adjusted
p below ``config.alpha``) in the metric's better direction (RMSE lower, NDCG@k higher) or
against it; "higher" / "lower" for a significant change of an exposure share (no better
direction); "no significant change"; "insufficient data"; "not tested" (no permutations).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pandas as pd

from engine.audit.config import AuditConfig
from engine.audit.stats import Transform, holm, is_floor
from engine.compare.paired import paired_bootstrap_ci, paired_difference, paired_permutation_p

VERDICTS = ("improved", "worsened", "higher", "lower", "no significant change",
            "insufficient data", "not tested")  # fmt: skip
ROW_COLUMNS = [
    "metric", "grouping", "group", "n_users", "n_pairs", "value_a", "value_b", "difference",
    "ci_low", "ci_high", "p_value", "p_method", "p_is_bound", "p_adjusted", "verdict",
    "better", "catalogue_share",
]  # fmt: skip


def verdict(row: dict[str, Any], alpha: float) -> str:
    """Return the row's verdict from its adjusted p-value, difference and direction."""
    if row["verdict"]:
        return row["verdict"]
    if not np.isfinite(row["p_adjusted"]):
        return "not tested"
    if row["p_adjusted"] >= alpha or row["difference"] == 0:
        return "no significant change"
    up = row["difference"] > 0
    if row["better"] == "":
        return "higher" if up else "lower"
    return "improved" if up == (row["better"] == "higher") else "worsened"


def rng_for(seed: int, metric: str, grouping: str) -> np.random.Generator:
    """Return a generator seeded by ``seed`` and a CRC-32 of the metric and grouping."""
    return np.random.default_rng([seed, zlib.crc32(f"{metric}\x00{grouping}".encode())])


def group_rows(
    metric: str,
    grouping: str,
    labels: pd.Series,
    parts: tuple[pd.Series, pd.Series, pd.Series],
    transform: Transform,
    better: str,
    config: AuditConfig,
    n_pairs: pd.Series | None = None,
    seed_key: str = "",
) -> list[dict[str, Any]]:
    """One row per group of ``labels`` (index ``user_id``) with the paired statistics.

    ``parts`` are each user's numerator under A and B and shared denominator (index
    ``user_id``). The resampling of one (metric, grouping) has its own seed
    (``rng_for``): its rows do not change when other groupings or metrics are added
    (``seed_key`` tells apart calls of one grouping, e.g. one per item group).
    """
    a_a, a_b, b = parts
    rng = rng_for(config.seed, metric, grouping + seed_key)
    present = labels.reindex(b.index).dropna()
    rows = []
    for group in sorted(set(present), key=str):
        users = present.index[present == group]
        xa, xb, xn = (s[users].to_numpy(float) for s in (a_a, a_b, b))
        value_a, value_b, difference = paired_difference(xa, xb, xn, transform)
        row = {
            "metric": metric, "grouping": grouping, "group": str(group), "n_users": len(users),
            "n_pairs": int(n_pairs[users].sum()) if n_pairs is not None else pd.NA,
            "value_a": value_a, "value_b": value_b, "difference": difference,
            "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "p_method": "",
            "p_is_bound": False, "p_adjusted": np.nan, "verdict": "", "better": better,
            "catalogue_share": np.nan,
        }  # fmt: skip
        if len(users) < config.min_group_size:
            row["verdict"] = "insufficient data"
        else:
            row["ci_low"], row["ci_high"] = paired_bootstrap_ci(
                xa, xb, xn, transform, config.bootstrap, rng
            )
            p = paired_permutation_p(xa, xb, xn, transform, config.permutations, rng)
            if np.isfinite(p):
                row.update(p_value=p, p_method="permutation",
                           p_is_bound=is_floor(p, config.permutations))  # fmt: skip
        rows.append(row)
    return holm_family(rows, config.alpha)


def holm_family(rows: list[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """Holm-correct ``rows`` as one family and set their verdicts (in place; returned)."""
    adjusted = holm(np.array([r["p_value"] for r in rows], float))
    for row, p in zip(rows, adjusted, strict=True):
        row["p_adjusted"] = p
        if row["verdict"] != "insufficient data":
            row["verdict"] = verdict({**row, "verdict": ""}, alpha)
    return rows
