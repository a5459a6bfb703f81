"""Compare two versions of a model on the same future window (offline A/B).

``compare_models`` scores versions A and B on a window of later ratings and tests the
paired difference B - A (``engine.compare.paired``) overall and per group, with the
audit's conventions (``engine.audit``).

Population (``engine.compare.measures``): every window rating after both versions'
training data, of a pair neither was trained on. Each version predicts every one of them,
with its model or, for a user or item it has no training rating of, with its fallback
(the evaluation's cold start: the model without the unknown side, clipped), and the
ratings each version predicted by fallback are counted (``n_fallback_a``,
``n_fallback_b``). NDCG@k and exposure use each version's own list, or its fallback list
(most-rated items) for a user it does not know.

Groups (``engine.compare.groups``): user attributes for every user of the population;
activity and popularity propensity from A's training data, with the users A never saw in
the group "new to A"; item attributes, and item popularity from A's training data with
the items A never saw in "new to A", for RMSE (``engine.compare.items``) and exposure; a
group with fewer than ``config.min_group_size`` users (an item group: raters
in the window) is "insufficient data" (no interval, no test); Holm's correction runs
within one (metric, grouping); a row is significant when its Holm-adjusted p-value is
below ``config.alpha``. Rows and verdicts: ``engine.compare.rows``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.audit.config import AuditConfig
from engine.audit.stats import Transform, format_p_value, identity
from engine.charts import OVERLAP_TOLERANCE
from engine.compare.groups import (
    KNOWN_TO,
    KNOWN_TO_GROUPS,
    NEW_TO_A,
    item_groupings,
    user_groupings,
)
from engine.compare.items import item_rmse_rows
from engine.compare.measures import (
    FALLBACKS,
    exposure_values,
    fallback_counts,
    pair_window,
    user_values,
)
from engine.compare.rows import ROW_COLUMNS, group_rows, holm_family
from engine.compare.text import (
    count_text,
    difference_text,
    percent_text,
    points_text,
    shown_values,
    value_text,
)
from engine.compare.versions import Version
from engine.data.types import RatingData, RatingScale
from engine.errors import EngineError
from engine.model.svd import TrainedModel
from engine.report.numbers import missing

OVERALL = "all users"
#: The overall row restricted to the users at least one version knows (its own Holm family).
KNOWN_OVERALL = "users known to A or B"
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
        RMSE per item group, or the item grouping of an exposure row; ``KNOWN_OVERALL``
        for the overall row over the users at least one version knows), ``group``,
        ``n_users`` (an item group's RMSE row: its raters in the window), ``n_pairs``
        (RMSE rows: used window pairs), ``value_a, value_b``
        (ratio of sums over the group's users), ``difference`` = B - A, the paired
        bootstrap 95% interval ``ci_low, ci_high``, the sign-flip ``p_value``
        (``p_is_bound`` at its floor 1/(B+1)), ``p_adjusted`` (Holm within one metric and
        grouping), ``verdict`` (``VERDICTS``) and ``better`` (``"lower"``, ``"higher"``, or
        ``""`` for exposure).
    users
        Per user (index ``user_id``): ``n_pairs, se_a, se_b, fallback_a, fallback_b,
        new_to_a, new_to_b, ndcg_a, ndcg_b`` (``engine.compare.measures.user_values``).
    counts
        Window ratings read and used (``pairs_used``: the population), exclusions by
        reason, ``n_fallback_a`` / ``n_fallback_b`` (population ratings each version
        predicted by its fallback) and ``fallback_a`` / ``fallback_b`` (the same by reason),
        users per metric and how many of them are new to each version, and the users and
        ratings known to A or B (``users_known``, ``pairs_known``) or to neither
        (``users_neither``, ``pairs_neither``).
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

    @property
    def n_fallback_a(self) -> int:
        """Population ratings version A predicted by its fallback (user or item unknown)."""
        return int(self.counts["n_fallback_a"])

    @property
    def n_fallback_b(self) -> int:
        """Population ratings version B predicted by its fallback (user or item unknown)."""
        return int(self.counts["n_fallback_b"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: sentences, counts, notes and settings (rows not included)."""
        keys = ("k", "threshold", "min_group_size", "bootstrap", "permutations", "alpha", "seed")
        return {"sentences": self.sentences, "counts": self.counts, "notes": self.notes,
                "settings": {key: getattr(self.config, key) for key in keys}}  # fmt: skip


