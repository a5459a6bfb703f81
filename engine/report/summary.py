r"""Executive summary: the few findings about the recommender that matter most, in words.

An item of the summary is one of

- a *disparity* of the recommender: the audit rows of tier ``flagged`` (ratio to the
  reference outside the band and significant after Holm's correction) or ``notable``
  (significant after correction, inside the band) of ``scope`` ``"model"``; the rows of
  one user group in one (family, direction) make one item, led by its most severe row,
  and so do the item groups of one (family, direction) (say, every under-exposed one);
- an *evaluation* fact: a baseline that ranks better than SVD (``Popularity`` with a
  higher mean NDCG@k or recall@k over the folds).

Severity is :math:`|\log r| \times n`, the size of the gap (``r``: ratio to the reference
or to the catalogue share; ``|log r|`` treats 0.8 and 1.25 alike) times the users
affected (``n``: the group's users; for an item group, the users who rated its items; for
an evaluation fact, every user); an item's severity is its most severe row's. The summary
keeps at most ``MAX_ITEMS``: first the most severe item of each family, then the most
severe of the rest with at most ``MAX_PER_FAMILY`` per family (``ranked_items``), shown
largest first. Data-scope rows (``tier == "context"``: properties of
the ratings, such as the interaction share) are never summary items; ``data_context``
says them in their own section ("What the data shows").
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engine.audit.config import AuditConfig
from engine.audit.groups import PROPENSITY
from engine.audit.registry import Registry
from engine.audit.specs import REGISTRY
from engine.audit.stats import format_p_value
from engine.report.numbers import count_text, percent_text, ratio_text, value_text
from engine.report.ranking_groups import RANKING_BY_GROUP

MAX_ITEMS = 7
#: Places of the summary one family may hold before the last, unrestricted fill.
MAX_PER_FAMILY = 2
#: How the summary chooses its items, in words (the dashboard and the report say it).
SUMMARY_RULE = (
    f"At most {MAX_ITEMS} findings about the recommender, in plain words. Problems come "
    "first (a user group served worse, item groups under- or over-exposed, a baseline that "
    "ranks better than the model); a group served better only fills places they leave. "
    "Among them, first the most severe of each family, then the most severe of the rest, "
    f"at most {MAX_PER_FAMILY} per family, so a second finding of one family can give way "
    "to a milder one of another. Severity is the size of the gap x the users (for item "
    "groups, raters) affected."
)
#: Kinds of summary item, in the order ties of severity are broken.
SUMMARY_KINDS = ("flagged", "evaluation", "notable")
#: Ranking metrics on which a baseline beating SVD is reported (``Evaluation`` names).
RANKING_METRICS = {"ndcg": "NDCG@k", "recall": "recall@k"}
BASELINE = "Popularity"
#: The rating baseline named in the evaluation item when it, too, ranks better than SVD.
BIAS_BASELINE = "BaselineOnly"

#: What to look at next, by (family, direction); ``None`` = any direction.
CHECK_NEXT: dict[tuple[str, str | None], str] = {
    ("accuracy", "worse"): "check whether these users have fewer ratings or rate differently "
    "(root-cause hints, What the data shows), and compare the models' group gaps (the "
    "'Accuracy vs fairness' charts)",
    ("accuracy", "better"): "check that the other groups are not served worse in the same "
    "family (the audit table); a gap in either direction is the same gap",
    ("top-N utility", "worse"): "check these users' profile sizes and held-out items "
    "(root-cause hints), and whether the popularity baseline ranks these users better (the "
    f"'{RANKING_BY_GROUP}' table)",
    ("top-N utility", "better"): "check whether these users' profiles are larger or more "
    "mainstream than the reference group's (root-cause hints)",
    ("popularity", None): "compare the popularity of these users' own ratings with their "
    "lists (delta-GAP, bias disparity): the model may amplify or flatten their taste",
    ("calibration", None): "compare the genre mix of these users' ratings with their lists "
    "(bias disparity table)",
    ("explanations", None): "compare these users' profile sizes with the reference group's "
    "(root-cause hints): support is the share held by the 3 largest ratings, so it falls as a "
    "history grows, and fidelity moves with it; a gap that profile size explains is about "
    "reading the explanation, not about the model",
    ("exposure", "under-exposed"): "check how often these items are rated (interaction share "
    "in What the data shows) and where the model ranks them; re-ranking for exposure is one "
    "remedy",
    ("exposure", "over-exposed"): "check whether the data already favours these items "
    "(interaction share in What the data shows) or the model amplifies it",
}
#: ``CHECK_NEXT``'s entries where the popularity baseline was not evaluated (nothing to compare).
CHECK_NEXT_WITHOUT_BASELINE: dict[tuple[str, str | None], str] = {
    ("top-N utility", "worse"): "check these users' profile sizes and held-out items, and "
    "whether they rate more obscure items (root-cause hints)",
}
#: ``CHECK_NEXT``'s entries where at most one evaluated model predicts ratings (no other
#: model's accuracy gaps to compare: Popularity only ranks).
CHECK_NEXT_ONE_MODEL: dict[tuple[str, str | None], str] = {
    ("accuracy", "worse"): "check whether these users have fewer ratings or rate differently "
    "(root-cause hints, What the data shows)",
}
#: Which of a group's users a family's value rests on, where not every user with a list:
#: accuracy is measured on held-out ratings and the ranking metrics on users with a relevant
#: one, so one group's counts differ by family (272 ranked of 273 held out).
USERS_MEASURED: dict[str, str] = {
    "accuracy": "with a held-out rating",
    "top-N utility": "with a relevant held-out rating",
}
DEFAULT_CHECK = "check the group's rows in the audit table and the metric's definition"
#: The popularity check once the item says whether the model amplifies or flattens.
TASTE_CHECK = (
    "compare the genre mix of these users' ratings with their lists (bias disparity table): "
    "popularity aside, whether the lists follow what they rate"
)
#: Why two metrics of one family can point opposite ways for one group, by family.
DISAGREE: dict[str, str] = {
    "top-N utility": "the metrics count a hit differently (NDCG by its rank against the best "
    "order possible, recall against the user's number of relevant held-out ratings, "
    "precision and hit rate against the list), so a group can be ahead on one and behind on "
    "another; compare the groups' profile sizes and held-out ratings (root-cause hints)",
    "accuracy": "RMSE weighs large errors more than MAE, so a group with a few large errors "
    "can be worse on one and better on the other",
}
DISAGREE_DEFAULT = "read them together with each metric's definition"
BASELINE_CHECK = (
    "check the model settings (n_factors, n_epochs and the regularisation: reg_all and "
    "refit_lambda, or refit_lambda alone with the Spark engine: the report's Model and accuracy, "
    "the dashboard's Model page) and "
    "whether SVD's lists favour obscure items (ARP, long-tail share); a model that ranks worse "
    "than 'most popular' needs tuning before its lists are used"
)


@dataclass(frozen=True)
class SummaryItem:
    """One item of the executive summary.

    Attributes
    ----------
    headline
        One plain sentence: who, what, how large (data text quoted verbatim).
    detail
        The numbers behind it: tier, ratio, adjusted p, other metrics of the same group.
    check_next
        What an analyst should look at next (starts with a verb).
    severity
        ``|log ratio| x users affected`` (see the module docstring); ranks the items.
    kind
        ``"flagged"``, ``"notable"`` (disparities of the recommender) or ``"evaluation"``.
    family, grouping, group, metrics
        Where the item comes from (``""`` / ``()`` for an evaluation fact).
    direction
        ``"worse"``, ``"better"`` (a user group vs the reference), ``"under-exposed"``,
        ``"over-exposed"`` (item groups vs their catalogue share); an evaluation fact is
        ``"worse"`` (the audited model ranks worse than a baseline).
    """

    headline: str
    detail: str
    check_next: str
    severity: float
    kind: str
    family: str = ""
    grouping: str = ""
    group: str = ""
    metrics: tuple[str, ...] = ()
    direction: str = "worse"

    @property
    def is_problem(self) -> bool:
        """True unless a group is served *better* (the mirror of its reference served worse)."""
        return self.direction != "better"


def executive_summary(
    metrics: pd.DataFrame,
    accuracy: pd.DataFrame,
    config: AuditConfig,
    n_users: int,
    registry: Registry = REGISTRY,
    limit: int = MAX_ITEMS,
    k: int | None = None,
    protocol: str | None = None,
    delta_gap: pd.DataFrame | None = None,
) -> list[SummaryItem]:
    """Return at most ``limit`` summary items, the most severe first.

    ``metrics`` is the audit table with its tier columns (``AuditResult.metrics``);
    ``accuracy`` is ``model, metric, mean, std`` over the folds (``Report.accuracy``);
    ``n_users`` the dataset's users (affected by an evaluation fact); ``k`` the length of
    the evaluated lists (named in "NDCG@10"; "@k" when not given); ``protocol`` the
    evaluation's protocol in a few words (``protocol_words``: "5-fold"), named in an
    evaluation item so that its figures are not read against another protocol's;
    ``delta_gap`` the audit's ``AuditResult.delta_gap``, which a popularity item about a
    popularity propensity group is read against (``taste_sentence``).
    """
    items = ranked_items(metrics, accuracy, config, n_users, registry, k, protocol, delta_gap)
    return items[:limit]


def ranked_items(
    metrics: pd.DataFrame,
    accuracy: pd.DataFrame,
    config: AuditConfig,
    n_users: int,
    registry: Registry = REGISTRY,
    k: int | None = None,
    protocol: str | None = None,
    delta_gap: pd.DataFrame | None = None,
) -> list[SummaryItem]:
    """Every summary candidate, in the summary's order (``executive_summary`` keeps the first).

    Problems come first: a group served worse, an item group under- or over-exposed, a
    baseline that ranks better (``SummaryItem.is_problem``); a group served *better* is the
    mirror of its reference served worse, so it only fills places the problems leave.
    Within each, the first ``MAX_ITEMS`` places go to the most severe item of each family
    (so that a few large exposure gaps cannot hide every gap in how users are served), then
    to the most severe of the rest with at most ``MAX_PER_FAMILY`` per family, then to any;
    the chosen items are shown most severe first, the others follow.
    """
    items = [
        _list_length(item, config.k)  # "NDCG@k" reads "NDCG@10", as the evaluation's item
        for item in disparity_items(
            metrics,
            config,
            registry,
            set(accuracy["model"]) or None,
            set(accuracy.loc[accuracy["metric"] == "rmse", "model"]) if len(accuracy) else None,
            delta_gap,
        )
    ] + evaluation_items(accuracy, n_users, k, protocol)
    order = {kind: i for i, kind in enumerate(SUMMARY_KINDS)}
    items = sorted(items, key=lambda i: (-_finite(i.severity), order.get(i.kind, 9), i.headline))
    chosen: list[SummaryItem] = []
    per_family: dict[str, int] = {}
    for problems in (True, False):
        for cap in (1, MAX_PER_FAMILY, MAX_ITEMS):
            for item in items:
                family = item.family or item.kind
                if (
                    len(chosen) < MAX_ITEMS and item.is_problem == problems
                    and item not in chosen and per_family.get(family, 0) < cap
                ):  # fmt: skip
                    chosen.append(item)
                    per_family[family] = per_family.get(family, 0) + 1
    chosen.sort(key=items.index)
    return chosen + [item for item in items if item not in chosen]


def _list_length(item: SummaryItem, k: int) -> SummaryItem:
    """``item`` with the metric names' ``@k`` written as the audited list length."""
    return replace(
        item,
        headline=item.headline.replace("@k", f"@{k}"),
        detail=item.detail.replace("@k", f"@{k}"),
    )


