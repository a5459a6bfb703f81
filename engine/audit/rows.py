"""Rows of the audit's metric table: one per (metric, grouping, group), and their tiers.

User groups (``group_rows``): a ratio-of-sums value per group with a bootstrap interval,
the ratio to the reference group and a permutation p-value. Item groups
(``exposure_rows``): each item-group metric's share (exposure, interactions) vs the
catalogue share, tested with a normal approximation of the user bootstrap. Each row's
``family``, ``scope``, ``better`` and ``definition`` come from the metric's ``MetricSpec``
(``engine.audit.registry``); the statistics are in ``engine.audit.stats``.

Conventions (``classify``, ``adjust``):

* Family of the multiple-testing correction: Holm over the tested rows of one
  (scope, metric, grouping), i.e. one question "does metric M differ across the groups
  of attribute A?". Correcting over every row of the audit would make a finding depend
  on how many other attributes or metrics were ticked; each question controls its own
  family-wise error at ``alpha`` (the false-discovery risk across questions is stated,
  not hidden: every row keeps its raw ``p_value``).
* Tiers: ``"flagged"`` (model scope, ratio outside ``config.band`` and ``p_adjusted <
  alpha``), ``"notable"`` (model scope, significant but inside the band: a real
  difference smaller than the band), ``"context"`` (data-scope rows with a value that
  are not insufficient data: what the ratings show, never flagged), ``""`` otherwise.
* ``severity`` = ``min(|log ratio|, log 100) x n affected`` (``n_users`` for user
  groups, ``n_raters`` for item groups; a ratio of 0 or below counts as log 100) for
  tested rows of tier flagged, notable or context; NaN otherwise. Higher = a larger gap
  that reaches more users.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np
import pandas as pd

from engine.audit import measures
from engine.audit.config import AuditConfig
from engine.audit.registry import Events, MetricSpec, Parts
from engine.audit.stats import (
    bootstrap_values,
    holm,
    is_floor,
    no_variation,
    normal_tail,
    percentile_ci,
    permutation_p,
    ratio_of_sums,
)
from engine.ids import object_ids

ROW_COLUMNS = [
    "family", "metric", "scope", "grouping", "group", "n_users", "n_items", "n_raters",
    "n_ratings", "value", "ci_low", "ci_high", "reference_group", "ratio", "p_value",
    "p_method", "p_is_bound", "p_adjusted", "flag", "tier", "direction", "severity",
    "status", "better", "definition",
]  # fmt: skip
#: Size columns (pandas nullable ``Int64``): ``n_users`` (user-group rows: users with a
#: value; ``<NA>`` on item-group rows), ``n_items`` (item-group rows: items in the group),
#: ``n_raters`` (item-group rows: distinct users who rated the group's items),
#: ``n_ratings`` (user groups: their ratings; item groups: the ratings of their items).
COUNT_COLUMNS = ("n_users", "n_items", "n_raters", "n_ratings")
#: Row statuses: compared with the reference (``ok``, ``flagged``), the ``reference``
#: itself, too small (``insufficient data``: fewer than ``min_group_size`` users in a user
#: group, raters in an item group, or an item group without items), large enough but
#: without a p-value (``not tested``: permutations = 0, bootstrap = 0 for item-group rows,
#: or a reference value of 0 that leaves no ratio), nothing varies (``no variation``:
#: an item group whose bootstrap shares are all equal and above 0 leaves the normal
#: approximation no spread (a group no list reaches, share 0 in every replicate, gets
#: the bootstrap's bound ``p < 1 / (B + 1)`` instead, ``p_method`` "bootstrap"); a user
#: group where every user of it and of the reference has the same value leaves nothing
#: to permute; no interval, no test), a row
#: true by construction (``by definition``: the interaction share of the short head /
#: long tail, which are defined by their interaction share; not tested) and item-group
#: rows when no list holds any item (``no recommendations``).
STATUSES = ("reference", "ok", "flagged", "insufficient data", "not tested",
            "no variation", "by definition", "no recommendations")  # fmt: skip
#: Row tiers (see the module docstring); ``flag`` is True exactly for ``"flagged"``.
TIERS = ("flagged", "notable", "context", "")
#: How each row's p-value was obtained (``""``: no test).
P_METHODS = ("permutation", "normal approximation", "bootstrap", "")
#: How a missing interval reads when the bootstrap is off.
NO_INTERVAL = "no interval (bootstrap off)"
#: Largest gap ``|log ratio|`` counted by ``severity`` (a ratio of 100 or 1/100).
MAX_GAP = float(np.log(100.0))


def deviation(ratio: pd.Series) -> np.ndarray:
    """``|log ratio|`` per row: ``inf`` for a ratio <= 0, NaN for a missing ratio."""
    r = ratio.to_numpy(float)
    positive = np.isfinite(r) & (r > 0)
    out = np.where(np.isnan(r), np.nan, np.inf)
    out[positive] = np.abs(np.log(r[positive]))
    return out


def _row(spec: MetricSpec, grouping: str, group: Any, **values: Any) -> dict[str, Any]:
    """Return a row of ``ROW_COLUMNS``: the spec's columns, untested defaults, ``values``."""
    row = {
        "family": spec.family, "metric": spec.key, "scope": spec.scope, "grouping": grouping,
        "group": str(group), "n_users": pd.NA, "n_items": pd.NA, "n_raters": pd.NA,
        "n_ratings": pd.NA, "value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
        "reference_group": None, "ratio": np.nan, "p_value": np.nan, "p_method": "",
        "p_is_bound": False, "p_adjusted": np.nan, "flag": False, "tier": "",
        "direction": "", "severity": np.nan, "status": "ok", "better": spec.better,
        "definition": spec.definition,
    }  # fmt: skip
    row.update(values)
    return row


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
    the reference value is positive) and a permutation p-value (``not tested`` without;
    ``p_is_bound`` when it is the floor ``1 / (1 + permutations)``). The permutation test
    does not rest on the bootstrap: a group whose replicates are all equal (every user
    has the same value) keeps its zero-width interval and is still tested against the
    reference, unless every user of both groups has the same value (``no variation``: no
    interval, no test).
    """
    a_all, b_all, transform = parts
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
        row = _row(
            spec, grouping, group, n_users=len(users),
            n_ratings=int(profile_sizes.reindex(users).sum()),
            value=ratio_of_sums(a, b, transform),
            reference_group=None if reference is None else str(reference),
        )  # fmt: skip
        rows.append(row)
        if len(users) < config.min_group_size:
            row["status"] = "insufficient data"
            continue
        boot = bootstrap_values(a, b, transform, config.bootstrap, rng)
        row["ci_low"], row["ci_high"] = percentile_ci(boot)
        if group == reference:
            row["status"], row["ratio"] = "reference", 1.0
            continue
        if np.isfinite(ref_value) and ref_value > 0:
            row["ratio"] = row["value"] / ref_value
        a_ref, b_ref = a_all[ref_users].to_numpy(float), b_all[ref_users].to_numpy(float)
        if no_variation(boot) and _constant(np.concatenate([a, a_ref]), np.concatenate([b, b_ref])):
            row["status"] = "no variation"  # every user of both groups has the same value
            row["ci_low"] = row["ci_high"] = np.nan
        elif np.isfinite(row["ratio"]):
            p = permutation_p(a, b, a_ref, b_ref, transform, config.permutations, rng)
            if np.isfinite(p):
                row["p_value"], row["p_method"] = p, "permutation"
                row["p_is_bound"] = is_floor(p, config.permutations)
        if row["status"] == "ok" and not np.isfinite(row["p_value"]):
            row["status"] = "not tested"
    return rows


def _constant(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether every user with ``b > 0`` has the same ``a / b`` (nothing to permute)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        values = a[b > 0] / b[b > 0]
    return len(values) > 0 and float(np.ptp(values)) <= 1e-12 * max(
        1.0, float(np.abs(values).max())
    )


def exposure_rows(
    grouping: str,
    membership: pd.DataFrame,
    events: list[tuple[MetricSpec, Events]],
    raters: Mapping[Any, tuple[int, int]],
    config: AuditConfig,
    rng: np.random.Generator,
    by_definition: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Each item-group metric's share per item group vs the group's catalogue share.

    ``events`` holds each item-group spec with its weighted (user, item) events, e.g.
    ``exposure_share``: the top-k lists weighted by position; ``interaction_share``: the
    ratings (the exposure users gave the items before the model). A group's value is its
    share of the total weight, compared with its catalogue share (ratio). Sizes:
    ``n_items`` (items in the group), ``n_raters`` and ``n_ratings`` (distinct users who
    rated its items, and their ratings: ``raters[group]``, ``rater_counts``); ``n_users``
    is ``<NA>``. A group without items or
    with fewer than ``min_group_size`` raters is ``insufficient data``. A group that no
    event reaches has a real share of 0. CIs bootstrap users (``config.bootstrap``
    replicates, none when 0); the p-value is the two-sided normal tail of the bootstrap
    distribution around the catalogue share (``p_method`` "normal approximation"), so
    without a bootstrap the rows are ``not tested``, and a bootstrap without variance
    gives ``no variation``, except a share of 0 in every replicate (no list reaches the
    group): no replicate comes near the catalogue share, so ``p < 1 / (B + 1)``
    (``p_method`` "bootstrap", ``p_is_bound``), under-exposed when it survives Holm. The
    metrics named in ``by_definition`` are true by construction for this grouping (the
    interaction share of the popularity groups): value and ratio, no test, status
    ``by definition``. When
    no event has any weight (no list holds any item), the rows have no value and the
    status ``no recommendations``.
    """
    return exposure_rows_of_weights(grouping, membership, event_weights(events, membership),
                                    raters, config, rng, by_definition)  # fmt: skip