def _clause(row: pd.Series) -> str:
    """``0.952 -> 0.941, -0.0110, 95% CI -0.0150 to -0.0070, p < 0.0005`` (``text``).

    Exposure shares in percentages and points (``shown_values``). The Holm-adjusted
    p-value, on which the verdict rests, follows the raw one where they differ (a family
    of several groups): ``p = 0.0085, Holm-adjusted p = 0.042``.
    """
    value_a, value_b, difference, interval = shown_values(
        row.get("metric", ""), row["value_a"], row["value_b"], row["difference"],
        row["ci_low"], row["ci_high"],
    )  # fmt: skip
    parts = [f"{value_a} -> {value_b}", difference]
    if interval:
        parts.append(f"95% CI {interval}")
    p = format_p_value(row["p_value"], bool(row["p_is_bound"]))
    if p:
        parts.append(f"p {p}" if p.startswith("<") else f"p = {p}")
        adjusted = row.get("p_adjusted")
        if not missing(adjusted) and float(adjusted) != float(row["p_value"]):
            parts.append(f"Holm-adjusted p = {format_p_value(float(adjusted), False)}")
    return ", ".join(parts)


def untested_text(row: pd.Series, minimum: int) -> str:
    """``not tested: 21 users, under the minimum of 30`` (an "insufficient data" row)."""
    return f"not tested: {count_text(row['n_users'])} users, under the minimum of {minimum:,}"


def _known_to_sentence(metric: str, block: pd.DataFrame, minimum: int) -> str | None:
    """Say the ``KNOWN_TO`` groups' values, tested or not (``None`` with fewer than 2 groups)."""
    part = block[block["grouping"] == KNOWN_TO]
    if len(part) < 2:
        return None
    order = {g: i for i, g in enumerate(KNOWN_TO_GROUPS.values())}
    part = part.iloc[np.argsort([order.get(g, 9) for g in part["group"]], kind="stable")]
    named = []
    for _, row in part.iterrows():
        values = (f"{value_text(row['value_a'])} -> {value_text(row['value_b'])}, "
                  f"{difference_text(row['difference'])}")  # fmt: skip
        if row["verdict"] == "insufficient data":
            named.append(f"{row['group']} {values} ({untested_text(row, minimum)})")
        else:
            named.append(f"{row['group']} ({count_text(row['n_users'])} users) {_clause(row)}: "
                         f"{row['verdict']}")  # fmt: skip
    sentence = f"{metric} by the versions that know the user: " + "; ".join(named) + "."
    if metric.startswith("NDCG") and "neither" in set(part["group"]):
        sentence += (
            f" Users neither version knows get each version's fallback list (its most-rated "
            f"items), not a model's ranking: their {metric} says how often they rated popular "
            "items in the window, not how well a model serves them."
        )
    return sentence


def _known_overall_sentence(metric: str, row: pd.Series, minimum: int) -> str:
    """Say the overall test over the users at least one version knows (``KNOWN_OVERALL``)."""
    who = f"Over the {count_text(row['n_users'])} users at least one version knows"
    if row["verdict"] == "insufficient data":
        return (f"{who}, {metric} went {value_text(row['value_a'])} -> "
                f"{value_text(row['value_b'])} ({untested_text(row, minimum)}).")  # fmt: skip
    if row["verdict"] in ("improved", "worsened"):
        return f"{who}, B {row['verdict']} {metric} ({_clause(row)})."
    return f"{who}, B made no significant change to {metric} ({_clause(row)})."