def _finite(value: float) -> float:
    return -math.inf if math.isnan(value) else value


def _is_item_row(rows: pd.DataFrame) -> pd.Series:
    raters = rows["n_raters"].notna() if "n_raters" in rows else False
    return (rows["reference_group"] == "catalogue share") | raters


def disparity_items(
    metrics: pd.DataFrame,
    config: AuditConfig,
    registry: Registry = REGISTRY,
    models: Collection[str] | None = None,
    rating_models: Collection[str] | None = None,
    delta_gap: pd.DataFrame | None = None,
) -> list[SummaryItem]:
    """Summary items of the flagged and notable rows of the recommender (model scope).

    A user group makes one item per (family, grouping, group, direction), led by its most
    severe row; item groups one per (family, direction), naming the most severe groups.
    ``models``: the models evaluated (``None``: not known), which a check may point to;
    ``rating_models``: those of them with an RMSE (``None``: not known); ``delta_gap``: as
    in ``executive_summary``.
    """
    rows = metrics[(metrics["scope"] == "model") & metrics["tier"].isin(["flagged", "notable"])]
    if rows.empty:
        return []
    reference = metrics[metrics["status"] == "reference"].set_index(["metric", "grouping"])
    rows = rows.assign(
        _rank=rows["severity"].fillna(-1.0), _tier=rows["tier"] == "flagged",
        _item=_is_item_row(rows),
        _grouping=np.where(_is_item_row(rows), "", rows["grouping"].astype(str)),
        _group=np.where(_is_item_row(rows), "", rows["group"].astype(str)),
    )  # fmt: skip
    rows = rows.sort_values(["_tier", "_rank"], ascending=False, kind="stable")
    out = []
    by_group = {key: part for key, part in rows.groupby(["family", "_grouping", "_group"])}
    for _, part in rows.groupby(["family", "_grouping", "_group", "direction"], sort=False):
        lead = part.iloc[0]
        if lead["_item"]:
            headline = _item_headline(part, registry)
            others = [f"{r['grouping']} = {r['group']} {ratio_text(r['ratio'])} ({r['tier']})"
                      for _, r in part.iloc[1:].iterrows()]  # fmt: skip
        else:
            ref = reference["value"].get((lead["metric"], lead["grouping"]), float("nan"))
            headline = _headline(lead, ref, registry)
            others = [f"{_name(registry, r['metric'])} (ratio {ratio_text(r['ratio'])}, "
                      f"{r['tier']})" for _, r in part.iloc[1:].iterrows()]  # fmt: skip
        # several item groups: the leading tier and ratio are the first group's, not the set's
        named = f"{lead['grouping']} = {lead['group']}" if lead["_item"] and others else None
        detail = _tier_text(lead, config, named)
        if others:
            detail += (" Ratios of the other groups: " if lead["_item"] else " Also: ") + (
                "; ".join(others) + "."
            )
        if not lead["_item"]:
            same = by_group[(lead["family"], lead["_grouping"], lead["_group"])]
            detail += _other_way(same[same["direction"] != lead["direction"]], registry)
        check = _check_next(lead["family"], lead["direction"], models, rating_models)
        if lead["family"] == "popularity" and lead["grouping"] == PROPENSITY:
            taste = taste_sentence(delta_gap, str(lead["group"]))
            detail += taste
            check = TASTE_CHECK if taste else check  # amplify or flatten: answered
        out.append(
            SummaryItem(
                headline=headline,
                detail=detail,
                check_next=check,
                severity=float(part["severity"].max()),
                kind=str(lead["tier"]),
                family=str(lead["family"]),
                grouping=", ".join(dict.fromkeys(str(g) for g in part["grouping"])),
                group=", ".join(dict.fromkeys(str(g) for g in part["group"])),
                metrics=tuple(str(m) for m in part["metric"]),
                direction=str(lead["direction"]),
            )
        )
    return out


