"""Rows of the audit's metric table: one per (metric, grouping, group), and the flags.

User groups (``group_rows``): a ratio-of-sums value per group with a bootstrap interval,
the ratio to the reference group and a permutation p-value. Item groups
(``exposure_rows``): each item-group metric's share (exposure, interactions) vs the
catalogue share. ``flag`` marks rows outside the band and significant after Holm's
correction. Each row's ``family``, ``better`` and ``definition`` come from the metric's
``MetricSpec`` (``engine.audit.registry``); the statistics are in ``engine.audit.stats``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import pandas as pd

from engine.audit import measures
from engine.audit.config import AuditConfig
from engine.audit.registry import Events, MetricSpec, Parts
from engine.audit.stats import bootstrap_ci, normal_tail, permutation_p, ratio_of_sums

ROW_COLUMNS = [
    "family", "metric", "grouping", "group", "n_users", "n_ratings", "value", "ci_low",
    "ci_high", "reference_group", "ratio", "p_value", "p_adjusted", "flag", "direction",
    "status", "better", "definition",
]  # fmt: skip
#: Row statuses: compared with the reference (``ok``, ``flagged``), the ``reference``
#: itself, too small (``insufficient data``), large enough but without a p-value
#: (``not tested``: permutations = 0, bootstrap = 0 for exposure rows, or a reference
#: value of 0 that leaves no ratio), and exposure rows when no list holds any item
#: (``no recommendations``).
STATUSES = ("reference", "ok", "flagged", "insufficient data", "not tested",
            "no recommendations")  # fmt: skip
#: How a missing interval reads when the bootstrap is off.
NO_INTERVAL = "no interval (bootstrap off)"


def object_ids(frame: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """``frame`` with its id columns (``user_id``, ``item_id``; a Series itself) as objects.

    The values are the same strings; only the storage changes. pandas' ``isin`` on an
    Arrow-backed string column turns every value it looks for into a pyarrow scalar
    (~1 microsecond each, a whole item group per call); on object columns it is one hash
    lookup. Used where the ids only feed ``isin``, ``merge`` and counts, never an output.
    """
    if isinstance(frame, pd.Series):
        return frame.astype(object)
    ids = [c for c in ("user_id", "item_id") if c in frame.columns]
    return frame.astype(dict.fromkeys(ids, object))


def deviation(ratio: pd.Series) -> np.ndarray:
    """``|log ratio|`` per row: ``inf`` for a ratio <= 0, NaN for a missing ratio."""
    r = ratio.to_numpy(float)
    positive = np.isfinite(r) & (r > 0)
    out = np.where(np.isnan(r), np.nan, np.inf)
    out[positive] = np.abs(np.log(r[positive]))
    return out


def group_rows(
    spec: MetricSpec,
    grouping: str,
    labels: pd.Series,
    parts: Parts | tuple[pd.Series, pd.Series, Any],
    profile_sizes: pd.Series,
    config: AuditConfig,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Return one row per group of ``labels`` for ``spec`` (see ``AuditResult.metrics``).

    Every group of the grouping gets a row, also one without any user with a value for
    this metric (``n_users`` 0, "insufficient data"). The reference is the largest group
    with at least ``min_group_size`` users; a group compared with it gets a ratio (when
    the reference value is positive) and a permutation p-value (``not tested`` without).
    """
    a_all, b_all, transform = parts
    metric, family, better, definition = spec.key, spec.family, spec.better, spec.definition
    present = labels.reindex(a_all.index).dropna()
    sizes = present.value_counts()
    eligible = sizes[sizes >= config.min_group_size]
    reference = eligible.index[0] if len(eligible) else None
    ref_users = present.index[present == reference] if reference is not None else None
    rows = []
    ref_value = np.nan
    if reference is not None:
        ref_value = ratio_of_sums(a_all[ref_users].to_numpy(float),
                                  b_all[ref_users].to_numpy(float), transform)  # fmt: skip
    for group in sorted(set(labels.dropna()) | set(sizes.index), key=str):
        users = present.index[present == group]
        a, b = a_all[users].to_numpy(float), b_all[users].to_numpy(float)
        value = ratio_of_sums(a, b, transform)
        row = {
            "family": family, "metric": metric, "grouping": grouping, "group": str(group),
            "n_users": len(users), "n_ratings": int(profile_sizes.reindex(users).sum()),
            "value": value, "ci_low": np.nan, "ci_high": np.nan,
            "reference_group": None if reference is None else str(reference), "ratio": np.nan,
            "p_value": np.nan, "p_adjusted": np.nan, "flag": False, "direction": "",
            "status": "ok", "better": better, "definition": definition,
        }  # fmt: skip
        if len(users) < config.min_group_size:
            row["status"] = "insufficient data"
            rows.append(row)
            continue
        row["ci_low"], row["ci_high"] = bootstrap_ci(a, b, transform, config.bootstrap, rng)
        if group == reference:
            row["status"], row["ratio"] = "reference", 1.0
        elif np.isfinite(ref_value) and ref_value > 0:
            row["ratio"] = value / ref_value
            row["p_value"] = permutation_p(
                a, b, a_all[ref_users].to_numpy(float), b_all[ref_users].to_numpy(float),
                transform, config.permutations, rng,
            )  # fmt: skip
        if row["status"] == "ok" and not np.isfinite(row["p_value"]):
            row["status"] = "not tested"
        rows.append(row)
    return rows