def _exposure_sentence(metric: str, groups: pd.DataFrame, block: pd.DataFrame) -> str | None:
    """Significant exposure changes, up to ``MAX_NAMED`` per direction (higher, lower).

    Each group with its catalogue share; ``block`` (the metric's rows) tells whether its
    groups overlap (an item in several: shares add up to more than 100%).
    """
    parts = []
    for direction in ("higher", "lower"):
        chosen = groups[groups["verdict"] == direction]
        if chosen.empty:
            continue
        named = [f"{row['group']} (catalogue {percent_text(row['catalogue_share'])}; "
                 f"{_clause(row)})" for _, row in chosen.head(MAX_NAMED).iterrows()]  # fmt: skip
        more = f", and {len(chosen) - MAX_NAMED} more" if len(chosen) > MAX_NAMED else ""
        lead = f"{direction} for {len(chosen)} groups: " if len(chosen) > 1 else f"{direction} for "
        parts.append(lead + "; ".join(named) + more)
    if not parts:
        return None
    overlap = float(block.drop_duplicates("group")["catalogue_share"].sum()) > OVERLAP_TOLERANCE
    note = " (an item counts in each of its groups, so the shares add up to more than 100%)"
    return f"B's {metric} share{note * overlap} was " + "; ".join(parts) + "."


def overlap_note(grouping: str, total: float) -> str:
    """Return the note of an item grouping whose groups overlap (the audit chart's wording)."""
    return (
        f"exposure: {grouping}: groups overlap (an item can be in several): an item counts in "
        f"each of its groups, so catalogue shares add up to {total:.2f}, and a list's exposure "
        "shares can add up to more than 100% too; compare each group's share with its "
        "catalogue share."
    )


def exposure_sources(
    share_a: pd.DataFrame, share_b: pd.DataFrame, known_to: pd.Series
) -> pd.DataFrame:
    """Each ``KNOWN_TO`` group's part of each item group's exposure difference B - A.

    ``share_a``, ``share_b``: users x item groups (``exposure_values``; NaN = no list,
    counted as 0 as in the rows); ``known_to``: each user's ``KNOWN_TO`` group. The part of
    group ``g`` is ``sum over its users of (b_u - a_u) / N``, ``N`` all listed users, so the
    parts add up to the row's difference. Returns ``KNOWN_TO`` groups x item groups, with
    the users per ``KNOWN_TO`` group in the column ``n_users``.
    """
    diff = share_b.fillna(0.0) - share_a.fillna(0.0)
    parts = diff.groupby(known_to.reindex(diff.index).to_numpy()).sum() / max(len(diff), 1)
    parts["n_users"] = known_to.reindex(diff.index).value_counts().reindex(parts.index)
    return parts


def exposure_sources_sentence(
    metric: str, groups: pd.DataFrame, sources: pd.DataFrame | None
) -> str | None:
    """Say where the significant exposure changes of ``metric`` come from (``None``: nothing).

    ``groups``: the metric's significant rows, largest difference first; ``sources``:
    ``exposure_sources`` of its item grouping. Only with users in more than one ``KNOWN_TO``
    group: the change a version's fallback list or its newly known users make is then told
    apart from the change for the users both know.
    """
    if sources is None or len(sources) < 2 or groups.empty:
        return None
    order = [g for g in KNOWN_TO_GROUPS.values() if g in sources.index]
    sizes = ", ".join(f"{g} {count_text(sources.at[g, 'n_users'])}" for g in order)
    named = []
    for _, row in groups.head(2 * MAX_NAMED).iterrows():
        by = ", ".join(f"{g} {100 * sources.at[g, row['group']]:+.1f}" for g in order)
        named.append(f"{row['group']} {points_text(row['difference'])} = {by}")
    return (f"Where the {metric} changes come from, by the versions that know the user "
            f"(users: {sizes}; each group's part of the difference in points, adding up to it "
            "before rounding): " + "; ".join(named) + ".")  # fmt: skip