def _other_way(rows: pd.DataFrame, registry: Registry) -> str:
    """Name the metrics of the same family and group that point the other way, and why."""
    if rows.empty:
        return ""
    named = "; ".join(
        f"{_name(registry, r['metric'])} is {r['direction']} (ratio {ratio_text(r['ratio'])}, "
        f"{r['tier']})" for _, r in rows.iterrows()
    )  # fmt: skip
    why = DISAGREE.get(str(rows["family"].iloc[0]), DISAGREE_DEFAULT)
    return f" In the same family the other way: {named}. {why[0].upper()}{why[1:]}."


def taste_sentence(delta_gap: pd.DataFrame | None, group: str) -> str:
    """Read a popularity finding about a propensity group against the group's own ratings.

    ARP and the long-tail shares compare one group's lists with the reference group's; a
    group of users who rate popular items gets more popular lists even from a model that
    pulls every list toward the middle. Delta-GAP (Abdollahpouri et al., 2019) compares the
    group's lists with its own ratings: ``(GAP_recommended - GAP_profile) / GAP_profile``,
    < 0 where the lists are less popular than the ratings, > 0 where more (the model
    amplifies popularity for the group). Returns ``" Against their own ratings, ..."`` with
    the other groups' values, or ``""`` without a finite delta-GAP for ``group``.
    """
    if delta_gap is None or not len(delta_gap):
        return ""
    values = delta_gap.set_index("group")["delta_gap"]
    value = values.get(group, float("nan"))
    if _na(value):
        return ""
    others = "; ".join(f"{g} {v:+.2f}" for g, v in values.items() if g != group and not _na(v))
    if value < 0:
        reading = "the model moves their lists away from popular items, not toward them"
        change = f"{-value:.0%} less popular"
    elif value > 0:
        reading = "the model moves their lists toward popular items (it amplifies popularity)"
        change = f"{value:.0%} more popular"
    else:
        reading, change = "the model keeps the popularity of what they rate", "as popular"
    compared = f"; {others}" if others else ""
    return (
        f" Against their own ratings, these users' lists are {change} than the items they "
        f"rated (delta-GAP {value:+.2f}{compared}): {reading}."
    )


