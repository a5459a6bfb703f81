"""Plain-sentence findings: each flagged or notable audit row said in words, with its numbers.

Findings are about the recommender: rows of ``scope`` ``"model"`` and ``tier``
``"flagged"`` (ratio outside the band, significant after Holm's correction) or
``"notable"`` (significant, inside the band). Data-scope rows (the interaction share:
properties of the ratings) are context, never findings (``engine.report.summary``
says them in "What the data shows"). p-values are written with
``engine.audit.stats.format_p_value``, numbers with ``engine.report.numbers``.

Order (most actionable first): user groups served *worse*, item groups *under-exposed*,
item groups *over-exposed*, user groups served *better*; within each, the largest
deviation from parity (``|log ratio|``) first. How a metric is named, which direction is
better and whether it is a user-group or an item-group (share) metric come from its
``MetricSpec`` (``engine.audit.specs.REGISTRY`` unless another registry is given).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from engine.audit.config import AuditConfig
from engine.audit.registry import MetricSpec, Registry
from engine.audit.rows import NO_INTERVAL, deviation
from engine.audit.specs import REGISTRY
from engine.audit.stats import format_p_value
from engine.report.numbers import count_text, percent_text, ratio_text, value_text

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
    """One disparity: the row's keys, its kind (a key of ``KINDS``), tier and a sentence.

    ``tier`` is ``"flagged"`` or ``"notable"``; ``severity`` is ``|log ratio| x n``
    affected (``engine.report.summary``).
    """

    kind: str
    family: str
    metric: str
    grouping: str
    group: str
    ratio: float
    p_adjusted: float
    sentence: str
    tier: str = "flagged"
    severity: float = math.nan


def format_p(p: float, is_bound: bool = False) -> str:
    """``p = 0.003`` or ``p < 0.0005`` (``format_p_value``); ``p n/a`` without a test."""
    text = format_p_value(p, is_bound)
    if not text:
        return "p n/a"
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _number(value: float) -> str:
    return value_text(value)


def _item_level(metrics: pd.DataFrame, registry: Registry) -> pd.Series:
    """Rows of item-group metrics (shares compared with the catalogue share)."""
    return metrics["metric"].isin([s.key for s in registry.at_level("item group")])


def _sentence(
    row: pd.Series, reference_value: float, catalogue: float, spec: MetricSpec | None
) -> str:
    """Write the finding in words; the group's 95% CI stands next to its value, not its ratio."""
    name = spec.display_name if spec else row["metric"]
    share = spec is not None and spec.level == "item group"  # a share: the interval in % too
    bound = percent_text if share else _number
    with_interval = pd.notna(row["ci_low"]) and pd.notna(row["ci_high"])
    interval = (
        f" (95% CI {bound(row['ci_low'])} to {bound(row['ci_high'])})" if with_interval else ""
    )
    p_text = f"Holm-adjusted {format_p(row['p_adjusted'], bool(row.get('p_is_bound', False)))}"
    stats = p_text if with_interval else f"{NO_INTERVAL}, {p_text}"
    if share:
        return (
            f"{row['grouping']} = {row['group']} receives {percent_text(row['value'])}{interval} "
            f"of the {name}, {ratio_text(row['ratio'])} times its {percent_text(catalogue)} "
            f"share of the catalogue ({row['direction']}; {stats})."
        )
    return (
        f"{name[0].upper() + name[1:]} is {row['direction']} for {row['grouping']} = "
        f"{row['group']}: {_number(row['value'])}{interval} vs {_number(reference_value)} for "
        f"{row['reference_group']} (ratio {ratio_text(row['ratio'])}; {row['better']} is "
        f"better; {stats}; {count_text(row['n_users'])} users)."
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


def in_tier(metrics: pd.DataFrame, tier: str) -> pd.Series:
    """Rows of the recommender (``scope`` model) in ``tier`` (``flagged`` / ``notable``).

    A table without the ``tier`` column (an older audit) has only its ``flag``.
    """
    if "tier" not in metrics:
        chosen = metrics["flag"].astype(bool) if tier == "flagged" else metrics["flag"] & False
    else:
        chosen = metrics["tier"] == tier
    if "scope" in metrics:
        chosen &= metrics["scope"] == "model"
    return chosen


def findings(
    metrics: pd.DataFrame, registry: Registry = REGISTRY, tier: str = "flagged"
) -> list[Finding]:
    """Return a ``Finding`` per row of ``tier`` of the audit's metric table, in reading order.

    ``registry`` holds the specs of the audited metrics (``AuditResult.registry``);
    ``tier`` is ``"flagged"`` or ``"notable"`` (rows of model scope only).
    """
    flagged = metrics[in_tier(metrics, tier)].copy()
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
                tier=tier, severity=float(row.get("severity", math.nan)),
            )
        )  # fmt: skip
    return out


def headline(metrics: pd.DataFrame, accuracy: pd.DataFrame, config: AuditConfig) -> list[str]:
    """Sentences with the audit's totals (about the recommender) and each model's RMSE.

    Counts are of model-scope rows; data-scope rows (properties of the ratings) are
    counted apart as context.
    """
    status = metrics["status"].value_counts()
    model = metrics[metrics["scope"] == "model"] if "scope" in metrics else metrics
    flagged = metrics[in_tier(metrics, "flagged")]
    notable = int(in_tier(metrics, "notable").sum())
    context = int((metrics["scope"] != "model").sum()) if "scope" in metrics else 0
    kinds = flagged["direction"].value_counts()
    tested = int(model["p_adjusted"].notna().sum())
    out = [
        f"The audit compared {model['metric'].nunique()} metrics of the recommender across "
        f"{model[['grouping', 'group']].drop_duplicates().shape[0]} groups in "
        f"{model['grouping'].nunique()} groupings ({count_text(len(model))} rows, "
        f"{count_text(tested)} significance tests at alpha {config.alpha}, Holm-corrected within "
        "each metric and grouping).",
        f"{len(flagged)} {'row is' if len(flagged) == 1 else 'rows are'} flagged (ratio outside "
        f"[{config.band[0]}, {config.band[1]}] and significant): "
        + ", ".join(f"{int(kinds.get(kind, 0))} {KIND_PHRASES[kind]}" for kind in KINDS)
        + f". {notable} more {'is' if notable == 1 else 'are'} notable (significant after "
        "correction, inside the band).",
    ]
    if context:
        out.append(
            f"{count_text(context)} rows describe the ratings themselves, not the recommender "
            "(interaction share of item groups); they are context, never flagged."
        )
    small = int(status.get("insufficient data", 0))
    if small:
        groups = metrics.loc[metrics["status"] == "insufficient data", ["grouping", "group"]]
        n = len(groups.drop_duplicates())
        out.append(
            f"{count_text(n)} {'group has' if n == 1 else 'groups have'} fewer than "
            f"{config.min_group_size} users (a user group) or raters (an item group) and "
            f"{'is' if n == 1 else 'are'} reported as "
            f"insufficient data ({count_text(small)} rows, values withheld)."
        )
    rmse = accuracy[accuracy["metric"] == "rmse"]
    if len(rmse):
        out.append(
            "Out-of-fold RMSE by model: "
            + ", ".join(
                f"{m} {value_text(v)}" for m, v in zip(rmse["model"], rmse["mean"], strict=True)
            )
            + " (lower is better)."
        )
    return out