def event_weights(
    events: list[tuple[MetricSpec, Events]], membership: pd.DataFrame
) -> list[tuple[MetricSpec, np.ndarray, pd.DataFrame]]:
    """Each spec's per-user weights of its events (``measures.weight_by_user``) by group."""
    return [
        (spec, *measures.weight_by_user(object_ids(users), object_ids(items), w, membership))
        for spec, (users, items, w) in events
    ]


def exposure_rows_of_weights(
    grouping: str,
    membership: pd.DataFrame,
    weights: list[tuple[MetricSpec, np.ndarray, pd.DataFrame]],
    raters: Mapping[Any, tuple[int, int]],
    config: AuditConfig,
    rng: np.random.Generator,
    by_definition: Collection[str] = (),
) -> list[dict[str, Any]]:
    """``exposure_rows`` from each spec's per-user weights instead of its events.

    ``weights``: ``(spec, total, by_group)`` as ``measures.weight_by_user`` returns them
    (one entry per user, in the same order in both; the bootstrap draws users by position),
    e.g. summed where the events lie (``engine.spark.audit``).
    """
    rows = []
    for spec, total_by_user, by_group in weights:
        total = float(total_by_user.sum())
        n = len(total_by_user)
        tested = spec.key not in by_definition
        idx = (
            rng.integers(0, n, size=(config.bootstrap, n))
            if config.bootstrap and total and tested
            else None
        )
        boot_total = None if idx is None else total_by_user[idx].sum(axis=1)
        for group in membership.columns:
            catalogue = float(membership[group].mean())
            n_raters, n_ratings = raters[group]
            row = _row(
                spec, grouping, group, n_items=int(membership[group].sum()), n_raters=n_raters,
                n_ratings=n_ratings, reference_group="catalogue share",
                definition=f"{spec.definition}; catalogue share {catalogue:.3f}",
            )  # fmt: skip
            rows.append(row)
            if catalogue == 0 or n_raters < config.min_group_size:
                row["status"] = "insufficient data"  # no item, or too few raters
                continue
            if not total:
                row["status"] = "no recommendations"
                continue
            by_user = by_group[group].to_numpy()
            share = float(by_user.sum()) / total
            row["value"] = share
            row["ratio"] = share / catalogue
            if not tested:
                row["status"] = "by definition"
                continue
            if boot_total is None:
                row["status"] = "not tested"
                continue
            boot = by_user[idx].sum(axis=1) / boot_total
            if no_variation(boot) and share == 0:
                # No list reaches the group, in any replicate: no replicate comes near its
                # catalogue share, so the bootstrap says p < 1 / (B + 1) (a bound).
                row["ci_low"], row["ci_high"] = 0.0, 0.0
                row["p_value"], row["p_is_bound"] = 1 / (config.bootstrap + 1), True
                row["p_method"] = "bootstrap"
                continue
            if no_variation(boot):
                row["status"] = "no variation"
                continue
            row["ci_low"], row["ci_high"] = percentile_ci(boot)
            p = normal_tail(share - catalogue, float(boot.std()))
            if np.isfinite(p):
                row["p_value"], row["p_method"] = p, "normal approximation"
            else:
                row["status"] = "not tested"  # one replicate: no spread to test with
    return rows