def _item_headline(part: pd.DataFrame, registry: Registry, shown: int = 3) -> str:
    """Item groups in one direction, the most severe first (each as ``grouping = group``)."""
    lead = part.iloc[0]
    leads = part.drop_duplicates(["grouping", "group"])
    if len(leads) == 1:
        return _headline(lead, float("nan"), registry)
    name = _name(registry, lead["metric"])
    listed = [
        f"{r['grouping']} = {r['group']} ({percent_text(r['value'])} vs {percent_text(_share(r))})"
        for _, r in leads.head(shown).iterrows()
    ]
    more = f", and {len(leads) - shown} more" if len(leads) > shown else ""
    side = "more" if lead["direction"] == "over-exposed" else "less"
    tiers = leads["tier"].value_counts()
    split = ", ".join(f"{int(tiers[t])} {t}" for t in ("flagged", "notable") if tiers.get(t, 0))
    return (
        f"{len(leads)} item groups ({split}) get {side} {name} than their share of the catalogue "
        f"({lead['direction']}): {', '.join(listed)}{more}."
    )


def _share(row: pd.Series) -> float:
    """Catalogue share of an item-group row (``value / ratio``; NaN for a ratio of 0)."""
    return row["value"] / row["ratio"] if row["ratio"] and row["ratio"] > 0 else np.nan


