"""Plain-sentence findings: each flagged audit row said in words, with its numbers.

Order (most actionable first): user groups served *worse*, item groups *under-exposed*,
item groups *over-exposed*, user groups served *better*; within each, the largest
deviation from parity (``|log ratio|``) first. How a metric is named, which direction is
better and whether it is a user-group or an item-group (share) metric come from its
``MetricSpec`` (``engine.audit.specs.REGISTRY`` unless another registry is given).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.audit.config import AuditConfig
from engine.audit.registry import MetricSpec, Registry
from engine.audit.rows import NO_INTERVAL, deviation
from engine.audit.specs import REGISTRY

KINDS = {
    "worse": "User groups served worse",
    "under-exposed": "Item groups under-exposed",
    "over-exposed": "Item groups over-exposed",
    "better": "User groups served better",
}

KIND_PHRASES = {
    "worse": "where a user group is served worse",
    "under-exposed": "where an item group is under-exposed",
    "over-exposed": "where an item group is over-exposed",
    "better": "where a user group is served better",
}


@dataclass(frozen=True)
class Finding:
    """One flagged disparity: the row's keys, its kind (a key of ``KINDS``) and a sentence."""

    kind: str
    family: str
    metric: str
    grouping: str
    group: str
    ratio: float
    p_adjusted: float
    sentence: str


def format_p(p: float) -> str:
    """``p < 0.0001`` below 1e-4, else ``p = 0.0123``."""
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.4f}"


def _number(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _item_level(metrics: pd.DataFrame, registry: Registry) -> pd.Series:
    """Rows of item-group metrics (shares compared with the catalogue share)."""
    return metrics["metric"].isin([s.key for s in registry.at_level("item group")])


def _sentence(
    row: pd.Series, reference_value: float, catalogue: float, spec: MetricSpec | None
) -> str:
    name = spec.display_name if spec else row["metric"]
    interval = (
        f"95% CI {_number(row['ci_low'])} to {_number(row['ci_high'])}"
        if pd.notna(row["ci_low"]) and pd.notna(row["ci_high"])
        else NO_INTERVAL
    )
    stats = f"{interval}, Holm-adjusted {format_p(row['p_adjusted'])}"
    if spec is not None and spec.level == "item group":
        return (
            f"{row['grouping']} = {row['group']} receives {row['value']:.1%} of the "
            f"{name}, {row['ratio']:.2f} times its {catalogue:.1%} share of the catalogue "
            f"({row['direction']}; {stats})."
        )
    return (
        f"{name[0].upper() + name[1:]} is {row['direction']} for {row['grouping']} = "
        f"{row['group']}: {_number(row['value'])} vs {_number(reference_value)} for "
        f"{row['reference_group']} (ratio {row['ratio']:.2f}; {row['better']} is better; "
        f"{stats}; {row['n_users']:,} users)."
    )


def catalogue_shares(metrics: pd.DataFrame, registry: Registry = REGISTRY) -> pd.Series:
    """Catalogue share of each item group, ``value / ratio`` of its item-group metric rows.

    Indexed by ``(grouping, group)``; taken from any such row with a positive ratio (a
    group that is never recommended still has its interaction-share row).
    """
    rows = metrics[_item_level(metrics, registry) & (metrics["ratio"] > 0)]
    shares = rows["value"] / rows["ratio"]
    index = pd.MultiIndex.from_arrays([rows["grouping"], rows["group"]])
    shares = pd.Series(shares.to_numpy(), index=index)
    return shares[~shares.index.duplicated()]


def findings(metrics: pd.DataFrame, registry: Registry = REGISTRY) -> list[Finding]:
    """Return a ``Finding`` per flagged row of the audit's metric table, in reading order.

    ``registry`` holds the specs of the audited metrics (``AuditResult.registry``).
    """
    flagged = metrics[metrics["flag"].astype(bool)].copy()
    if flagged.empty:
        return []
    reference = metrics[metrics["status"] == "reference"].set_index(["metric", "grouping"])
    catalogue = catalogue_shares(metrics, registry)
    flagged["kind_order"] = flagged["direction"].map({k: i for i, k in enumerate(KINDS)})
    flagged["distance"] = -deviation(flagged["ratio"])  # |log ratio|, inf for ratio <= 0
    flagged = flagged.sort_values(["kind_order", "distance", "metric", "grouping", "group"])
    out = []
    for _, row in flagged.iterrows():
        key = (row["metric"], row["grouping"])
        ref_value = reference["value"].get(key, float("nan"))
        share = catalogue.get((row["grouping"], row["group"]), float("nan"))
        out.append(
            Finding(
                kind=row["direction"], family=row["family"], metric=row["metric"],
                grouping=row["grouping"], group=row["group"], ratio=float(row["ratio"]),
                p_adjusted=float(row["p_adjusted"]),
                sentence=_sentence(row, ref_value, share, registry.get(row["metric"])),
            )
        )  # fmt: skip
    return out


def headline(metrics: pd.DataFrame, accuracy: pd.DataFrame, config: AuditConfig) -> list[str]:
    """Sentences with the audit's totals and each rating model's RMSE."""
    status = metrics["status"].value_counts()
    flagged = metrics[metrics["flag"].astype(bool)]
    kinds = flagged["direction"].value_counts()
    tested = int(metrics["p_adjusted"].notna().sum())
    out = [
        f"The audit compared {metrics['metric'].nunique()} metrics across "
        f"{metrics[['grouping', 'group']].drop_duplicates().shape[0]} groups in "
        f"{metrics['grouping'].nunique()} groupings ({len(metrics):,} rows, {tested:,} "
        f"significance tests, Holm-corrected at alpha {config.alpha}).",
        f"{len(flagged)} rows are flagged (ratio outside [{config.band[0]}, "
        f"{config.band[1]}] and significant): "
        + ", ".join(f"{int(kinds.get(kind, 0))} {KIND_PHRASES[kind]}" for kind in KINDS)
        + ".",
    ]
    small = int(status.get("insufficient data", 0))
    if small:
        groups = metrics.loc[metrics["status"] == "insufficient data", ["grouping", "group"]]
        n = len(groups.drop_duplicates())
        out.append(
            f"{n} {'group has' if n == 1 else 'groups have'} fewer than "
            f"{config.min_group_size} users and {'is' if n == 1 else 'are'} reported as "
            f"insufficient data ({small} rows, values withheld)."
        )
    rmse = accuracy[accuracy["metric"] == "rmse"]
    if len(rmse):
        out.append(
            "Out-of-fold RMSE by model: "
            + ", ".join(f"{m} {v:.4f}" for m, v in zip(rmse["model"], rmse["mean"], strict=True))
            + " (lower is better)."
        )
    return out