def rater_counts(ratings: pd.DataFrame, membership: pd.DataFrame) -> dict[Any, tuple[int, int]]:
    """Per item group (column of ``membership``): ``(n_raters, n_ratings)`` of its items.

    ``n_ratings`` counts the ratings of the group's items, ``n_raters`` the distinct users
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


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Return the metric table of ``rows``: ``ROW_COLUMNS`` with their dtypes.

    Counts are nullable ``Int64``, ``flag`` and ``p_is_bound`` bool, text columns str
    (``reference_group`` may be missing), the rest float.
    """
    table = pd.DataFrame(rows, columns=ROW_COLUMNS)
    floats = ["value", "ci_low", "ci_high", "ratio", "p_value", "p_adjusted", "severity"]
    texts = ["family", "metric", "scope", "grouping", "group", "p_method", "tier",
             "direction", "status", "better", "definition"]  # fmt: skip
    return table.astype(
        {**dict.fromkeys(COUNT_COLUMNS, "Int64"), **dict.fromkeys(floats, float),
         **dict.fromkeys(["flag", "p_is_bound"], bool), **dict.fromkeys(texts, "str"),
         "reference_group": "str"}
    )  # fmt: skip


def adjust(table: pd.DataFrame) -> None:
    """Set ``p_adjusted`` in place: Holm within each (scope, metric, grouping).

    One family per question "does this metric differ across the groups of this
    grouping?", so a row's adjusted p-value does not depend on the other attributes or
    metrics audited (see the module docstring). A bound (``p_is_bound``) stays a bound
    after adjustment.
    """
    adjusted = np.full(len(table), np.nan)
    for _, index in table.groupby(["scope", "metric", "grouping"], sort=False).indices.items():
        adjusted[index] = holm(table["p_value"].to_numpy(float)[index])
    table["p_adjusted"] = adjusted