def _name(registry: Registry, metric: str) -> str:
    spec = registry.get(metric)
    return spec.display_name if spec is not None else metric


def _is_item(row: pd.Series) -> bool:
    raters = row.get("n_raters")
    return row["reference_group"] == "catalogue share" or not _na(raters)


def _measured(family: str) -> str:
    return f" {USERS_MEASURED[family]}" if family in USERS_MEASURED else ""


def _headline(row: pd.Series, reference_value: float, registry: Registry) -> str:
    name = _name(registry, row["metric"])
    who = f"{row['grouping']} = {row['group']}"
    if _is_item(row):
        share = _share(row)
        items = "" if _na(row.get("n_items")) else f" ({count_text(row['n_items'])} items)"
        return (
            f"Items with {who}{items} are {row['direction']}: they get "
            f"{percent_text(row['value'])} of the {name} but make up {percent_text(share)} of "
            f"the catalogue (ratio {ratio_text(row['ratio'])})."
        )
    change = (row["ratio"] - 1) if not _na(row["ratio"]) else np.nan
    size = "" if _na(change) else f", {abs(change):.0%} {'higher' if change > 0 else 'lower'}"
    return (
        f"{name[0].upper() + name[1:]} is {row['direction']} for {who} "
        f"({count_text(row['n_users'])} users{_measured(row['family'])}): "
        f"{value_text(row['value'])} vs "
        f"{value_text(reference_value)} for {row['reference_group']}{size} "
        f"({row['better']} is better)."
    )


