"""Compare two versions of a model on the same future window (offline A/B).

``compare_models`` scores versions A and B on a window of later ratings
(``engine.compare.measures``) and tests the paired difference B - A
(``engine.compare.paired``) overall and per group, with the audit's conventions
(``engine.audit``): user groups are the audit's (every user attribute, activity and
popularity propensity, from A's training data); item groups (every item attribute and
item popularity, from A's training data) for RMSE (``engine.compare.items``) and
exposure; a group with fewer than ``config.min_group_size`` users (an item group: raters
in the window) is "insufficient data" (no interval, no test); Holm's correction runs
within one (metric, grouping); a row is significant when its Holm-adjusted p-value is
below ``config.alpha``. Rows and verdicts: ``engine.compare.rows``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis import Analysis
from engine.audit.config import AuditConfig
from engine.audit.groups import (
    ACTIVITY,
    DERIVED,
    ITEM_POPULARITY,
    PROPENSITY,
    activity_groups,
    item_attribute_groups,
    item_popularity_groups,
    propensity_groups,
    user_attribute_groups,
)
from engine.audit.stats import Transform, format_p_value, identity
from engine.compare.items import item_rmse_rows
from engine.compare.measures import exposure_values, pair_window, user_values
from engine.compare.rows import ROW_COLUMNS, group_rows, holm_family
from engine.data.types import RatingData, RatingScale
from engine.errors import EngineError
from engine.model.svd import TrainedModel

OVERALL = "all users"
#: Metric name -> (better direction, transform); exposure rows are named per item grouping.
METRICS: dict[str, tuple[str, Transform]] = {
    "RMSE": ("lower", np.sqrt),
    "NDCG": ("higher", identity),
}
#: Group findings named in a summary sentence before "and N more".
MAX_NAMED = 4


class CompareError(EngineError):
    """Two versions that cannot be compared on the given window."""


@dataclass(frozen=True)
class Comparison:
    """Versions A and B scored on one window.

    Attributes
    ----------
    rows
        One row per (metric, grouping, group), columns ``ROW_COLUMNS``: ``metric``
        (``"RMSE"``, ``"NDCG@k"``, ``"exposure: <item grouping>"``), ``grouping``
        (``"all users"`` for the overall row, a user grouping, ``"item <grouping>"`` for
        RMSE per item group, or the item grouping of an exposure row), ``group``,
        ``n_users`` (an item group's RMSE row: its raters in the window), ``n_pairs``
        (RMSE rows: used window pairs), ``value_a, value_b``
        (ratio of sums over the group's users), ``difference`` = B - A, the paired
        bootstrap 95% interval ``ci_low, ci_high``, the sign-flip ``p_value``
        (``p_is_bound`` at its floor 1/(B+1)), ``p_adjusted`` (Holm within one metric and
        grouping), ``verdict`` (``VERDICTS``) and ``better`` (``"lower"``, ``"higher"``, or
        ``""`` for exposure).
    users
        Per user (index ``user_id``): ``n_pairs, se_a, se_b, ndcg_a, ndcg_b``.
    counts
        Window ratings read and used, users used per metric, and exclusions by reason.
    sentences
        One summary sentence per metric (and per item grouping with a significant change).
    notes
        Conventions and anything left out.
    """

    rows: pd.DataFrame
    users: pd.DataFrame
    counts: dict[str, Any]
    sentences: list[str]
    notes: list[str] = field(default_factory=list)
    config: AuditConfig = field(default_factory=AuditConfig)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: sentences, counts, notes and settings (rows not included)."""
        keys = ("k", "threshold", "min_group_size", "bootstrap", "permutations", "alpha", "seed")
        return {"sentences": self.sentences, "counts": self.counts, "notes": self.notes,
                "settings": {key: getattr(self.config, key) for key in keys}}  # fmt: skip


def _user_groupings(
    model_a: TrainedModel, users_table: pd.DataFrame | None, config: AuditConfig
) -> tuple[dict[str, pd.Series], list[str]]:
    """Return the audit's user groupings of A's training users (attributes, derived)."""
    inter = model_a.interactions
    ids = pd.Index(inter.user_ids, name="user_id", dtype=object)
    counts = inter.counts_per_item()
    sizes = pd.Series(inter.counts_per_user(), index=ids, dtype=float)
    mean_pop = pd.Series(np.bincount(inter.rows(), weights=counts[inter.items],
                                     minlength=inter.n_users), index=ids) / sizes  # fmt: skip
    attributes = None if config.user_attributes is None else list(config.user_attributes)
    groupings, notes = user_attribute_groups(
        users_table, inter.user_ids, attributes, config.max_groups, reserved=DERIVED
    )
    groupings = {name: s.set_axis(ids) for name, s in groupings.items()}
    groupings[ACTIVITY] = activity_groups(sizes)
    groupings[PROPENSITY] = propensity_groups(mean_pop)
    return groupings, notes


def _item_groupings(
    model_a: TrainedModel, items_table: pd.DataFrame | None, config: AuditConfig
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Item groupings over A's items: attributes and item popularity (A's training counts)."""
    inter = model_a.interactions
    attributes = None if config.item_attributes is None else list(config.item_attributes)
    groupings, notes = item_attribute_groups(
        items_table, inter.item_ids, attributes, config.max_groups, reserved=DERIVED
    )
    counts = pd.Series(inter.counts_per_item(), index=pd.Index(inter.item_ids, dtype=object))
    groupings[ITEM_POPULARITY] = item_popularity_groups(counts)
    return {n: g.set_axis(g.index.astype(object)) for n, g in groupings.items()}, notes


def _clause(row: pd.Series) -> str:
    """``0.952 -> 0.941, -0.011, 95% CI -0.015 to -0.007, p < 0.0005``."""
    parts = [f"{row['value_a']:.3f} -> {row['value_b']:.3f}", f"{row['difference']:+.3f}"]
    if np.isfinite(row["ci_low"]):
        parts.append(f"95% CI {row['ci_low']:+.3f} to {row['ci_high']:+.3f}")
    p = format_p_value(row["p_value"], bool(row["p_is_bound"]))
    if p:
        parts.append(f"p {p}" if p.startswith("<") else f"p = {p}")
    return ", ".join(parts)


def summary_sentences(rows: pd.DataFrame) -> list[str]:
    """One sentence per rated metric, and per item grouping whose exposure changed.

    E.g. "B improved RMSE overall (0.952 -> 0.941, -0.011, 95% CI -0.015 to -0.007,
    p < 0.0005) but worsened it for age = 56+ (...)." Group findings are the significant
    group rows (after Holm), the largest differences first, ``MAX_NAMED`` of them named.
    """
    sentences = []
    for metric, block in rows.groupby("metric", sort=False):
        overall = block[block["grouping"] == OVERALL]
        found = block["verdict"].isin(["improved", "worsened", "higher", "lower"])
        groups = block[(block["grouping"] != OVERALL) & found]
        groups = groups.reindex(groups["difference"].abs().sort_values(ascending=False).index)
        if metric.startswith("exposure"):
            if groups.empty:
                continue
            named = [f"{row['verdict']} for {row['group']} ({_clause(row)})"
                     for _, row in groups.head(MAX_NAMED).iterrows()]  # fmt: skip
            more = f", and {len(groups) - MAX_NAMED} more" if len(groups) > MAX_NAMED else ""
            sentences.append(f"B's {metric} share was " + "; ".join(named) + more + ".")
            continue
        head = overall.iloc[0] if len(overall) else None
        if head is None:
            continue
        verdict = head["verdict"]
        if verdict in ("improved", "worsened"):
            start = f"B {verdict} {metric} overall ({_clause(head)})"
        elif verdict == "insufficient data":
            start = f"{metric}: too few users overall to test ({head['n_users']})"
        else:
            start = f"B made no significant change to {metric} overall ({_clause(head)})"
        named = [f"{row['verdict']} it for {row['grouping']} = {row['group']} ({_clause(row)})"
                 for _, row in groups.head(MAX_NAMED).iterrows()]  # fmt: skip
        if not named:
            sentences.append(start + ", and in no group significantly.")
            continue
        opposite = verdict in ("improved", "worsened") and any(
            row["verdict"] != verdict for _, row in groups.iterrows()
        )
        more = f", and in {len(groups) - MAX_NAMED} more groups" if len(groups) > MAX_NAMED else ""
        joiner = " but " if opposite else "; by group, it "
        sentences.append(start + joiner + "; ".join(named) + more + ".")
    return sentences


def _window_frame(window: RatingData | pd.DataFrame) -> pd.DataFrame:
    return window.ratings if isinstance(window, RatingData) else window


def compare_models(
    model_a: TrainedModel,
    model_b: TrainedModel,
    window: RatingData | pd.DataFrame,
    config: AuditConfig | None = None,
    *,
    users: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    trained_until: float | None = None,
) -> Comparison:
    """Score versions A and B on ``window`` and test B - A overall and per group.

    Parameters
    ----------
    model_a, model_b
        The two versions (e.g. a saved analysis and its ``update``); same rating scale.
    window
        Ratings given after both versions' training data (``RatingData`` or a frame with
        ``user_id, item_id, rating`` and optionally ``timestamp``).
    config
        ``k``, ``threshold`` (None: the scale's top quarter), ``min_group_size``,
        ``bootstrap``, ``permutations``, ``alpha``, ``max_groups``, ``seed`` and the
        attributes to group by, as in the audit.
    users, items
        Attribute tables (index ``user_id`` / ``item_id``) for the groupings.
    trained_until
        Latest training timestamp of either version (window ratings at or before it are
        excluded); None when unknown.

    Raises
    ------
    CompareError
        Different rating scales, or no window pair both versions can score.
    """
    config = AuditConfig() if config is None else config
    if tuple(model_a.scale) != tuple(model_b.scale):
        raise CompareError(
            f"The versions use different rating scales ({model_a.scale[0]:g}-"
            f"{model_a.scale[1]:g} and {model_b.scale[0]:g}-{model_b.scale[1]:g}): compare "
            "versions trained on the same scale."
        )
    low, high = model_a.scale
    given = RatingScale(low, high, None, "given")
    scale = window.scale if isinstance(window, RatingData) else given
    threshold = scale.relevance_threshold() if config.threshold is None else config.threshold
    frame = _window_frame(window)
    pairs = pair_window(model_a, model_b, frame, threshold, trained_until)
    if pairs.used.empty:
        reasons = ", ".join(f"{n:,} {r}" for r, n in pairs.excluded.items() if n)
        raise CompareError(
            f"No rating of the window ({len(frame):,} rows) is a pair both versions can "
            f"score ({reasons or 'empty window'}): use ratings of users and items both "
            "versions know, given after their training data."
        )
    table, lists = user_values(model_a, model_b, pairs, config.k)
    user_groupings, notes = _user_groupings(model_a, users, config)
    item_groupings, item_notes = _item_groupings(model_a, items, config)
    notes += item_notes
    rated = table[table["n_pairs"] > 0]
    ranked = table[table["ndcg_a"].notna()]
    ndcg = f"NDCG@{config.k}"
    measured = {
        "RMSE": ((rated["se_a"], rated["se_b"], rated["n_pairs"]), rated["n_pairs"]),
        ndcg: ((ranked["ndcg_a"], ranked["ndcg_b"], pd.Series(1.0, index=ranked.index)), None),
    }
    rows: list[dict[str, Any]] = []
    for metric, (parts, n_pairs) in measured.items():
        better, transform = METRICS[metric.split("@")[0]]
        everyone = pd.Series(OVERALL, index=parts[2].index)
        rows += group_rows(metric, OVERALL, everyone, parts, transform, better, config, n_pairs)
        for grouping, labels in user_groupings.items():
            rows += group_rows(metric, grouping, labels, parts, transform, better, config, n_pairs)
        if metric == "RMSE":
            rows += item_rmse_rows(pairs.used, item_groupings, config)
    listed_users = table.index
    ones = pd.Series(1.0, index=listed_users)
    for grouping, membership in item_groupings.items():
        share_a = exposure_values(lists["A"], membership, listed_users)
        share_b = exposure_values(lists["B"], membership, listed_users)
        block: list[dict[str, Any]] = []
        for group in membership.columns:
            labels = pd.Series(str(group), index=listed_users)
            parts = (share_a[group].fillna(0.0), share_b[group].fillna(0.0), ones)
            block += group_rows(f"exposure: {grouping}", grouping, labels, parts, identity, "",
                                config, seed_key=f"\x00{group}")  # fmt: skip
        rows += holm_family(block, config.alpha)  # one item grouping's groups: one family
    result = pd.DataFrame(rows, columns=ROW_COLUMNS)
    result["n_users"] = result["n_users"].astype("Int64")
    result["n_pairs"] = result["n_pairs"].astype("Int64")
    counts = {
        "window_ratings": len(frame), "pairs_used": len(pairs.used),
        "pairs_excluded": pairs.excluded, "users_rmse": len(rated), "users_ndcg": len(ranked),
        "users_exposure": len(listed_users), "relevance_threshold": threshold,
    }  # fmt: skip
    notes += [
        "RMSE compares the window pairs both versions can score (user and item known to "
        "both, pair in neither training set); NDCG@k and exposure use each version's own "
        "top-k list, excluding what the user rated in that version's training data.",
        "Differences are B - A; 95% intervals by a paired bootstrap over users; p-values by "
        "a paired permutation test (A and B swapped per user), Holm-corrected within one "
        "metric and grouping.",
    ]
    if trained_until is None:
        notes.append("Training timestamps are unknown: the window was not checked to lie "
                     "after the training data.")  # fmt: skip
    return Comparison(result, table, counts, summary_sentences(result), notes, config)


def _last_timestamp(data: RatingData) -> float | None:
    """Latest rating timestamp of ``data`` (None without timestamps)."""
    if "timestamp" not in data.ratings.columns:
        return None
    stamps = pd.to_numeric(data.ratings["timestamp"], errors="coerce")
    return float(stamps.max()) if stamps.notna().any() else None


def compare_analyses(
    analysis_a: Analysis, analysis_b: Analysis, window: RatingData, config: AuditConfig
) -> Comparison:
    """``compare_models`` of two analyses' models, with A's attribute tables (else B's).

    Window ratings at or before the latest training timestamp of either analysis are
    excluded when both have timestamps.
    """
    data_a, data_b = analysis_a.data, analysis_b.data
    if (data_a.scale.low, data_a.scale.high) != (data_b.scale.low, data_b.scale.high):
        raise CompareError(
            f"The analyses use different rating scales ({data_a.scale.low:g}-"
            f"{data_a.scale.high:g} and {data_b.scale.low:g}-{data_b.scale.high:g}): "
            "compare versions trained on the same scale."
        )
    stamps = [_last_timestamp(data_a), _last_timestamp(data_b)]
    until = None if None in stamps else max(s for s in stamps if s is not None)
    users = data_a.users if data_a.users is not None else data_b.users
    items = data_a.items if data_a.items is not None else data_b.items
    return compare_models(analysis_a.model, analysis_b.model, window, config,
                          users=users, items=items, trained_until=until)  # fmt: skip