def exposure_rows(
    grouping: str,
    membership: pd.DataFrame,
    events: list[tuple[MetricSpec, Events]],
    ratings: pd.DataFrame,
    config: AuditConfig,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Each item-group metric's share per item group vs the group's catalogue share.

    ``events`` holds each item-group spec with its weighted (user, item) events, e.g.
    ``exposure_share``: the top-k lists weighted by position; ``interaction_share``: the
    ratings (the exposure users gave the items before the model). A group's value is its
    share of the total weight, compared with its catalogue share (ratio). A group without
    items is ``insufficient data`` (no share to compare with). A group that no event
    reaches has a real share of 0 (ratio 0: under-exposed when significant). CIs bootstrap
    users (``config.bootstrap`` replicates, none when 0); the p-value is the normal tail of
    the bootstrap distribution around the catalogue share, so without a bootstrap the rows
    are ``not tested``. When no event has any weight (no list holds any item), the rows
    have no value and the status ``no recommendations``. ``n_users`` and ``n_ratings``
    count the raters of the group's items.
    """
    rows = []
    raters = rater_counts(ratings, membership)
    for spec, (user_col, item_col, weights) in events:
        metric, family, better, definition = spec.key, spec.family, spec.better, spec.definition
        total_by_user, by_group = measures.weight_by_user(
            object_ids(user_col), object_ids(item_col), weights, membership
        )
        total = float(total_by_user.sum())
        n = len(total_by_user)
        idx = rng.integers(0, n, size=(config.bootstrap, n)) if config.bootstrap and total else None
        boot_total = None if idx is None else total_by_user[idx].sum(axis=1)
        for group in membership.columns:
            catalogue = float(membership[group].mean())
            n_users, n_ratings = raters[group]
            row = {
                "family": family, "metric": metric, "grouping": grouping, "group": str(group),
                "n_users": n_users, "n_ratings": n_ratings,
                "value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
                "reference_group": "catalogue share", "ratio": np.nan, "p_value": np.nan,
                "p_adjusted": np.nan, "flag": False, "direction": "", "status": "ok",
                "better": better, "definition": f"{definition}; catalogue share {catalogue:.3f}",
            }  # fmt: skip
            rows.append(row)
            if catalogue == 0:
                row["status"] = "insufficient data"  # an item group without items
                continue
            if not total:
                row["status"] = "no recommendations"
                continue
            by_user = by_group[group].to_numpy()
            share = float(by_user.sum()) / total
            row["value"] = share
            row["ratio"] = share / catalogue if catalogue > 0 else np.nan
            if boot_total is None:
                row["status"] = "not tested"
                continue
            boot = by_user[idx].sum(axis=1) / boot_total
            row["ci_low"], row["ci_high"] = (float(q) for q in np.quantile(boot, [0.025, 0.975]))
            row["p_value"] = normal_tail(share - catalogue, float(boot.std()))
    return rows


def rater_counts(ratings: pd.DataFrame, membership: pd.DataFrame) -> dict[Any, tuple[int, int]]:
    """Per item group (column of ``membership``): ``(n_users, n_ratings)`` of its raters.

    ``n_ratings`` counts the ratings of the group's items, ``n_users`` the distinct users
    who gave them (missing ids are not counted, as ``Series.nunique`` does).
    """
    item_codes, items = pd.factorize(ratings["item_id"])
    user_codes, users = pd.factorize(ratings["user_id"])
    items = pd.Index(np.asarray(items, dtype=object))
    counts = {}
    for group in membership.columns:
        members = np.asarray(membership.index[membership[group]], dtype=object)
        rated = items.isin(members)[item_codes] & (item_codes >= 0)
        who = user_codes[rated]
        users_of_group = np.bincount(who[who >= 0], minlength=len(users)).astype(bool).sum()
        counts[group] = (int(users_of_group), int(rated.sum()))
    return counts


def flag(table: pd.DataFrame, config: AuditConfig, item_metrics: Collection[str]) -> None:
    """Set ``flag``, ``direction`` and the ``flagged`` status in place.

    A row is flagged when its status is ``ok``, its ratio leaves ``config.band`` and its
    Holm-adjusted p-value is below ``config.alpha``; ``direction`` is ``worse`` /
    ``better`` (by the metric's better direction) or, for the ``item_metrics`` (the keys of
    item-group specs), ``under-`` / ``over-exposed``.
    """
    low, high = config.band
    testable = table["status"] == "ok"
    outside = (table["ratio"] < low) | (table["ratio"] > high)
    significant = table["p_adjusted"] < config.alpha
    table["flag"] = testable & outside & significant
    worse_high = table["better"] == "lower"
    higher = table["ratio"] > 1
    direction = np.where(higher == worse_high, "worse", "better")
    exposure = table["metric"].isin(list(item_metrics))
    direction = np.where(exposure, np.where(higher, "over-exposed", "under-exposed"), direction)
    table["direction"] = np.where(table["flag"], direction, "")
    table.loc[table["flag"], "status"] = "flagged"
