"""The audit: every metric family by every grouping, with statistics, in one ``AuditResult``.

Conventions (also stated in each table's ``definition`` column): the SVD engine is
audited; accuracy uses its out-of-fold predictions (``Evaluation.predictions``); top-N
utility its out-of-fold lists (``Evaluation.user_ranking``); popularity, calibration,
exposure and explanation measures use the top-``k`` lists of the model trained on all
data (what users would see). Statistics are in ``engine.audit.stats``; the tables besides
the metric rows (Yao & Huang, delta-GAP, bias disparity, catalogue) in ``engine.audit.tables``.
The metrics audited are the specs of a ``Registry`` (``engine.audit.specs.REGISTRY``): each
declares its inputs, built once per audit, and its compute function; this module only
loops over them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from engine.audit import tables
from engine.audit.config import ADVISED_RESAMPLES, AuditConfig
from engine.audit.groups import (
    ACTIVITY,
    DERIVED,
    ITEM_POPULARITY,
    PROPENSITY,
    activity_groups,
    attribute_names,
    item_attribute_groups,
    propensity_groups,
    user_attribute_groups,
)
from engine.audit.registry import AuditSources, Parts, Registry, audited
from engine.audit.rows import (
    NO_INTERVAL,
    ROW_COLUMNS,
    STATUSES,
    TIERS,
    adjust,
    classify,
    deviation,
    exposure_rows,
    frame,
    group_rows,
    rater_counts,
)
from engine.audit.specs import REGISTRY
from engine.audit.stats import format_p_value, identity, is_floor, permutation_p
from engine.audit.tables import accuracy_by_model
from engine.data.types import RatingData, RatingScale
from engine.errors import ConfigError
from engine.evaluate import Evaluation, ThresholdSource, resolve_threshold
from engine.model.svd import Progress, TrainedModel

log = logging.getLogger(__name__)

#: Inputs ``run_audit`` reads itself (besides the metrics'): a registry must declare them.
AUDIT_INPUTS = ("lists", "ratings", "popularity", "popularity_groups", "profile", "oof")
#: Item-group metrics true by construction for a grouping: the short head and long tail
#: are defined by their interaction share, so comparing it is no finding.
BY_DEFINITION: dict[str, tuple[str, ...]] = {ITEM_POPULARITY: ("interaction_share",)}
#: Columns a given ``lists`` frame must have (``recommend_all``'s output has them all).
LIST_COLUMNS = ("user_id", "rank", "item_id")
__all__ = [
    "NO_INTERVAL",
    "ROW_COLUMNS",
    "STATUSES",
    "TIERS",
    "AuditResult",
    "accuracy_by_model",
    "deviation",
    "run_audit",
]  # fmt: skip


@dataclass(frozen=True)
class AuditResult:
    """Tidy audit tables.

    Attributes
    ----------
    config
        The settings used, with ``threshold`` resolved to the number applied (never
        ``None``); ``threshold_source`` says where it came from.
    metrics
        One row per (metric, grouping, group) with ``ROW_COLUMNS``: ``scope`` (``model``:
        what the recommender does; ``data``: a property of the ratings, context only),
        the sizes ``n_users`` (user groups), ``n_items`` and ``n_raters`` (item groups)
        and ``n_ratings`` (``Int64``, ``<NA>`` where a count does not apply, see
        ``engine.audit.rows.COUNT_COLUMNS``), ``value`` with its 95% percentile-bootstrap
        interval (NaN when ``config.bootstrap`` is 0: ``NO_INTERVAL``, or without
        variation), the ``reference_group`` and ``ratio`` to it, ``p_value`` with its
        ``p_method`` (``permutation``, ``normal approximation``, ``bootstrap`` or ``""``) and
        ``p_is_bound`` (a p at its floor ``1 / (1 + permutations or bootstrap)``: an upper
        bound), ``p_adjusted`` (Holm within one metric by one grouping), ``flag`` (tier
        ``flagged``), ``tier`` (``TIERS``), ``direction``
        (``worse``/``better``/``under-exposed``...), ``severity`` (``|log ratio|`` x
        users or raters affected) and ``status`` (one of ``STATUSES``). The conventions
        are in ``engine.audit.rows``; display p-values with ``stats.format_p_value``.
        A percentile interval is the 2.5% and 97.5% quantiles of the resampled values;
        it need not contain the point estimate when the resampled distribution is skewed
        or shifted (a ratio of sums, the square root in RMSE, a group dominated by a few
        heavy users) or when there are few replicates, so ``value`` is reported as is and
        the interval is never stretched to cover it.
    catalogue
        Model-level measures: ``metric, grouping, value, definition`` (coverage, Gini,
        PopRSP/PopREO per item grouping, UGF gap...).
    yao
        Yao & Huang unfairness per user group vs the rest: ``grouping, group, value,
        absolute, under, over, non_parity, n_items``.
    delta_gap
        Per popularity-propensity group: ``group, n_users, gap_profile, gap_recommended,
        delta_gap``.
    bias_disparity
        ``grouping, user_group, category, b_input, b_recommended, bias_disparity``.
    hints
        Root-cause hints, one per flagged or notable user-group row (its ``grouping,
        group, metric``), with ``tier`` and ``sentences``: the profile traits that differ
        between the group and the other users (the same for every metric of the group).
    notes
        Sentences about what was merged, renamed, left out, skipped or assumed, and the
        relevance threshold used.
    threshold_source
        ``"given"`` (``AuditConfig.threshold`` was set) or ``"scale"`` (the top quarter of
        the data's rating scale, ``RatingScale.relevance_threshold``).
    relevance_rule
        The rule in words, e.g. ``"relevant = rating >= 4, three quarters of the way up the
        1-5 scale"``.
    attribute_groupings
        ``{"user": {column: grouping}, "item": {column: grouping}}``: the grouping name each
        audited attribute has in ``metrics`` (the column's own name unless it names a
        derived grouping or another attribute, see ``groups.grouping_name``).
    lists
        The top-``k`` lists audited (``recommend_all(model, k)`` with ``k`` =
        ``min(config.k, number of items)``): ``user_id, rank, item_id, prediction,
        raw_prediction, source``, one row per recommended item. The popularity,
        calibration, exposure and explanation measures come from them, and the report's
        most recommended items are counted in them (never recomputed). ``None`` only for a
        result built by hand.
    registry
        The ``Registry`` of metric specs that was audited (``engine.audit.specs.REGISTRY``
        by default): the report's definitions and findings read its specs.
    """

    config: AuditConfig
    metrics: pd.DataFrame
    catalogue: pd.DataFrame
    yao: pd.DataFrame
    delta_gap: pd.DataFrame
    bias_disparity: pd.DataFrame
    hints: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    threshold_source: ThresholdSource = "given"
    relevance_rule: str = ""
    attribute_groupings: dict[str, dict[str, str]] = field(default_factory=dict)
    lists: pd.DataFrame | None = field(default=None, repr=False)
    registry: Registry = field(default=REGISTRY, repr=False)

    def flagged(self) -> pd.DataFrame:
        """Return the flagged rows, largest deviation from the band first.

        The deviation is ``|log ratio|``; a ratio of 0 or below (a group with no exposure,
        a negative fidelity) deviates most.
        """
        rows = self.metrics[self.metrics["flag"]].copy()
        rows["distance"] = deviation(rows["ratio"])
        return rows.sort_values("distance", ascending=False, kind="stable").drop(columns="distance")

    def notable(self) -> pd.DataFrame:
        """Return the notable rows (significant, inside the band), most severe first."""
        rows = self.metrics[self.metrics["tier"] == "notable"]
        return rows.sort_values("severity", ascending=False, kind="stable")


def profile_hints(
    findings: pd.DataFrame,
    user_groupings: dict[str, pd.Series],
    profile: pd.DataFrame,
    config: AuditConfig,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """For each flagged or notable user-group row: which profile traits differ.

    One hint per row, naming that row's metric; the traits of a group are tested once
    and shared by its rows.
    """
    traits = {
        "profile size": ("n_ratings", "ratings per user"),
        "mean item popularity": ("mean_popularity", "ratings of the items they rated"),
        "mean rating": ("mean_rating", "stars"),
    }
    hints, tested = [], {}
    for row in findings.itertuples():
        if row.grouping not in user_groupings:
            continue
        key = (row.grouping, row.group)
        if key not in tested:
            tested[key] = _trait_sentences(
                user_groupings[row.grouping], row.group, profile, traits, config, rng
            )
        hints.append(
            {
                "grouping": row.grouping,
                "group": row.group,
                "metric": row.metric,
                "tier": row.tier,
                "sentences": tested[key] or ["no profile trait differs significantly"],
            }
        )
    return hints


def _trait_sentences(
    labels: pd.Series,
    group: str,
    profile: pd.DataFrame,
    traits: dict[str, tuple[str, str]],
    config: AuditConfig,
    rng: np.random.Generator,
) -> list[str]:
    """Sentences on the profile traits where ``group`` differs (uncorrected permutation)."""
    inside = (labels.reindex(profile.index) == group).to_numpy()
    sentences = []
    for trait, (column, unit) in traits.items():
        a_in, a_out = (
            profile.loc[inside, column].to_numpy(),
            profile.loc[~inside, column].to_numpy(),
        )
        p = permutation_p(a_in, np.ones(len(a_in)), a_out, np.ones(len(a_out)), identity,
                          config.permutations, rng)  # fmt: skip
        if p < config.alpha:
            shown = format_p_value(p, is_floor(p, config.permutations))
            sentences.append(
                f"{trait}: mean {a_in.mean():.2f} vs {a_out.mean():.2f} {unit} for the other "
                f"users (permutation p {'= ' if shown[0] != '<' else ''}{shown}, not corrected)"
            )
    return sentences


def run_audit(
    data: RatingData,
    model: TrainedModel,
    evaluation: Evaluation,
    config: AuditConfig | None = None,
    *,
    progress: Progress | None = None,
    registry: Registry = REGISTRY,
    lists: pd.DataFrame | None = None,
    inputs: dict[str, Any] | None = None,
) -> AuditResult:
    """Audit ``model`` (trained on ``data``) with its ``evaluation`` (see module docstring).

    Every spec of ``registry`` (default: the audit's ``REGISTRY``) is audited: user-group
    specs by every user grouping, item-group specs by every item grouping; each shared
    input a spec names is built once for the whole audit. ``lists`` are the top-``k``
    lists to audit when the caller already has them (exactly ``recommend_all(model, k)``
    with ``k = min(config.k, number of items)``); they are computed otherwise, and kept in
    the result either way. ``inputs`` are other shared inputs already built, by declared
    name (``engine.external`` gives an external system's ``oof`` predictions this way).

    The relevance threshold is resolved once here: ``config.threshold=None`` takes
    ``data.scale.relevance_threshold()``; the result's ``config.threshold`` is the number
    used, ``threshold_source`` and ``relevance_rule`` say where it came from. Nothing is
    left out without a note: attributes without two values, renamed attributes, groupings
    in which no group (or a single one) reaches ``min_group_size``, users without a list,
    metrics without values and settings that switch statistics off.
    """
    config = config or AuditConfig()
    missing = [name for name in AUDIT_INPUTS if name not in registry.inputs]
    if missing:
        raise ConfigError(
            f"The metric registry does not declare the inputs {', '.join(missing)} that the "
            "audit needs: build it over engine.audit.specs.SHARED_INPUTS."
        )
    config, source, rule, notes = audit_threshold(
        config, data.scale, evaluation.evaluation.threshold
    )
    threshold = config.threshold
    rng = np.random.default_rng(config.seed)
    inter = model.interactions
    k = min(config.k, inter.n_items)
    if k < config.k:
        notes.append(
            f"k = {config.k} exceeds the catalogue of {inter.n_items} items; k = {k} used."
        )
    given = dict(inputs or {})
    if lists is not None:
        given["lists"] = _checked_lists(lists, k)
    store = registry.store(AuditSources(data, model, evaluation, config, k), notes, given)
    if progress:
        progress(0.0, "recommending for every user")
    lists = store["lists"]
    ratings = store["ratings"]
    popularity = store["popularity"]
    profile = store["profile"]
    notes += unlisted_notes(profile, lists)

    user_groupings = user_groupings_of(data.users, profile, config, notes)
    item_groupings = item_groupings_of(
        data.items, popularity, store["popularity_groups"], list(user_groupings), config, notes
    )
    names = attribute_groupings(data.users, data.items, user_groupings, item_groupings)

    if progress:
        progress(0.2, "per-user measures")
    parts, events = audited(registry, store)
    rows = user_group_rows(registry, parts, user_groupings, profile, config, rng, progress)
    for grouping, membership in item_groupings.items() if events else ():
        rows += exposure_rows(grouping, membership, events, rater_counts(ratings, membership),
                              config, rng, BY_DEFINITION.get(grouping, ()))  # fmt: skip
        notes += empty_group_notes(grouping, membership)
    table = frame(rows)
    adjust(table)
    classify(table, config, [spec.key for spec, _ in events])
    notes += size_notes(table, list(user_groupings), list(item_groupings), config.min_group_size)
    if len(lists) == 0 and events:
        notes.append(
            "No list holds any item, so exposure shares have no value (status 'no "
            "recommendations'); interaction shares are still compared."
        )

    oof = store["oof"]
    yao = pd.DataFrame(
        [r for g, labels in user_groupings.items()
         for r in tables.yao_rows(g, labels, oof, config.yao_min_ratings, notes)],
        columns=tables.YAO_COLUMNS,
    )  # fmt: skip
    gap = tables.delta_gap(user_groupings[PROPENSITY], lists, profile["mean_popularity"],
                           popularity)  # fmt: skip
    disparity = tables.bias_disparity(user_groupings, item_groupings, ratings, lists)
    catalogue = tables.catalogue(data, lists, item_groupings, evaluation, table, threshold)
    findings = table[table["tier"].isin(["flagged", "notable"])]
    hints = profile_hints(findings, user_groupings, profile, config, rng)
    if progress:
        progress(1.0, "audit done")
    return AuditResult(
        config=config, metrics=table, catalogue=catalogue, yao=yao, delta_gap=gap,
        bias_disparity=disparity, hints=hints, notes=notes, threshold_source=source,
        relevance_rule=rule, attribute_groupings=names, lists=lists, registry=registry,
    )  # fmt: skip


def audit_threshold(
    config: AuditConfig, scale: RatingScale, used: float | None
) -> tuple[AuditConfig, ThresholdSource, str, list[str]]:
    """Resolve the audit's relevance threshold once: ``(config, source, rule, notes)``.

    ``config.threshold=None`` takes ``scale.relevance_threshold()``; the returned config
    holds the number used. ``notes`` start with the rule, say when ``used`` (the
    evaluation's threshold, behind NDCG and Recall) differs, then the settings' notes
    (``_settings_notes``).
    """
    threshold, source, rule, notes = resolve_threshold(config.threshold, scale)
    config = replace(config, threshold=threshold)
    notes = [f"Relevance threshold (PopREO): {rule}.", *notes]
    if used is not None and float(used) != threshold:
        notes.append(
            f"Top-N utility (NDCG, Recall) comes from the evaluation, where relevant = rating "
            f">= {float(used):g}; PopREO uses {threshold:g}: evaluate with the same threshold "
            "to compare them."
        )
    return config, source, rule, notes + _settings_notes(config)


def unlisted_notes(profile: pd.DataFrame, lists: pd.DataFrame) -> list[str]:
    """Return a note when users of ``profile`` have no list (they rated every item)."""
    unlisted = len(profile.index.difference(pd.Index(pd.unique(lists["user_id"]))))
    if not unlisted:
        return []
    return [
        f"{unlisted:,} of {len(profile):,} users have rated every item and get no "
        "recommendation: they are left out of the popularity, calibration, exposure and "
        "explanation measures."
    ]


def empty_group_notes(grouping: str, membership: pd.DataFrame) -> list[str]:
    """Return a note naming the groups of an item grouping that hold no item, if any."""
    empty = [str(g) for g in membership.columns if not membership[g].any()]
    if not empty:
        return []
    verb = "holds" if len(empty) == 1 else "hold"
    return [
        f"{grouping}: {_quoted(empty)} {verb} no item; its exposure rows are insufficient data."
    ]


def user_groupings_of(
    users: pd.DataFrame | None, profile: pd.DataFrame, config: AuditConfig, notes: list[str]
) -> dict[str, pd.Series]:
    """Return the audit's user groupings: ``{grouping: labels}`` (index ``user_id``).

    The attributes of ``users`` chosen by ``config.user_attributes``
    (``groups.user_attribute_groups``, its notes added to ``notes``), then ``activity``
    (``profile["n_ratings"]``) and ``propensity`` (``profile["mean_popularity"]``), over the
    users of ``profile``.
    """
    groupings, attribute_notes = user_attribute_groups(
        users, profile.index.to_numpy(), _listed(config.user_attributes), config.max_groups,
        reserved=DERIVED,
    )  # fmt: skip
    notes += attribute_notes
    groupings[ACTIVITY] = activity_groups(profile["n_ratings"])
    groupings[PROPENSITY] = propensity_groups(profile["mean_popularity"])
    return groupings


def item_groupings_of(
    items: pd.DataFrame | None,
    popularity: pd.Series,
    popularity_groups: pd.DataFrame,
    user_groupings: list[str],
    config: AuditConfig,
    notes: list[str],
) -> dict[str, pd.DataFrame]:
    """Return the audit's item groupings: ``{grouping: membership}`` (index ``item_id``).

    The attributes of ``items`` chosen by ``config.item_attributes`` over the items of
    ``popularity`` (``groups.item_attribute_groups``, renamed away from the derived and
    ``user_groupings``' names, its notes added to ``notes``), then ``item popularity``
    (``popularity_groups``: short head / long tail).
    """
    groupings, attribute_notes = item_attribute_groups(
        items, popularity.index.to_numpy(), _listed(config.item_attributes), config.max_groups,
        reserved={*DERIVED, *user_groupings},
    )  # fmt: skip
    notes += attribute_notes
    groupings[ITEM_POPULARITY] = popularity_groups
    return groupings


def user_group_rows(
    registry: Registry,
    parts: dict[str, Parts],
    groupings: dict[str, pd.Series],
    profile: pd.DataFrame,
    config: AuditConfig,
    rng: np.random.Generator,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """``rows.group_rows`` of every user-group metric's ``parts`` by every grouping.

    Groupings in order, metrics in ``parts``' order within each, drawing from ``rng`` in
    that order (so an audit with the same seed and inputs gives the same rows).
    """
    rows: list[dict[str, Any]] = []
    for n, (grouping, labels) in enumerate(groupings.items()):
        if progress:
            progress(0.3 + 0.5 * n / len(groupings), f"user groups: {grouping}")
        for metric, metric_parts in parts.items():
            rows += group_rows(registry[metric], grouping, labels, metric_parts,
                               profile["n_ratings"], config, rng)  # fmt: skip
    return rows


def _checked_lists(lists: pd.DataFrame, k: int) -> pd.DataFrame:
    """Refuse given lists that cannot be ``recommend_all(model, k)``'s output."""
    missing = [c for c in LIST_COLUMNS if c not in lists]
    if missing or (len(lists) and lists["rank"].max() > k):
        raise ConfigError(
            f"The lists given to run_audit must be recommend_all(model, {k}) output (columns "
            f"{', '.join(LIST_COLUMNS)}, ranks 1 to {k}): "
            + (f"{', '.join(missing)} missing." if missing else "a rank exceeds k.")
        )
    return lists


def _settings_notes(config: AuditConfig) -> list[str]:
    """Return notes on settings that switch statistics off or make them coarse."""
    notes = []
    if config.bootstrap == 0:
        notes.append(
            f"Bootstrap is off (bootstrap = 0): no confidence intervals ({NO_INTERVAL}); "
            "exposure rows, whose p-value comes from the bootstrap, are not tested."
        )
    elif config.bootstrap < ADVISED_RESAMPLES:
        notes.append(
            f"Only {config.bootstrap} bootstrap replicate{'s' if config.bootstrap > 1 else ''}: "
            "the 95% intervals are rough and may even leave out their own estimate; use at "
            f"least {ADVISED_RESAMPLES} (default 200)."
        )
    if config.permutations == 0:
        notes.append(
            "Significance tests are off (permutations = 0): user groups are not tested, so "
            "no user group can be flagged."
        )
    elif config.permutations < ADVISED_RESAMPLES:
        notes.append(
            f"Only {config.permutations} label permutation"
            f"{'s' if config.permutations > 1 else ''}: a p-value is at least "
            f"1/{config.permutations + 1} = {1 / (config.permutations + 1):.3g} (shown as a "
            "bound when no permuted difference reaches the observed one); use at least "
            f"{ADVISED_RESAMPLES} (default 2000)."
        )
    return notes


def size_notes(
    table: pd.DataFrame, user_groupings: list[str], item_groupings: list[str], minimum: int
) -> list[str]:
    """Name the groupings whose groups fall short of ``minimum`` users (or raters).

    User groupings with no group, or a single one, of at least ``minimum`` users (nothing
    or nobody to compare with); user and item groupings with some groups below it (those
    rows are insufficient data: user groups count their users, item groups their raters).
    """
    insufficient = table["status"] == "insufficient data"
    compared = table[table["grouping"].isin(user_groupings) & ~insufficient]
    eligible = compared.groupby("grouping")["group"].nunique()
    none = [g for g in user_groupings if g not in eligible.index]
    single = [g for g in user_groupings if eligible.get(g, 0) == 1]
    notes = []
    if none:
        notes.append(
            f"No group of {_quoted(none)} has at least {minimum} users (the minimum group "
            "size): all its rows are insufficient data and nothing is compared."
        )
    if single:
        notes.append(
            f"In {_quoted(single)} only one group has at least {minimum} users: it is the "
            "reference and no other group is compared with it."
        )
    sized = table[table["grouping"].isin(item_groupings) & ~insufficient]
    rowed, sized_names = set(table["grouping"]), set(sized["grouping"])
    empty = [g for g in item_groupings if g in rowed and g not in sized_names]
    if empty:
        notes.append(
            f"No group of {_quoted(empty)} has items rated by at least {minimum} users (the "
            "minimum group size): all its rows are insufficient data and nothing is compared."
        )
    for kind, groupings, unit in (("user", user_groupings, "users with a value"),
                                  ("item", item_groupings, "raters")):  # fmt: skip
        small = table[insufficient & table["grouping"].isin(groupings)]
        small = small[~small["grouping"].isin([*none, *empty])]
        counts = small.groupby("grouping", sort=False)["group"].unique()
        for grouping, groups in counts.items():
            names = sorted(str(g) for g in groups)
            notes.append(
                f"{grouping}: {len(names)} {kind} group{'s' if len(names) > 1 else ''} "
                f"({_quoted(names[:5])}{', ...' if len(names) > 5 else ''}) "
                f"{'have' if len(names) > 1 else 'has'} fewer than {minimum} {unit} for at "
                "least one metric: insufficient data, never flagged."
            )
    return notes


def _quoted(names: list[str]) -> str:
    return ", ".join(f"'{n}'" for n in names)


def attribute_groupings(
    users: pd.DataFrame | None,
    items: pd.DataFrame | None,
    user_groupings: dict[str, pd.Series],
    item_groupings: dict[str, pd.DataFrame],
) -> dict[str, dict[str, str]]:
    """``{"user": {column: grouping}, "item": {...}}`` for the audited attributes."""
    out: dict[str, dict[str, str]] = {}
    for kind, table, groupings, reserved in (
        ("user", users, user_groupings, DERIVED),
        ("item", items, item_groupings, {*DERIVED, *user_groupings}),
    ):
        names = attribute_names(list(table.columns), kind, reserved) if table is not None else {}
        out[kind] = {str(c): g for c, g in names.items() if g in groupings}
    return out


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)
