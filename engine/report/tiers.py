"""The audit table's reading columns (scope, tier, severity, ...), filled in where absent.

``engine.audit`` writes these columns itself (``AuditResult.metrics``); a table from an
older audit, or one built by hand, may lack some. ``with_tiers`` derives each missing one
from the columns that are there, by the audit's own rules, and leaves present ones alone:

- ``scope``: ``"data"`` for metrics that describe the ratings rather than the model
  (``DATA_METRICS``: the interaction share of item groups), else ``"model"``;
- ``tier``: ``"flagged"`` (model scope, ratio outside the band and Holm-adjusted p below
  alpha), ``"notable"`` (model scope, significant after correction but inside the band),
  ``"context"`` (data scope, with a value), ``""`` otherwise; ``flag`` is ``tier ==
  "flagged"``;
- ``severity``: ``|log ratio| x n affected`` (``n_users`` for user groups, ``n_raters``
  for item groups), NaN for a row without a test;
- ``n_items``, ``n_raters`` (``Int64``, missing where not applicable), ``p_method``
  (``""``), ``p_is_bound`` (False).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from engine.audit.config import AuditConfig
from engine.audit.rows import deviation

#: Metrics that are properties of the ratings, not of the recommender.
DATA_METRICS = frozenset({"interaction_share"})
#: Reading columns, in the audit table's order, each with how it is filled when absent.
TIER_COLUMNS = ("scope", "n_items", "n_raters", "p_method", "p_is_bound", "tier", "severity")
TIERS = ("flagged", "notable", "context")


def with_tiers(
    metrics: pd.DataFrame, config: AuditConfig, item_metrics: Collection[str] = ()
) -> pd.DataFrame:
    """Return a copy of ``metrics`` with every ``TIER_COLUMNS`` column (see the module).

    ``item_metrics`` are the keys of item-group metrics (their rows count raters, and their
    direction reads ``under-`` / ``over-exposed``).
    """
    out = metrics.copy()
    item = out["metric"].isin(list(item_metrics)) | (out["reference_group"] == "catalogue share")
    if "scope" not in out:
        out["scope"] = np.where(out["metric"].isin(DATA_METRICS), "data", "model")
    for column in ("n_items", "n_raters"):
        if column not in out:
            out[column] = pd.array([pd.NA] * len(out), dtype="Int64")
    if "n_raters" not in metrics.columns:
        out.loc[item, "n_raters"] = out.loc[item, "n_users"].astype("Int64")
    if "p_method" not in out:
        out["p_method"] = ""
    if "p_is_bound" not in out:
        out["p_is_bound"] = False
    if "tier" not in out:
        out["tier"] = _tiers(out, config)
        out["flag"] = out["tier"] == "flagged"
        out.loc[(out["status"] == "flagged") & ~out["flag"], "status"] = "ok"
    if "severity" not in out:
        raters = out["n_raters"].astype("Float64").to_numpy(float, na_value=np.nan)
        affected = np.where(item, raters, out["n_users"].to_numpy(float))
        severity = deviation(out["ratio"]) * affected
        out["severity"] = np.where(out["p_adjusted"].notna(), severity, np.nan)
    directions = _directions(out, item)
    empty = out["direction"].fillna("") == ""
    # a direction for the rows a reader acts on; data rows keep the audit's own (only
    # outside the band and significant), never one derived from a ratio alone
    chosen = empty & out["tier"].isin(["flagged", "notable"])
    out["direction"] = np.where(chosen, directions, out["direction"])
    return out


def _tiers(table: pd.DataFrame, config: AuditConfig) -> np.ndarray:
    low, high = config.band
    tested = table["status"].isin(["ok", "flagged"])
    outside = (table["ratio"] < low) | (table["ratio"] > high)
    significant = table["p_adjusted"] < config.alpha
    model = table["scope"] == "model"
    data = (table["scope"] == "data") & table["value"].notna()
    data &= table["status"] != "insufficient data"
    return np.select(
        [model & tested & outside & significant, model & tested & significant, data],
        ["flagged", "notable", "context"],
        "",
    )


def _directions(table: pd.DataFrame, item: pd.Series) -> np.ndarray:
    """``worse``/``better`` (by the better direction) or ``under-``/``over-exposed``."""
    higher = table["ratio"] > 1
    worse = np.where(higher == (table["better"] == "lower"), "worse", "better")
    exposure = np.where(higher, "over-exposed", "under-exposed")
    known = table["ratio"].notna() & (table["ratio"] != 1)
    return np.where(known, np.where(item, exposure, worse), "")