def _na(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _tier_text(row: pd.Series, config: AuditConfig, subject: str | None = None) -> str:
    """Write the tier sentence: ``Flagged: ratio ...`` or ``<subject> is flagged: ratio ...``."""
    low, high = config.band
    p = format_p_value(float(row["p_adjusted"]), bool(row.get("p_is_bound", False)))
    p = f"p {p}" if p.startswith("<") else f"p = {p}"
    method = f", {row['p_method']}" if row.get("p_method") else ""
    tier = f"{subject} is {row['tier']}" if subject else str(row["tier"]).capitalize()
    if row["tier"] == "flagged":
        return (
            f"{tier}: ratio {ratio_text(row['ratio'], config.band)}, outside [{low}, {high}], "
            f"and significant after Holm's correction (adjusted {p}{method})."
        )
    return (
        f"{tier}: ratio {ratio_text(row['ratio'], config.band)} is inside [{low}, {high}], but "
        f"the gap is significant after Holm's correction (adjusted {p}{method})."
    )


def _check_next(
    family: str,
    direction: str,
    models: Collection[str] | None = None,
    rating_models: Collection[str] | None = None,
) -> str:
    checks = CHECK_NEXT
    if models is not None and BASELINE not in models:
        checks = checks | CHECK_NEXT_WITHOUT_BASELINE
    if rating_models is not None and len(rating_models) <= 1:
        checks = checks | CHECK_NEXT_ONE_MODEL
    return checks.get((family, direction)) or checks.get((family, None)) or DEFAULT_CHECK


def protocol_words(settings: dict | None) -> str | None:
    """Return the evaluation's protocol in a few words, from ``Report.model["evaluation"]``.

    ``"5-fold"``, ``"temporal-split"``, ``"leave-last-1"``, ``"rolling-origin"``; None
    when ``settings`` do not say.
    """
    if not settings or not settings.get("split"):
        return None
    split = settings["split"]
    if split == "kfold":
        return f"{settings.get('folds', 5)}-fold" if settings.get("folds") else "K-fold"
    if split == "last-n":
        return f"leave-last-{settings.get('last_n', 1)}"
    return {"temporal": "temporal-split", "rolling": "rolling-origin"}.get(split, str(split))


def with_protocol(items: list[SummaryItem], protocol: str | None) -> list[SummaryItem]:
    """``items`` with each evaluation item naming ``protocol`` (as ``evaluation_items`` does)."""
    if not protocol:
        return items
    out = []
    for item in items:
        if item.kind == "evaluation" and _OVER_FOLDS in item.headline:
            head = item.headline.replace(_HEAD, _HEAD + f" in the {protocol} evaluation", 1)
            item = replace(item, headline=head.replace(_OVER_FOLDS, _OVER_ITS_FOLDS))
        out.append(item)
    return out


_HEAD = "The popularity baseline ranks better than SVD"
_OVER_FOLDS = " (mean over the folds)."
_OVER_ITS_FOLDS = " (mean over its folds)."


def evaluation_items(
    accuracy: pd.DataFrame, n_users: int, k: int | None = None, protocol: str | None = None
) -> list[SummaryItem]:
    """Return an item when the popularity baseline ranks better than SVD (NDCG@k, recall@k).

    ``accuracy`` is ``model, metric, mean, std`` (mean over the folds). The first ranking
    metric on which the baseline wins leads; the others are named in the detail. With
    ``protocol`` ("5-fold"), the headline names it: "... better than SVD in the 5-fold
    evaluation: NDCG@10 0.1739 vs 0.0933 (mean over its folds)."
    """
    means = accuracy.set_index(["model", "metric"])["mean"]
    wins = []
    for metric, label in RANKING_METRICS.items():
        label = label if k is None else label.replace("@k", f"@{k}")
        svd, base = means.get(("SVD", metric), np.nan), means.get((BASELINE, metric), np.nan)
        if np.isfinite(svd) and np.isfinite(base) and base > svd:
            wins.append((metric, label, float(svd), float(base)))
    if not wins:
        return []
    metric, label, svd, base = wins[0]
    ratio = base / svd if svd > 0 else math.inf
    rest = "; ".join(f"{lb} {value_text(b)} vs {value_text(s)}" for _, lb, s, b in wins[1:])
    biases = means.get((BIAS_BASELINE, metric), np.nan)
    too = ""  # a reader asked whether only Popularity ranks better
    if np.isfinite(biases) and biases > svd:
        too = (f" {BIAS_BASELINE} (the mean plus user and item biases, no factors) ranks better "
               f"than SVD too: {label} {value_text(biases)}.")  # fmt: skip
    items = [
        SummaryItem(
            headline=(f"{_HEAD}: {label} {value_text(base)} vs {value_text(svd)}{_OVER_FOLDS}"),
            detail=(
                "Recommending the most-rated items to everyone finds more of users' held-out "
                f"relevant items than the audited model ({ratio_text(ratio)} times SVD's "
                f"{label})." + (f" Also {rest}." if rest else "") + too
            ),
            check_next=BASELINE_CHECK,
            severity=(abs(math.log(ratio)) if math.isfinite(ratio) else math.inf) * n_users,
            kind="evaluation",
            metrics=tuple(w[0] for w in wins),
        )
    ]
    return with_protocol(items, protocol)


def data_context(
    metrics: pd.DataFrame, config: AuditConfig, registry: Registry = REGISTRY, limit: int = 8
) -> list[str]:
    """Sentences on what the ratings themselves show (``tier == "context"`` rows).

    Rows whose ratio leaves the band and that the audit found significant (they have a
    ``direction``), the most severe first, at most ``limit``; a final sentence counts the
    rest.
    """
    rows = metrics[(metrics["tier"] == "context") & (metrics["direction"].fillna("") != "")]
    low, high = config.band
    outside = rows[(rows["ratio"] < low) | (rows["ratio"] > high)]
    outside = outside.assign(_rank=outside["severity"].fillna(-1.0))
    outside = outside.sort_values("_rank", ascending=False, kind="stable")
    out = []
    for _, row in outside.head(limit).iterrows():
        name = _name(registry, row["metric"])
        more = "more" if row["ratio"] > 1 else "less"
        what = "of all ratings" if row["metric"] == "interaction_share" else f"({name})"
        out.append(
            f"Items with {row['grouping']} = {row['group']} get {percent_text(row['value'])} "
            f"{what} but make up {percent_text(_share(row))} of the catalogue (ratio "
            f"{ratio_text(row['ratio'])}): users rated them {more} than their number alone "
            "would give, before any model."
        )
    if len(outside) > limit:
        out.append(f"{len(outside) - limit} more item groups are outside [{low}, {high}] in "
                   "the data (significantly); see the table.")  # fmt: skip
    return out


def insufficient_summary(metrics: pd.DataFrame, minimum: int) -> str:
    """One sentence: how many groups are below ``minimum`` and how many users they hold.

    Counted per grouping (a user is in one group of each grouping, so users are not added
    across groupings); for an item grouping the count is of its items' raters.
    """
    rows = metrics[metrics["status"] == "insufficient data"]
    if rows.empty:
        return "Every group has enough users."
    groups = rows.drop_duplicates(["grouping", "group"])
    parts = []
    for grouping, part in groups.groupby("grouping", sort=False):
        item = bool(_is_item_row(part).all())
        held = part["n_raters" if item else "n_users"].fillna(0).sum()
        parts.append(f"{count_text(len(part))} of {grouping} (holding {count_text(held)} "
                     f"{'raters' if item else 'users'})")  # fmt: skip
    n = len(groups)
    return (
        f"{count_text(n)} {'group is' if n == 1 else 'groups are'} below the minimum size of "
        f"{minimum} users: {', '.join(parts)}. They are never flagged or ranked, and their "
        "values are withheld."
    )