def summary_sentences(
    rows: pd.DataFrame,
    min_group_size: int | None = None,
    sources: dict[str, pd.DataFrame] | None = None,
) -> list[str]:
    """One sentence per rated metric, and per item grouping whose exposure changed.

    E.g. "B improved RMSE overall (0.952 -> 0.941, -0.0110, 95% CI -0.0150 to -0.0070,
    p < 0.0005) but worsened it for age = 56+ (...)." Group findings are the significant
    group rows (after Holm), the largest differences first, ``MAX_NAMED`` of them named
    (exposure: ``MAX_NAMED`` per direction, "higher" then "lower"). A rated metric with a
    ``KNOWN_OVERALL`` row adds its sentence, and one with ``KNOWN_TO`` groups adds their
    values, tested or not ("not tested: 21 users, under the minimum of 30"), and for NDCG
    says that the users neither version knows are ranked by the fallback, not a model.
    ``min_group_size``: the minimum named there (default ``AuditConfig``'s). ``sources``:
    ``exposure_sources`` per item grouping, said after its exposure sentence.
    """
    minimum = AuditConfig().min_group_size if min_group_size is None else min_group_size
    sentences = []
    for metric, block in rows.groupby("metric", sort=False):
        overall = block[block["grouping"] == OVERALL]
        found = block["verdict"].isin(["improved", "worsened", "higher", "lower"])
        groups = block[~block["grouping"].isin([OVERALL, KNOWN_OVERALL]) & found]
        groups = groups.reindex(groups["difference"].abs().sort_values(ascending=False).index)
        if metric.startswith("exposure"):
            grouping = str(block["grouping"].iloc[0])
            for sentence in (_exposure_sentence(metric, groups, block),
                             exposure_sources_sentence(metric, groups,
                                                       (sources or {}).get(grouping))):  # fmt: skip
                if sentence:
                    sentences.append(sentence)
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
        else:
            opposite = verdict in ("improved", "worsened") and any(
                row["verdict"] != verdict for _, row in groups.iterrows()
            )
            more = (f", and in {len(groups) - MAX_NAMED} more groups"
                    if len(groups) > MAX_NAMED else "")  # fmt: skip
            joiner = " but " if opposite else "; by group, it "
            sentences.append(start + joiner + "; ".join(named) + more + ".")
        known = block[block["grouping"] == KNOWN_OVERALL]
        if len(known):
            sentences.append(_known_overall_sentence(metric, known.iloc[0], minimum))
        by_known = _known_to_sentence(metric, block, minimum)
        if by_known:
            sentences.append(by_known)
    return sentences


def population_sentence(users: pd.DataFrame) -> str | None:
    """How many window users and ratings can differ at all (known to A or B) and how many not.

    ``users``: ``Comparison.users``. ``None`` when every user is known to a version. A
    user neither version knows is predicted by both versions' fallbacks and gets both
    fallback lists; where the fallbacks agree (e.g. an update that keeps the global mean
    and the item side), their difference is 0 by construction and only dilutes the
    overall difference.
    """
    neither = users["new_to_a"].astype(bool) & users["new_to_b"].astype(bool)
    if not neither.any():
        return None
    ratings = users["n_pairs"].fillna(0)
    n_same = int((users["se_a"].sub(users["se_b"]).abs().le(1e-12) & neither).sum())
    total = float(ratings.sum())
    if n_same == int(neither.sum()):
        how = (f"the same squared errors for all {count_text(n_same)}, an RMSE difference of 0; "
               "their lists follow each version's fallback list, which can differ")  # fmt: skip
    elif n_same == 0:
        how = ("the fallbacks differ, e.g. other training data or another engine, so these "
               "users differ too, though not by anything a version learned of them")  # fmt: skip
    else:
        how = (f"the same squared errors for {count_text(n_same)} of them, an RMSE difference "
               "of 0; the others differ by the fallbacks")  # fmt: skip
    return (
        f"Of {count_text(total)} window ratings, {count_text(ratings[~neither].sum())} (from "
        f"{count_text((~neither).sum())} users) are of users at least one version knows: "
        f"only they can differ by what a version learned. {count_text(ratings[neither].sum())} "
        f"(from {count_text(neither.sum())} users) are of users neither version knows, "
        f"predicted by both versions' fallbacks ({how}); the overall rows include them, the "
        f"rows '{KNOWN_OVERALL}' leave them out."
    )


#: How a fallback reason reads in the summary ("8,508 of users it had not seen").
_REASON_WORDS = dict(zip(FALLBACKS, ("users it had not seen", "items it had not seen",
                                     "both user and item unseen"), strict=True))  # fmt: skip


