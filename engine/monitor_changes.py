r"""Monitored quantities per window and group, and the tests of their changes (drift).

Quantities (``QUANTITIES``), each a ratio of sums over the users of a window and group
(``engine.audit.stats``), :math:`m = f(\sum_u a_u / \sum_u b_u)`:

* ``rating_mean`` (scope data): :math:`a_u` = the user's summed ratings in the window,
  :math:`b_u` = their number; in rating units, neither direction is better;
* ``rmse`` (scope model): :math:`a_u` = the user's summed squared errors on known
  (non-cold-start) test ratings, :math:`b_u` = their number, :math:`f = \sqrt{\cdot}`;
  lower is better;
* ``ndcg`` (scope model): :math:`a_u` = the user's NDCG@k, :math:`b_u = 1`; in [0, 1],
  higher is better;
* ``exposure`` (scope model), per item group ``g`` of the provider attribute: the
  position-weighted exposure share of ``g`` in the window's top-k lists, :math:`a_u` =
  the user's summed position weights :math:`1 / \log_2(1 + r)` on items of ``g``,
  :math:`b_u` = the summed weights of the user's whole list; in [0, 1]; neither direction
  is better (a share moves with the catalogue); the provider's share of the catalogue
  known to training is its reference, shown beside it as context (``Monitoring.exposure``)
  and in the sentence, not tested;
* ``rating_share`` (scope data), per item group ``g``: the share of the window's ratings
  that are of items of ``g``, :math:`a_u` = the user's ratings of ``g`` in the window,
  :math:`b_u` = all the user's ratings in the window; in [0, 1]; neither direction is
  better (what the users consumed; ``exposure`` is what the model served).

Values (``value_table``): per (window, quantity, grouping, group), with a 95% percentile
bootstrap interval resampling the group's users (``bootstrap`` replicates). Grouping
``"all"`` is every user of the window; the others are user attributes. For the item-group
quantities (``ITEM_QUANTITIES``) the grouping is the item attribute and every user of the
window with a list (``exposure``) or a rating (``rating_share``) is a unit of every group:
the units carry their ``grouping`` and ``group``, and ``n_users`` counts those users.

Changes (``change_table``), conventions:

* each window ``w`` is compared with the previous window ``w - 1`` (``comparison``
  "previous") and each window from the second after the baseline on (``w > baseline + 1``)
  with the baseline ("baseline"); right after the baseline the previous window *is* the
  baseline, and that one comparison is tested, counted in a Holm family and printed once,
  as "previous";
* difference ``d = m(w) - m(other)`` with a 95% interval from independent user bootstraps
  of the two windows; ratio ``m(w) / m(other)``;
* p-value: two-sided permutation test, unpaired: the users of the two windows are pooled
  and the window labels shuffled (``engine.audit.stats.permutation_p``; a user active in
  both windows counts as two units, so the test treats the windows as independent
  samples of users); ``p >= 1 / (permutations + 1)`` in the first pass. Where the Holm
  decision depends on that resolution the p is refined (``refine_permutation_p``, the
  rule and its references there): in each Holm family of ``m`` permutation tests, those
  with a first-pass p <= ``alpha`` or at the floor are redrawn with
  ``B' = max(B, ceil(20 m / alpha))`` permutations (``m / (B' + 1) <= alpha / 20``) from
  the stream seeded ``[seed, 1, 1]``, family by family in sorted order; ``p_is_bound``
  when a p is at the floor of the draws behind it (``1 / (B' + 1)`` once refined). The
  item-group shares
  (``ITEM_QUANTITIES``) are tested as the audit tests item-group shares: the two-sided
  normal tail of the bootstrap distribution of ``d`` (``normal_tail(d, sd(d*))``,
  ``p_method`` "normal approximation"; none without bootstrap replicates). Their families
  hold windows x providers (about 90 tests for 2 years by month and 4 providers), where
  a permutation p's floor ``1 / (B + 1)`` times the family size would leave even a halved
  exposure share unflagged at 1,000 permutations;
* Holm's correction within one family (quantity, grouping, comparison): one question "did
  quantity Q of the groups of attribute A change between windows?", across windows and
  groups;
* tier ``"flagged"`` when the ratio leaves ``band`` and the adjusted p is below ``alpha``
  (the audit's rule; here for data and model quantities alike, since data drift is what
  monitoring is for), ``"notable"`` when significant inside the band, else ``""``. A
  share that was 0 in the other window has no ratio and is not tested (its rise shows in
  the values); a share that falls to 0 has ratio 0, outside any band;
* status ``"insufficient data"`` when either window is insufficient or the group has
  fewer than ``min_group_size`` users in either window; ``"not tested"`` without
  permutations or with no finite ratio;
* ``severity = min(|log ratio|, log 100) x n_users`` (users of window ``w``), the audit's.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import pandas as pd

from engine.audit.stats import (
    bootstrap_values,
    format_p_value,
    holm,
    identity,
    is_floor,
    normal_tail,
    percentile_ci,
    permutation_p,
    ratio_of_sums,
    refine_permutation_p,
)
from engine.monitor_data import INSUFFICIENT as _INSUFFICIENT

#: Monitored quantities and their names in sentences.
QUANTITIES: dict[str, str] = {
    "rating_mean": "Rating mean",
    "rmse": "RMSE",
    "ndcg": "NDCG@k",
    "exposure": "Exposure share",
    "rating_share": "Share of ratings",
}
SCOPES: dict[str, str] = {"rating_mean": "data", "rmse": "model", "ndcg": "model",
                          "exposure": "model", "rating_share": "data"}  # fmt: skip
#: Quantities per item group (their units carry ``grouping`` and ``group``).
ITEM_QUANTITIES: tuple[str, ...] = ("exposure", "rating_share")
VALUE_COLUMNS = ["window", "label", "scope", "quantity", "grouping", "group", "n_users",
                 "value", "ci_low", "ci_high", "status"]  # fmt: skip
CHANGE_COLUMNS = [
    "quantity", "scope", "grouping", "group", "comparison", "window", "label", "other_window",
    "other_label", "n_users", "other_n_users", "value", "other_value", "difference", "ci_low",
    "ci_high", "ratio", "p_value", "p_method", "p_is_bound", "p_adjusted", "status", "tier",
    "severity", "sentence",
]  # fmt: skip


class _Settings(Protocol):
    min_group_size: int
    bootstrap: int
    permutations: int
    alpha: float
    band: tuple[float, float]
    seed: int


def _transform(quantity: str) -> Any:
    return np.sqrt if quantity == "rmse" else identity


def _members(units: pd.DataFrame, groupings: dict[str, pd.Series]) -> dict[tuple, pd.DataFrame]:
    """Each (window, quantity, grouping, group)'s user rows (``a``, ``b``).

    Units with a ``grouping`` (the item-group quantities) are keyed by it as they are; the
    others are split by every user attribute of ``groupings`` (and ``"all"``).
    """
    out: dict[tuple, pd.DataFrame] = {}
    item = units["grouping"].notna() if "grouping" in units else np.zeros(len(units), bool)
    if item.any():
        keys = ["window", "quantity", "grouping", "group"]
        for (w, q, grouping, group), part in units[item].groupby(keys, sort=True):
            out[(int(w), q, str(grouping), str(group))] = part
    for (w, q), part in units[~item].groupby(["window", "quantity"], sort=True):
        out[(int(w), q, "all", "all")] = part
        for name, labels in groupings.items():
            label = labels.reindex(part["user_id"].astype(str)).to_numpy()
            for group in sorted({str(x) for x in label if isinstance(x, str)}):
                out[(int(w), q, name, group)] = part[label == group]
    return out


def value_table(
    units: pd.DataFrame,
    groupings: dict[str, pd.Series],
    windows: pd.DataFrame,
    config: _Settings,
) -> pd.DataFrame:
    """Each quantity per window and group with its bootstrap interval (module docstring)."""
    rng = np.random.default_rng(config.seed)
    labels, status = windows["label"].to_numpy(), windows["status"].to_numpy()
    rows = []
    for (w, q, grouping, group), part in _members(units, groupings).items():
        a, b = part["a"].to_numpy(float), part["b"].to_numpy(float)
        boot = bootstrap_values(a, b, _transform(q), config.bootstrap, rng)
        low, high = percentile_ci(boot)
        small = status[w] != "ok" or len(part) < config.min_group_size
        rows.append({
            "window": w, "label": labels[w], "scope": SCOPES[q], "quantity": q,
            "grouping": grouping, "group": group, "n_users": len(part),
            "value": ratio_of_sums(a, b, _transform(q)), "ci_low": low, "ci_high": high,
            "status": _INSUFFICIENT if small else "ok",
        })  # fmt: skip
    return pd.DataFrame(rows, columns=VALUE_COLUMNS)


def _number(quantity: str, value: float) -> str:
    return f"{value:.3f}" if quantity in ("ndcg", *ITEM_QUANTITIES) else f"{value:.2f}"


def sentence(row: dict[str, Any]) -> str:
    """Return a change in words: "RMSE for gender = F rose from 0.93 to 1.05 in 1998-03 (...)"."""
    q = row["quantity"]
    who = "" if row["grouping"] == "all" else f" for {row['grouping']} = {row['group']}"
    verb = "rose" if row["difference"] > 0 else "fell" if row["difference"] < 0 else "stayed"
    against = ("the previous window" if row["comparison"] == "previous"
               else f"the baseline window {row['other_label']}")  # fmt: skip
    p = format_p_value(row["p_value"], row["p_is_bound"])
    p_text = f"p {p}" if p.startswith("<") else f"p = {p}"
    context = f"{row['context']}; " if row.get("context") else ""
    return (
        f"{QUANTITIES[q]}{who} {verb} from {_number(q, row['other_value'])} to "
        f"{_number(q, row['value'])} in {row['label']} ({context}ratio {row['ratio']:.2f} vs "
        f"{against}; "
        f"{p_text}, Holm-adjusted {format_p_value(row['p_adjusted'])}): {row['tier'] or 'ok'}"
    )


def _compare(
    key: tuple, other: int, comparison: str, members: dict[tuple, pd.DataFrame],
    values: dict[tuple, dict[str, Any]], config: _Settings, rng: np.random.Generator,
) -> dict[str, Any] | None:  # fmt: skip
    w, q, grouping, group = key
    other_key = (other, q, grouping, group)
    if other_key not in values:
        return None
    mine, theirs = values[key], values[other_key]
    row: dict[str, Any] = {
        "quantity": q, "scope": SCOPES[q], "grouping": grouping, "group": group,
        "comparison": comparison, "window": w, "label": mine["label"], "other_window": other,
        "other_label": theirs["label"], "n_users": mine["n_users"],
        "other_n_users": theirs["n_users"], "value": mine["value"],
        "other_value": theirs["value"], "difference": mine["value"] - theirs["value"],
        "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "p_method": "",
        "p_is_bound": False,
        "p_adjusted": math.nan, "status": "ok", "tier": "", "severity": math.nan, "sentence": "",
    }  # fmt: skip
    row["ratio"] = mine["value"] / theirs["value"] if theirs["value"] else math.nan
    if _INSUFFICIENT in (mine["status"], theirs["status"]):
        row["status"] = _INSUFFICIENT
        return row
    f = _transform(q)
    a1, b1 = members[key]["a"].to_numpy(float), members[key]["b"].to_numpy(float)
    a0, b0 = members[other_key]["a"].to_numpy(float), members[other_key]["b"].to_numpy(float)
    diff = bootstrap_values(a1, b1, f, config.bootstrap, rng) - bootstrap_values(
        a0, b0, f, config.bootstrap, rng
    )
    row["ci_low"], row["ci_high"] = percentile_ci(diff)
    if q in ITEM_QUANTITIES and np.isfinite(row["ratio"]):
        finite = diff[np.isfinite(diff)]
        sd = float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan
        row["p_value"], row["p_method"] = normal_tail(row["difference"], sd), "normal approximation"
        if not np.isfinite(row["p_value"]):
            row["status"] = "not tested"
        return row
    if config.permutations == 0 or not np.isfinite(row["ratio"]):
        row["status"] = "not tested"
        return row
    row["p_method"] = "permutation"
    row["p_value"] = permutation_p(a1, b1, a0, b0, f, config.permutations, rng)
    row["p_is_bound"] = is_floor(row["p_value"], config.permutations)
    row["_test"] = (a1, b1, a0, b0, f)
    return row


def _refine(
    table: pd.DataFrame, family: list[str], tests: dict[Any, tuple], config: _Settings,
    rng: np.random.Generator,
) -> None:  # fmt: skip
    """Refine each Holm family's permutation p-values in place (``refine_permutation_p``).

    ``tests`` maps a row index of ``table`` to its permutation test's arguments ``(a, b,
    a0, b0, transform)``; rows without one (normal approximation, no test) are kept.
    Families are visited in sorted order, their tests in table order, all drawing from
    ``rng``; ``p_is_bound`` is recomputed from the draws behind each refined p.
    """
    for _, index in sorted(table.groupby(family).groups.items()):
        rows = list(index)
        refinable = np.array([r in tests for r in rows], bool)
        if not refinable.any():
            continue

        def redraw(i: int, draws: int, rows: list = rows) -> float:
            return permutation_p(*tests[rows[i]], draws, rng)

        p, draws = refine_permutation_p(
            table.loc[rows, "p_value"].to_numpy(float), config.permutations, config.alpha,
            redraw, refinable,
        )  # fmt: skip
        table.loc[rows, "p_value"] = p
        for r, value, n in zip(rows, p, draws, strict=True):
            if n:
                table.loc[r, "p_is_bound"] = is_floor(float(value), int(n))


def change_table(
    units: pd.DataFrame,
    groupings: dict[str, pd.Series],
    windows: pd.DataFrame,
    values: pd.DataFrame,
    baseline: int,
    config: _Settings,
    context: dict[tuple, str] | None = None,
) -> pd.DataFrame:
    """Return the changes vs the previous window and vs ``baseline`` (module docstring).

    ``context`` maps a (window, quantity, grouping, group) to a few words shown in its
    sentence before the ratio (the catalogue share beside an exposure share).
    """
    rng = np.random.default_rng([config.seed, 1])
    members = _members(units, groupings)
    by_key = {(r["window"], r["quantity"], r["grouping"], r["group"]): r
              for r in values.to_dict("records")}  # fmt: skip
    rows = []
    for key in sorted(by_key):
        w = key[0]
        for comparison, other in (("previous", w - 1), ("baseline", baseline)):
            if other < 0 or (comparison == "baseline" and w <= baseline + 1):
                continue
            row = _compare(key, other, comparison, members, by_key, config, rng)
            if row is not None:
                rows.append(row)
    tests = {i: row.pop("_test") for i, row in enumerate(rows) if "_test" in row}
    table = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
    if table.empty:
        return table
    family = ["quantity", "grouping", "comparison"]
    _refine(table, family, tests, config, np.random.default_rng([config.seed, 1, 1]))
    low, high = config.band
    for _, index in table.groupby(family).groups.items():
        table.loc[index, "p_adjusted"] = holm(table.loc[index, "p_value"].to_numpy(float))
    significant = table["p_adjusted"] < config.alpha
    ratio = table["ratio"].to_numpy(float)
    outside = np.isfinite(ratio) & ((ratio < low) | (ratio > high))
    table["tier"] = np.where(significant & outside, "flagged",
                             np.where(significant, "notable", ""))  # fmt: skip
    table.loc[table["tier"] == "flagged", "status"] = "flagged"
    positive = np.where(np.isfinite(ratio) & (ratio > 0), ratio, np.nan)
    gap = np.minimum(np.abs(np.log(positive)), math.log(100.0))
    gap = np.where(np.isfinite(ratio) & (ratio <= 0), math.log(100.0), gap)
    table["severity"] = np.where(table["tier"] != "", gap * table["n_users"], np.nan)
    context = context or {}
    table["sentence"] = [
        sentence({**r, "context": context.get((r["window"], r["quantity"], r["grouping"],
                                               r["group"]))})
        if r["status"] not in (_INSUFFICIENT, "not tested") else ""
        for r in table.to_dict("records")
    ]  # fmt: skip
    return table