def gap(ratio: pd.Series) -> np.ndarray:
    """``min(|log ratio|, MAX_GAP)``: a ratio of 0 or below is the largest gap; NaN stays."""
    return np.minimum(deviation(ratio), MAX_GAP)


def classify(table: pd.DataFrame, config: AuditConfig, item_metrics: Collection[str]) -> None:
    """Set ``tier``, ``flag``, ``direction``, ``severity`` and the ``flagged`` status in place.

    Tiers as in the module docstring: among rows with status ``ok`` and ``p_adjusted <
    config.alpha``, model-scope rows outside ``config.band`` are ``flagged``, inside it
    ``notable``; data-scope rows with a value (not insufficient data) are ``context``, and
    no data-scope row is ever flagged. ``direction`` is
    ``worse`` / ``better`` (by the metric's better direction) or, for the
    ``item_metrics`` (the keys of item-group specs), ``under-`` / ``over-exposed`` (data
    rows: ``rated less`` / ``rated more``, the ratings' share of the group); it is
    filled for flagged and notable rows and for data rows that are outside the band and
    significant ("the data shows..."), empty otherwise.
    """
    low, high = config.band
    significant = (table["status"] == "ok") & (table["p_adjusted"] < config.alpha)
    outside = (table["ratio"] < low) | (table["ratio"] > high)
    model = table["scope"] == "model"
    flagged = significant & model & outside
    notable = significant & model & ~outside
    data = table["scope"] == "data"
    shown_data = data & table["value"].notna() & (table["status"] != "insufficient data")
    table["flag"] = flagged.to_numpy(bool)
    table["tier"] = np.select([flagged, notable, shown_data], ["flagged", "notable", "context"], "")
    worse_high = table["better"] == "lower"
    higher = table["ratio"] > 1
    direction = np.where(higher == worse_high, "worse", "better")
    exposure = table["metric"].isin(list(item_metrics))
    direction = np.where(exposure, np.where(higher, "over-exposed", "under-exposed"), direction)
    rated = np.where(higher, "rated more", "rated less")  # the ratings' own share: no exposure
    direction = np.where(exposure & data, rated, direction)
    shown = flagged | notable | (data & significant & outside)
    table["direction"] = np.where(shown, direction, "")
    item = table["n_raters"].notna()
    affected = np.where(item, table["n_raters"].astype("Float64").fillna(0),
                        table["n_users"].astype("Float64").fillna(0)).astype(float)  # fmt: skip
    ranked = table["p_value"].notna() & table["tier"].isin(["flagged", "notable", "context"])
    table["severity"] = np.where(ranked, gap(table["ratio"]) * affected, np.nan)
    table.loc[flagged, "status"] = "flagged"