def fallback_sentence(counts: dict[str, Any]) -> str:
    """How many window ratings each version predicted by its fallback, and why.

    E.g. "A predicted 8,656 of 10,000 window ratings by its fallback (8,582 of users it
    had not seen, 74 of items it had not seen); B 0."
    """
    total, a, b = counts["pairs_used"], counts["n_fallback_a"], counts["n_fallback_b"]
    if a == b == 0:
        return (f"Both versions predicted all {total:,} window ratings with their model "
                "(each had a training rating of every user and item): no fallback.")  # fmt: skip

    def why(version: str) -> str:
        parts = [f"{n:,} of {_REASON_WORDS[r]}" for r, n in counts[f"fallback_{version}"].items()
                 if n]  # fmt: skip
        return f" ({', '.join(parts)})" if parts else ""

    return (f"A predicted {a:,} of {total:,} window ratings by its fallback{why('a')}; "
            f"B {b:,}{why('b')}.")  # fmt: skip


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
        Different rating scales, or no window rating after both versions' training data
        of a pair neither was trained on.
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
            f"No rating of the window ({len(frame):,} rows) can be compared "
            f"({reasons or 'empty window'}): use ratings given after both versions' "
            "training data, of pairs neither version was trained on."
        )
    table, lists = user_values(model_a, model_b, pairs, config.k)
    by_user, notes = user_groupings(model_a, users, table, config)
    by_item, item_notes = item_groupings(model_a, model_b, items, pairs.used["item_id"], config)
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
        known = ~(table["new_to_a"] & table["new_to_b"]).reindex(parts[2].index).astype(bool)
        if not known.all() and known.any():  # users neither version knows dilute "all users"
            subset = pd.Series(KNOWN_OVERALL, index=parts[2].index[known.to_numpy()])
            rows += group_rows(metric, KNOWN_OVERALL, subset, parts, transform, better, config,
                               n_pairs)  # fmt: skip
        for grouping, labels in by_user.items():
            rows += group_rows(metric, grouping, labels, parts, transform, better, config, n_pairs)
        if metric == "RMSE":
            rows += item_rmse_rows(pairs.used, by_item, config)
    listed_users = table.index
    ones = pd.Series(1.0, index=listed_users)
    overlaps: list[str] = []
    known_to = pd.Series([KNOWN_TO_GROUPS[bool(a), bool(b)] for a, b in zip(
        table["new_to_a"], table["new_to_b"], strict=True)], index=listed_users)  # fmt: skip
    sources: dict[str, pd.DataFrame] = {}
    for grouping, membership in by_item.items():
        share_a = exposure_values(lists["A"], membership, listed_users)
        share_b = exposure_values(lists["B"], membership, listed_users)
        sources[grouping] = exposure_sources(share_a, share_b, known_to)
        block: list[dict[str, Any]] = []
        catalogue = membership.astype(bool).mean()  # share of the grouping's items
        for group in membership.columns:
            labels = pd.Series(str(group), index=listed_users)
            parts = (share_a[group].fillna(0.0), share_b[group].fillna(0.0), ones)
            added = group_rows(f"exposure: {grouping}", grouping, labels, parts, identity, "",
                               config, seed_key=f"\x00{group}")  # fmt: skip
            for row in added:
                row["catalogue_share"] = float(catalogue[group])
            block += added
        rows += holm_family(block, config.alpha)  # one item grouping's groups: one family
        total = float(catalogue.sum())
        if total > OVERLAP_TOLERANCE:
            overlaps.append(overlap_note(grouping, total))
    result = pd.DataFrame(rows, columns=ROW_COLUMNS)
    result["n_users"] = result["n_users"].astype("Int64")
    result["n_pairs"] = result["n_pairs"].astype("Int64")
    fallback_a, fallback_b = fallback_counts(pairs.used, "a"), fallback_counts(pairs.used, "b")
    neither = (table["new_to_a"] & table["new_to_b"]).astype(bool)
    counts = {
        "window_ratings": len(frame), "pairs_used": len(pairs.used),
        "pairs_excluded": pairs.excluded,
        "n_fallback_a": sum(fallback_a.values()), "n_fallback_b": sum(fallback_b.values()),
        "fallback_a": fallback_a, "fallback_b": fallback_b,
        "users_rmse": len(rated), "users_new_to_a": int(table["new_to_a"].sum()),
        "users_new_to_b": int(table["new_to_b"].sum()), "users_ndcg": len(ranked),
        "users_ndcg_fallback_a": int(ranked["new_to_a"].sum()),
        "users_ndcg_fallback_b": int(ranked["new_to_b"].sum()),
        "users_exposure": len(listed_users), "relevance_threshold": threshold,
        "users_known": int((~neither).sum()), "pairs_known": int(table["n_pairs"][~neither].sum()),
        "users_neither": int(neither.sum()), "pairs_neither": int(table["n_pairs"][neither].sum()),
    }  # fmt: skip
    notes += [
        "RMSE is over every window rating given after both versions' training data, of a "
        "pair neither was trained on: each version predicts it with its model or, for a "
        "user or item it has no training rating of, with its fallback (the model without "
        "the unknown side, as in the evaluation's cold start), clipped to the scale. NDCG@k "
        "and exposure use each version's own top-k list, excluding what the user rated in "
        "that version's training data, or its fallback list (its most-rated items) for a "
        "user it has no training rating of.",
        f"Activity and popularity propensity come from A's training data: users A has no "
        f"training rating of form their group '{NEW_TO_A}'; item popularity likewise puts "
        f"the items A has no training rating of in '{NEW_TO_A}'. User and item attributes "
        f"group every user and item. '{KNOWN_TO}' groups the users by the versions that have "
        "a training rating of them: A and B, B only (e.g. folded in by an update), A only, "
        "neither.",
        "Differences are B - A; 95% intervals by a paired bootstrap over users; p-values by "
        "a paired permutation test (A and B swapped per user), Holm-corrected within one "
        "metric and grouping.",
        f"Users neither version knows are predicted by both versions' fallbacks: where the "
        f"fallbacks agree (e.g. an update keeps the global mean and the item side) their "
        f"difference is 0 by construction, and they dilute the overall difference. When there "
        f"are such users, RMSE and NDCG@k have a second overall row, '{KNOWN_OVERALL}': the "
        "same paired test over the users at least one version knows (a Holm family of its "
        f"own). '{KNOWN_TO}' groups under the minimum size are not tested, but their values "
        "are given in the summary.",
    ]
    notes += overlaps
    if by_item:
        n_items = len(next(iter(by_item.values())))
        notes.append(
            f"A catalogue share is the share of the {n_items:,} items A, B or the window have "
            "(their union, so that items new to A are grouped too); the Data page and the audit "
            "count one analysis's items, so their shares can differ slightly."
        )
    if trained_until is None:
        notes.append("Training timestamps are unknown: the window was not checked to lie "
                     "after the training data.")  # fmt: skip
    population = population_sentence(table)
    sentences = [fallback_sentence(counts), *([population] if population else []),
                 *summary_sentences(result, config.min_group_size, sources)]  # fmt: skip
    return Comparison(result, table, counts, sentences, notes, config)


def _attributes(a: pd.DataFrame | None, b: pd.DataFrame | None) -> pd.DataFrame | None:
    """A's attribute table, with B's rows of ids A's lacks when both have the same columns."""
    if a is None or b is None:
        return a if a is not None else b
    if list(a.columns) != list(b.columns):
        return a
    extra = b[~b.index.isin(a.index)]
    return a if extra.empty else pd.concat([a, extra])


def compare_versions(
    version_a: Version, version_b: Version, window: RatingData, config: AuditConfig
) -> Comparison:
    """``compare_models`` of two versions' models, with A's attribute tables (else B's).

    When both have a table with the same columns, B's rows of users (items) A's table
    lacks are added, so users new to A are grouped by their attributes.

    Window ratings at or before the latest training timestamp of either version are
    excluded when both have timestamps.
    """
    stamps = [version_a.last_timestamp, version_b.last_timestamp]
    until = None if None in stamps else max(s for s in stamps if s is not None)
    users = _attributes(version_a.users, version_b.users)
    items = _attributes(version_a.items, version_b.items)
    return compare_models(version_a.model, version_b.model, window, config,
                          users=users, items=items, trained_until=until)  # fmt: skip
