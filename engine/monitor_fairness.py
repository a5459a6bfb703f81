r"""Fairness over time: provider shares per window and user-group gaps tested per window.

Provider shares (``provider``, ``provider_units``, ``exposure_table``)
    The item grouping is the item attribute ``provider``, else the first item attribute
    (``engine.audit.groups.item_attribute_groups``; an item of several groups counts in
    each). Per window, ``exposure`` units come from the window's top-k lists (the users
    of the window with a relevant rating and a training rating, as NDCG@k): :math:`a_u`
    = the user's position weight :math:`1 / \log_2(1 + r)` on the group's items,
    :math:`b_u` = the weight of the whole list; ``rating_share`` units from the window's
    ratings (:math:`a_u` = the user's ratings of the group, :math:`b_u` = all of them).
    Both are shares in [0, 1] (summing to 1 over the groups of a single-valued attribute;
    more with a multi-valued one such as genres), neither direction better, tested like
    every monitored quantity (``engine.monitor_changes``).
    ``exposure_table`` is the context: the exposure share vs the group's share of the
    catalogue known to training (``ratio`` = exposure / catalogue share, 1 = served in
    proportion to the catalogue; no test).

Gaps per window (``gap_table``), the audit's test in every window with a model
    For each window, quantity (``rmse``, lower is better; ``ndcg``, higher is better) and
    user attribute, each group is compared with the reference group: the group with most
    users in that window among those with at least ``min_group_size`` (ties by name).
    ``ratio = m(group) / m(reference)`` in [0, inf), 1 = parity; above 1 the group is served
    worse on RMSE (lower is better), better on NDCG@k; its 95% interval from independent
    user bootstraps of the two groups (the ratio of the replicates); p: two-sided
    permutation of the group labels among the users of both groups
    (``engine.audit.stats.permutation_p``), first with ``permutations`` = B draws (floor
    ``1 / (B + 1)``), then refined where the Holm decision depends on that resolution
    (``engine.audit.stats.refine_permutation_p``: in a family of ``m`` tests, B = 1,000
    and m = 46 put the floor times m at 0.046, next to ``alpha``; the tests with a
    first-pass p <= ``alpha`` or at the floor are redrawn with
    ``B' = max(B, ceil(20 m / alpha))`` permutations, so ``m / (B' + 1) <= alpha / 20``,
    from the stream seeded ``[seed, 2, 1]``, family by family in sorted order; Phipson and
    Smyth 2010; Gandy 2009; Sandve et al. 2011); ``p_is_bound`` when a p is at the floor of
    the draws behind it. Holm's correction within one family
    (quantity, grouping) over every window and group: one question "did the groups of
    attribute A differ on Q in any window?", so a finding does not depend on how many
    other attributes are monitored, and more windows make each test stricter (a monitor
    runs over many windows; correcting per window, as one audit would, would let a
    24-month run raise 24 times the false alarms). Tier ``"flagged"`` when the ratio
    leaves ``band`` and the adjusted p is below ``alpha`` (the audit's rule), ``"notable"``
    when significant inside it. The reference row has ratio 1 and status ``"reference"``.

Gap changes (``gap_change_table``): did a group's gap change?
    For a group tested in window ``w`` and in the previous window (``comparison``
    "previous") or the baseline ("baseline"; only for ``w > baseline + 1``: right after the
    baseline the previous window is the baseline, one comparison, tested once) against the
    *same* reference group:
    ``d = log ratio(w) - log ratio(other)``; ``ratio_change = exp(d)`` = ratio(w) /
    ratio(other), 1 = the same gap (the sentence says whether ``|log ratio|`` widened or
    narrowed; which is better depends on the side of parity the group is on). Interval:
    percentile of ``d*`` from the four independent user bootstraps (group and reference,
    both windows), as ``exp``; p: two-sided normal approximation of the bootstrap,
    ``erfc(|d| / (sd(d*) sqrt 2))`` (``engine.audit.stats.normal_tail``; a permutation
    has no exchangeable labels for a difference of two ratios). Holm within (quantity,
    grouping, comparison); flagged when ``ratio_change`` leaves ``band`` and is significant.
    No test without bootstrap replicates or when the reference group differs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from engine.audit.groups import item_attribute_groups
from engine.audit.measures import position_weights
from engine.audit.stats import (
    bootstrap_values,
    format_p_value,
    holm,
    is_floor,
    normal_tail,
    percentile_ci,
    permutation_p,
    ratio_of_sums,
)
from engine.data.types import RatingData
from engine.monitor_changes import QUANTITIES, _members, _refine, _Settings, _transform
from engine.monitor_data import INSUFFICIENT

GAP_QUANTITIES: tuple[str, ...] = ("rmse", "ndcg")
GAP_COLUMNS = [
    "window", "label", "quantity", "grouping", "group", "n_users", "value", "reference_group",
    "reference_value", "ratio", "ci_low", "ci_high", "outside_band", "p_value", "p_is_bound",
    "p_adjusted", "status", "tier", "severity", "sentence",
]  # fmt: skip
GAP_CHANGE_COLUMNS = [
    "quantity", "grouping", "group", "reference_group", "comparison", "window", "label",
    "other_window", "other_label", "n_users", "ratio", "other_ratio", "ratio_change", "ci_low",
    "ci_high", "p_value", "p_adjusted", "status", "tier", "severity", "sentence",
]  # fmt: skip
EXPOSURE_COLUMNS = ["window", "label", "grouping", "group", "exposure_share",
                    "catalogue_share", "ratio"]  # fmt: skip
_MAX_GAP = math.log(100.0)


def provider(data: RatingData, catalogue: np.ndarray) -> tuple[str, pd.DataFrame] | None:
    """``(name, membership)`` of ``provider``, else the first item attribute; None without."""
    chosen = ["provider"] if data.items is not None and "provider" in data.items else None
    groups, _ = item_attribute_groups(data.items, catalogue, chosen, 12)
    if not groups:
        return None
    name = next(iter(groups))
    return name, groups[name].fillna(False).astype(bool)


def provider_units(
    frame: pd.DataFrame, weights: np.ndarray, membership: pd.DataFrame, grouping: str,
    w: int, quantity: str,
) -> pd.DataFrame:  # fmt: skip
    """Per-user units of each item group: ``a`` = weight on the group, ``b`` = all weight.

    ``frame`` has ``user_id`` and ``item_id`` (a window's lists or ratings), ``weights``
    one weight per row (position weights, or 1 per rating).
    """
    member = membership.reindex(frame["item_id"].astype(str)).fillna(False).to_numpy(float)
    users = frame["user_id"].to_numpy()
    on = pd.DataFrame(weights[:, None] * member, columns=membership.columns.astype(str))
    a = on.groupby(users).sum()
    b = pd.Series(weights).groupby(users).sum().reindex(a.index).to_numpy(float)
    parts = [
        pd.DataFrame({"window": w, "quantity": quantity, "user_id": a.index, "a": a[g].to_numpy(),
                      "b": b, "grouping": grouping, "group": g})
        for g in a.columns
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True)


def list_units(
    lists: pd.DataFrame, membership: pd.DataFrame, grouping: str, w: int
) -> pd.DataFrame:
    """``exposure`` units of window ``w``'s top-k ``lists`` (module docstring)."""
    return provider_units(lists, position_weights(lists["rank"]), membership, grouping, w,
                          "exposure")  # fmt: skip


def exposure_table(values: pd.DataFrame, catalogue: dict[tuple[int, str], float]) -> pd.DataFrame:
    """Exposure share per window and group beside its catalogue share (module docstring)."""
    rows = values[values["quantity"] == "exposure"]
    keys = zip(rows["window"], rows["group"], strict=True)
    shares = [catalogue.get((int(w), str(g)), math.nan) for w, g in keys]
    out = rows[["window", "label", "grouping", "group"]].assign(
        exposure_share=rows["value"].to_numpy(float), catalogue_share=shares
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = out["exposure_share"] / out["catalogue_share"]
    return out.reset_index(drop=True)[EXPOSURE_COLUMNS]


def catalogue_shares(membership: pd.DataFrame, known: np.ndarray) -> pd.Series:
    """Each item group's share of the ``known`` items (the catalogue known to training)."""
    shares = membership.reindex(known.astype(str)).fillna(False).to_numpy(float).mean(axis=0)
    return pd.Series(shares, index=membership.columns.astype(str))


def _classify(table: pd.DataFrame, ratio: str, family: list[str], config: _Settings) -> None:
    """Holm within ``family``, then tier, flagged status and severity, in place."""
    for _, index in table.groupby(family).groups.items():
        table.loc[index, "p_adjusted"] = holm(table.loc[index, "p_value"].to_numpy(float))
    low, high = config.band
    r = table[ratio].to_numpy(float)
    significant = table["p_adjusted"].to_numpy(float) < config.alpha
    outside = np.isfinite(r) & ((r < low) | (r > high))
    table["tier"] = np.where(significant & outside, "flagged", np.where(significant, "notable", ""))
    table.loc[table["tier"] == "flagged", "status"] = "flagged"
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.minimum(np.abs(np.log(np.where(r > 0, r, np.nan))), _MAX_GAP)
    gap = np.where(np.isfinite(r) & (r <= 0), _MAX_GAP, gap)
    table["severity"] = np.where(
        table["tier"] != "", gap * table["n_users"].to_numpy(float), np.nan
    )


def _gap_sentence(row: dict[str, Any]) -> str:
    q, p = row["quantity"], format_p_value(row["p_value"], row["p_is_bound"])
    return (
        f"{QUANTITIES[q]} of {row['grouping']} = {row['group']} was {row['ratio']:.2f} times "
        f"that of {row['reference_group']} in {row['label']} ({row['value']:.3f} vs "
        f"{row['reference_value']:.3f}; p {p if p.startswith('<') else '= ' + p}, "
        f"Holm-adjusted {format_p_value(row['p_adjusted'])}): {row['tier'] or 'ok'}"
    )


def gap_table(
    units: pd.DataFrame, groupings: dict[str, pd.Series], windows: pd.DataFrame,
    config: _Settings,
) -> tuple[pd.DataFrame, dict[tuple, np.ndarray]]:  # fmt: skip
    """Each group's gap to the reference per window, tested (module docstring).

    Returns the table and the bootstrap replicates of each tested row's ratio, keyed by
    (window, quantity, grouping, group), for ``gap_change_table``.
    """
    rng = np.random.default_rng([config.seed, 2])
    status = windows["status"].to_numpy()
    labels = windows["label"].to_numpy()
    members = _members(units[units["quantity"].isin(GAP_QUANTITIES)], groupings)
    families: dict[tuple, list[str]] = {}
    for w, q, grouping, group in members:
        if grouping != "all":
            families.setdefault((w, q, grouping), []).append(group)
    rows, replicates, tests = [], {}, {}
    for (w, q, grouping), groups in sorted(families.items()):
        f = _transform(q)
        parts = {g: members[(w, q, grouping, g)] for g in groups}
        eligible = [g for g in groups if len(parts[g]) >= config.min_group_size]
        ok = status[w] == "ok" and bool(eligible)
        ref = min(eligible, key=lambda g: (-len(parts[g]), g)) if eligible else None
        a0 = parts[ref]["a"].to_numpy(float) if ref else np.empty(0)
        b0 = parts[ref]["b"].to_numpy(float) if ref else np.empty(0)
        ref_value = ratio_of_sums(a0, b0, f) if ref else math.nan
        ref_boot = bootstrap_values(a0, b0, f, config.bootstrap, rng) if ok else np.empty(0)
        for g in sorted(groups):
            a, b = parts[g]["a"].to_numpy(float), parts[g]["b"].to_numpy(float)
            row = {"window": w, "label": labels[w], "quantity": q, "grouping": grouping,
                   "group": g, "n_users": len(a), "value": ratio_of_sums(a, b, f),
                   "reference_group": ref, "reference_value": ref_value, "ratio": math.nan,
                   "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan,
                   "p_is_bound": False, "p_adjusted": math.nan, "status": "ok"}  # fmt: skip
            rows.append(row)
            if not ok or len(a) < config.min_group_size or not ref_value > 0:
                row["status"] = INSUFFICIENT
                continue
            row["ratio"] = row["value"] / ref_value
            if g == ref:
                row["status"] = "reference"
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                boot = bootstrap_values(a, b, f, config.bootstrap, rng) / ref_boot
            row["ci_low"], row["ci_high"] = percentile_ci(boot)
            replicates[(w, q, grouping, g)] = boot
            row["p_value"] = permutation_p(a, b, a0, b0, f, config.permutations, rng)
            row["p_is_bound"] = is_floor(row["p_value"], config.permutations)
            if not math.isfinite(row["p_value"]):
                row["status"] = "not tested"
            else:
                tests[len(rows) - 1] = (a, b, a0, b0, f)
    table = pd.DataFrame(rows, columns=GAP_COLUMNS)
    low, high = config.band
    r = table["ratio"].to_numpy(float)
    table["outside_band"] = np.isfinite(r) & ((r < low) | (r > high))
    if table.empty:
        return table, replicates
    family = ["quantity", "grouping"]
    _refine(table, family, tests, config, np.random.default_rng([config.seed, 2, 1]))
    _classify(table, "ratio", family, config)
    table["sentence"] = [_gap_sentence(r) if math.isfinite(r["p_value"]) else ""
                         for r in table.to_dict("records")]  # fmt: skip
    return table, replicates


def _gap_change_sentence(row: dict[str, Any]) -> str:
    against = ("the previous window" if row["comparison"] == "previous"
               else f"the baseline window {row['other_label']}")  # fmt: skip
    wider = abs(math.log(row["ratio"])) > abs(math.log(row["other_ratio"]))
    p = format_p_value(row["p_value"])
    return (
        f"Gap in {QUANTITIES[row['quantity']]} of {row['grouping']} = {row['group']} to "
        f"{row['reference_group']} {'widened' if wider else 'narrowed'}: ratio "
        f"{row['other_ratio']:.2f} -> {row['ratio']:.2f} in {row['label']} (change "
        f"{row['ratio_change']:.2f} vs {against}; p {p if p.startswith('<') else '= ' + p}, "
        "Holm-adjusted "
        f"{format_p_value(row['p_adjusted'])}): {row['tier'] or 'ok'}"
    )


def gap_change_table(
    gaps: pd.DataFrame, replicates: dict[tuple, np.ndarray], baseline: int, config: _Settings
) -> pd.DataFrame:
    """Whether each group's gap changed vs the previous and the baseline window (docstring)."""
    tested = gaps[gaps["p_value"].notna()]
    by_key = {(r["window"], r["quantity"], r["grouping"], r["group"]): r
              for r in tested.to_dict("records")}  # fmt: skip
    rows = []
    for key, mine in sorted(by_key.items()):
        w = key[0]
        for comparison, other in (("previous", w - 1), ("baseline", baseline)):
            theirs = by_key.get((other, *key[1:]))
            if other < 0 or (comparison == "baseline" and w <= baseline + 1) or theirs is None:
                continue
            row = {"quantity": key[1], "grouping": key[2], "group": key[3],
                   "reference_group": mine["reference_group"], "comparison": comparison,
                   "window": w, "label": mine["label"], "other_window": other,
                   "other_label": theirs["label"], "n_users": mine["n_users"],
                   "ratio": mine["ratio"],
                   "other_ratio": theirs["ratio"], "ratio_change": math.nan,
                   "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan,
                   "p_adjusted": math.nan, "status": "not tested"}  # fmt: skip
            rows.append(row)
            if theirs["reference_group"] != mine["reference_group"]:
                row["status"] = "reference changed"
                continue
            if not (mine["ratio"] > 0 and theirs["ratio"] > 0):
                continue
            d = math.log(mine["ratio"]) - math.log(theirs["ratio"])
            row["ratio_change"] = math.exp(d)
            with np.errstate(divide="ignore", invalid="ignore"):
                boot = np.log(replicates[key]) - np.log(replicates[(other, *key[1:])])
            boot = boot[np.isfinite(boot)]
            if len(boot) < 2:
                continue
            low, high = percentile_ci(boot)
            row["ci_low"], row["ci_high"] = math.exp(low), math.exp(high)
            row["p_value"] = normal_tail(d, float(np.std(boot, ddof=1)))
            row["status"] = "ok" if math.isfinite(row["p_value"]) else "not tested"
    table = pd.DataFrame(rows, columns=GAP_CHANGE_COLUMNS)
    if table.empty:
        return table
    _classify(table, "ratio_change", ["quantity", "grouping", "comparison"], config)
    table["sentence"] = [_gap_change_sentence(r) if r["status"] in ("ok", "flagged") else ""
                         for r in table.to_dict("records")]  # fmt: skip
    return table


def _names(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def gap_summary(gaps: pd.DataFrame, min_group_size: int) -> list[str]:
    """Say, per user attribute, what of its gaps was tested and whether any is flagged.

    ``gaps`` is ``Monitoring.fairness``. One sentence per attribute (``grouping``), over the
    windows with a model: when no group but the reference was ever tested, "No gap could be
    tested for gender: F has fewer than 30 users in every window."; else how many tested
    gaps are flagged, with the number of windows each non-reference group was tested in
    ("No tested gap is flagged for gender (F was tested in 3 of 7 windows)."). A group is
    tested in a window when its RMSE or NDCG@k gap there has a p-value. "No gap is flagged"
    alone would hide that a small group was never tested. The Over time page and the
    report's section both show these sentences.
    """
    out: list[str] = []
    if gaps.empty:
        return out
    for grouping, rows in gaps.groupby("grouping", sort=True):
        n_windows = rows["window"].nunique()
        tested_rows = rows[rows["p_value"].notna()]
        per_group, small, refs, other = [], [], [], []
        for group, part in rows.groupby("group", sort=True):
            tested = tested_rows.loc[tested_rows["group"] == group, "window"].nunique()
            as_ref = part.loc[part["status"] == "reference", "window"].nunique()
            if tested:
                per_group.append((str(group), tested))
            elif as_ref == n_windows:
                continue  # the reference throughout: its gap is everyone else's
            elif as_ref:
                refs.append((str(group), as_ref))
            elif (part.groupby("window")["n_users"].max() < min_group_size).all():
                small.append(str(group))
            else:
                other.append(str(group))
        name = str(grouping)
        why = []
        if small:
            verb = "has" if len(small) == 1 else "have"
            why.append(f"{_names(small)} {verb} fewer than {min_group_size} users in every window")
        if other:
            were = "was" if len(other) == 1 else "were"
            why.append(f"{_names(other)} {were} not tested in any window (insufficient data "
                       "in the window, or no permutation test)")  # fmt: skip
        if refs:
            why.append("; ".join(f"{g} is the reference group in {n} of {n_windows} windows"
                                 for g, n in refs))  # fmt: skip
        if not per_group:
            reason = "; ".join(why) if why else "it has a single group"
            out.append(f"No gap could be tested for {name}: {reason}.")
            continue
        counts = [f"{g} was tested in {n} of {n_windows} windows" for g, n in per_group]
        flagged = int((tested_rows["tier"] == "flagged").sum())
        if flagged:
            are = "is" if flagged == 1 else "are"
            head = f"{flagged} of {len(tested_rows)} tested gaps {are} flagged for {name}"
        else:
            head = f"No tested gap is flagged for {name}"
        untested = f"; untested: {'; '.join(why)}" if small or other else ""
        out.append(f"{head} ({'; '.join(counts)}{untested}).")
    return out
