"""The audit: every metric family by every grouping, with statistics, in one ``AuditResult``.

Conventions (also stated in each table's ``definition`` column): the SVD engine is
audited; accuracy uses its out-of-fold predictions (``Evaluation.predictions``); top-N
utility its out-of-fold lists (``Evaluation.user_ranking``); popularity, calibration,
exposure and explanation measures use the top-``k`` lists of the model trained on all
data (what users would see). Statistics are in ``engine.audit.stats``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.audit import measures
from engine.audit.config import AuditConfig
from engine.audit.groups import (
    ACTIVITY,
    ITEM_POPULARITY,
    LONG_TAIL,
    PROPENSITY,
    activity_groups,
    item_attribute_groups,
    item_popularity_groups,
    propensity_groups,
    user_attribute_groups,
)
from engine.audit.stats import (
    bootstrap_ci,
    holm,
    identity,
    normal_tail,
    permutation_p,
    ratio_of_sums,
)
from engine.data.types import RatingData
from engine.evaluate import Evaluation
from engine.explain.history import linear_history
from engine.model.svd import Progress, TrainedModel
from engine.recommend import recommend_all

log = logging.getLogger(__name__)

#: name -> (family, better, definition). ``better`` is "lower" or "higher".
METRICS: dict[str, tuple[str, str, str]] = {
    "rmse": ("accuracy", "lower", "RMSE of out-of-fold predictions: sqrt(sum sq. error / n)"),
    "mae": ("accuracy", "lower", "MAE of out-of-fold predictions: sum |error| / n"),
    "ndcg": ("top-N utility", "higher", "mean NDCG@k over users with a relevant held-out item"),
    "recall": ("top-N utility", "higher", "mean Recall@k over users with a relevant item"),
    "arp": ("popularity", "lower", "mean number of ratings of the recommended items"),
    "aplt": ("popularity", "higher", "share of recommended items in the long tail"),
    "aclt": ("popularity", "higher", "number of recommended items in the long tail"),
    "novelty": ("popularity", "higher", "mean -log2(popularity / n_users) of recommended items"),
    "miscalibration": ("calibration", "lower",
                       "Steck C_KL(history genres || smoothed list genres), alpha 0.01, bits"),
    "explanation_support": ("explanations", "higher",
                            "share of top-1 recommendations resting on >= 3 of the user's "
                            "ratings (each adding >= 0.01 stars in the exact split)"),
    "deletion_fidelity": ("explanations", "higher",
                          "prediction drop after deleting the 3 most positive ratings of the "
                          "top-1 recommendation and refolding"),
    "exposure_share": ("exposure", "higher",
                       "position-weighted (1/log2(1+rank)) share of recommendations; ratio "
                       "is to the group's catalogue share"),
    "interaction_share": ("exposure", "higher",
                          "share of all ratings (exposure before the model); ratio is to the "
                          "group's catalogue share"),
}  # fmt: skip
ROW_COLUMNS = [
    "family", "metric", "grouping", "group", "n_users", "n_ratings", "value", "ci_low",
    "ci_high", "reference_group", "ratio", "p_value", "p_adjusted", "flag", "direction",
    "status", "better", "definition",
]  # fmt: skip
SUPPORT_MIN_RATINGS = 3
SUPPORT_MIN_CONTRIBUTION = 0.01


@dataclass(frozen=True)
class AuditResult:
    """Tidy audit tables.

    Attributes
    ----------
    metrics
        One row per (metric, grouping, group) with ``ROW_COLUMNS``: ``n_users``,
        ``n_ratings``, ``value`` with its 95% bootstrap interval, the ``reference_group``
        and ``ratio`` to it, permutation ``p_value`` and Holm-``p_adjusted``, ``flag``,
        ``direction`` (``worse``/``better``/``under-exposed``...) and ``status``
        (``reference``, ``ok``, ``flagged``, ``insufficient data``, ``reported``).
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
        Root-cause hints for flagged user groups: ``grouping, group, metric, sentences``.
    notes
        Sentences about what was merged, skipped or assumed.
    """

    config: AuditConfig
    metrics: pd.DataFrame
    catalogue: pd.DataFrame
    yao: pd.DataFrame
    delta_gap: pd.DataFrame
    bias_disparity: pd.DataFrame
    hints: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def flagged(self) -> pd.DataFrame:
        """Return the flagged rows, largest deviation from the band first."""
        rows = self.metrics[self.metrics["flag"]].copy()
        with np.errstate(divide="ignore"):
            rows["distance"] = np.abs(np.log(rows["ratio"].astype(float)))
        return rows.sort_values("distance", ascending=False).drop(columns="distance")


def _per_user_inputs(
    data: RatingData,
    model: TrainedModel,
    evaluation: Evaluation,
    lists: pd.DataFrame,
    config: AuditConfig,
    popularity: pd.Series,
    long_tail: pd.Series,
) -> dict[str, tuple[pd.Series, pd.Series, Any]]:
    """``metric -> (a_u, b_u, transform)`` for ratio-of-sums group statistics."""
    out: dict[str, tuple[pd.Series, pd.Series, Any]] = {}
    oof = evaluation.predictions[evaluation.predictions["model"] == "SVD"]
    error = oof["prediction"] - oof["rating"]
    by_user = pd.DataFrame({"user_id": oof["user_id"], "se": error**2, "ae": error.abs()})
    sums = by_user.groupby("user_id").agg(se=("se", "sum"), ae=("ae", "sum"), n=("se", "size"))
    out["rmse"] = (sums["se"], sums["n"].astype(float), np.sqrt)
    out["mae"] = (sums["ae"], sums["n"].astype(float), identity)
    ranking = evaluation.user_ranking[evaluation.user_ranking["model"] == "SVD"]
    per_user = ranking.groupby("user_id")[["ndcg", "recall"]].mean()
    for name in ("ndcg", "recall"):
        out[name] = (per_user[name], pd.Series(1.0, index=per_user.index), identity)
    n_users = data.n_users
    for name, values in (
        ("arp", measures.arp(lists, popularity)),
        ("aplt", measures.aplt(lists, long_tail)),
        ("aclt", measures.aclt(lists, long_tail)),
        ("novelty", measures.novelty(lists, popularity, n_users)),
    ):
        out[name] = (values, pd.Series(1.0, index=values.index), identity)
    if data.items is not None and "genres" in data.items:
        history = data.ratings[["user_id", "item_id"]]
        values = measures.miscalibration(history, lists, data.items["genres"]).dropna()
        out["miscalibration"] = (values, pd.Series(1.0, index=values.index), identity)
    if config.explanations:
        support, fidelity = _explanation_measures(model, lists)
        out["explanation_support"] = (support, pd.Series(1.0, index=support.index), identity)
        out["deletion_fidelity"] = (fidelity, pd.Series(1.0, index=fidelity.index), identity)
    return out


def _explanation_measures(model: TrainedModel, lists: pd.DataFrame) -> tuple[pd.Series, ...]:
    """Per user, for the top-1 recommendation: support (0/1) and deletion fidelity (stars)."""
    top1 = lists[lists["rank"] == 1]
    users = model.interactions.user_index(top1["user_id"].to_numpy())
    items = model.interactions.item_index(top1["item_id"].to_numpy())
    ids = model.interactions.item_ids
    support, fidelity = [], []
    for user, item in zip(users, items, strict=True):
        vector = model.user_vector(user)
        values = linear_history(model, vector, item).values[: len(vector.items)]
        support.append(float((values >= SUPPORT_MIN_CONTRIBUTION).sum() >= SUPPORT_MIN_RATINGS))
        drop = np.argsort(-values, kind="stable")[:SUPPORT_MIN_RATINGS]
        drop = drop[values[drop] > 0]
        keep = np.ones(len(vector.items), bool)
        keep[drop] = False
        refolded = model.fold_in(ids[vector.items[keep]], vector.ratings[keep])
        fidelity.append(
            float(model.score_vector(vector)[item] - model.score_vector(refolded)[item])
        )
    index = pd.Index(top1["user_id"].to_numpy(), name="user_id")
    return pd.Series(support, index=index), pd.Series(fidelity, index=index)


def _group_rows(
    metric: str,
    grouping: str,
    labels: pd.Series,
    parts: tuple[pd.Series, pd.Series, Any],
    profile_sizes: pd.Series,
    config: AuditConfig,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    a_all, b_all, transform = parts
    family, better, definition = METRICS[metric]
    labels = labels.reindex(a_all.index).dropna()
    sizes = labels.value_counts()
    eligible = sizes[sizes >= config.min_group_size]
    reference = eligible.index[0] if len(eligible) else None
    ref_users = labels.index[labels == reference] if reference is not None else None
    rows = []
    ref_value = np.nan
    if reference is not None:
        ref_value = ratio_of_sums(a_all[ref_users].to_numpy(), b_all[ref_users].to_numpy(),
                                  transform)  # fmt: skip
    for group in sorted(sizes.index, key=str):
        users = labels.index[labels == group]
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
        else:
            row["ci_low"], row["ci_high"] = bootstrap_ci(a, b, transform, config.bootstrap, rng)
            if group == reference:
                row["status"] = "reference"
                row["ratio"] = 1.0
            elif ref_value and np.isfinite(ref_value):
                row["ratio"] = value / ref_value
                row["p_value"] = permutation_p(
                    a, b, a_all[ref_users].to_numpy(float), b_all[ref_users].to_numpy(float),
                    transform, config.permutations, rng,
                )  # fmt: skip
        rows.append(row)
    return rows


def _exposure_rows(
    grouping: str,
    membership: pd.DataFrame,
    lists: pd.DataFrame,
    ratings: pd.DataFrame,
    config: AuditConfig,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Exposure in recommendations and in interactions per item group vs catalogue share.

    ``exposure_share``: position-weighted share of the top-k lists; ``interaction_share``:
    share of the ratings (the exposure users gave the items before the model). Both are
    compared with the group's catalogue share (ratio); CIs bootstrap users, the p-value is
    the normal tail of the bootstrap distribution around the catalogue share.
    """
    rows = []
    sources = {
        "exposure_share": (lists["user_id"], lists["item_id"],
                           measures.position_weights(lists["rank"])),
        "interaction_share": (ratings["user_id"], ratings["item_id"], np.ones(len(ratings))),
    }  # fmt: skip
    for metric, (user_col, item_col, weights) in sources.items():
        family, better, definition = METRICS[metric]
        total_by_user, by_group = measures.weight_by_user(user_col, item_col, weights, membership)
        idx = rng.integers(
            0, len(total_by_user), size=(max(config.bootstrap, 2), len(total_by_user))
        )
        for group in membership.columns:
            members = membership.index[membership[group]]
            by_user = by_group[group].to_numpy()
            share = by_user.sum() / total_by_user.sum()
            catalogue = membership[group].mean()
            boot = by_user[idx].sum(axis=1) / total_by_user[idx].sum(axis=1)
            raters = ratings.loc[ratings["item_id"].isin(members), "user_id"]
            rows.append({
                "family": family, "metric": metric, "grouping": grouping, "group": str(group),
                "n_users": int(raters.nunique()), "n_ratings": len(raters),
                "value": share, "ci_low": float(np.quantile(boot, 0.025)),
                "ci_high": float(np.quantile(boot, 0.975)), "reference_group": "catalogue share",
                "ratio": share / catalogue if catalogue > 0 else np.nan,
                "p_value": normal_tail(share - catalogue, float(boot.std())),
                "p_adjusted": np.nan, "flag": False, "direction": "", "status": "ok",
                "better": better, "definition": f"{definition}; catalogue share {catalogue:.3f}",
            })  # fmt: skip
    return rows


def _yao(
    grouping: str, labels: pd.Series, oof: pd.DataFrame, config: AuditConfig
) -> list[dict[str, Any]]:
    """Yao & Huang (NeurIPS 2017) unfairness of each group vs the rest of the users.

    Over items with >= ``yao_min_ratings`` ratings in both: value = mean_j |(E_g[y] - E_g[r])
    - (E_o[y] - E_o[r])|, absolute = mean_j ||E_g[y]-E_g[r]| - |E_o[y]-E_o[r]||, under/over
    the same with max(0, r - y) / max(0, y - r); non-parity = |mean_g(y) - mean_o(y)|. Lower
    is fairer; 0 = parity.
    """
    frame = oof.assign(group=labels.reindex(oof["user_id"]).to_numpy())
    rows = []
    for group in sorted(frame["group"].dropna().unique(), key=str):
        inside = frame["group"] == group
        stats = (
            frame.assign(inside=inside)
            .groupby(["item_id", "inside"])
            .agg(y=("prediction", "mean"), r=("rating", "mean"), n=("rating", "size"))
            .unstack("inside")
        )
        if stats.shape[1] < 6:
            continue
        ok = (stats["n"][True] >= config.yao_min_ratings) & (
            stats["n"][False] >= config.yao_min_ratings
        )
        s = stats[ok]
        dg, do = s["y"][True] - s["r"][True], s["y"][False] - s["r"][False]
        rows.append({
            "grouping": grouping, "group": str(group), "n_users": int(labels.eq(group).sum()),
            "value": float((dg - do).abs().mean()),
            "absolute": float((dg.abs() - do.abs()).abs().mean()),
            "under": float((np.maximum(0, -dg) - np.maximum(0, -do)).abs().mean()),
            "over": float((np.maximum(0, dg) - np.maximum(0, do)).abs().mean()),
            "non_parity": float(abs(frame.loc[inside, "prediction"].mean()
                                    - frame.loc[~inside, "prediction"].mean())),
            "n_items": int(ok.sum()),
        })  # fmt: skip
    return rows


def _hints(
    flagged: pd.DataFrame,
    user_groupings: dict[str, pd.Series],
    profile: pd.DataFrame,
    config: AuditConfig,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """For each flagged user group: which profile traits differ from the other users."""
    traits = {
        "profile size": ("n_ratings", "ratings per user"),
        "mean item popularity": ("mean_popularity", "ratings of the items they rated"),
        "mean rating": ("mean_rating", "stars"),
    }
    hints, seen = [], set()
    for row in flagged.itertuples():
        key = (row.grouping, row.group)
        if row.grouping not in user_groupings or key in seen:
            continue
        seen.add(key)
        labels = user_groupings[row.grouping].reindex(profile.index)
        inside = labels == row.group
        sentences = []
        for trait, (column, unit) in traits.items():
            a_in, a_out = (
                profile.loc[inside, column].to_numpy(),
                profile.loc[~inside, column].to_numpy(),
            )
            p = permutation_p(a_in, np.ones(len(a_in)), a_out, np.ones(len(a_out)), identity,
                              config.permutations, rng)  # fmt: skip
            if p < config.alpha:
                sentences.append(
                    f"{trait}: mean {a_in.mean():.2f} vs {a_out.mean():.2f} {unit} for the other "
                    f"users (permutation p = {p:.4f}, not corrected)"
                )
        hints.append(
            {
                "grouping": row.grouping,
                "group": row.group,
                "metric": row.metric,
                "sentences": sentences or ["no profile trait differs significantly"],
            }
        )
    return hints


def run_audit(
    data: RatingData,
    model: TrainedModel,
    evaluation: Evaluation,
    config: AuditConfig | None = None,
    *,
    progress: Progress | None = None,
) -> AuditResult:
    """Audit ``model`` (trained on ``data``) with its ``evaluation`` (see module docstring)."""
    config = config or AuditConfig()
    rng = np.random.default_rng(config.seed)
    notes: list[str] = []
    inter = model.interactions
    k = min(config.k, inter.n_items)
    if k < config.k:
        notes.append(
            f"k = {config.k} exceeds the catalogue of {inter.n_items} items; k = {k} used."
        )
    if progress:
        progress(0.0, "recommending for every user")
    lists = recommend_all(model, k)
    ratings = data.ratings
    popularity = ratings["item_id"].value_counts()
    popularity_groups = item_popularity_groups(popularity)
    long_tail = popularity_groups[LONG_TAIL]
    profile = ratings.assign(pop=popularity.reindex(ratings["item_id"]).to_numpy()).groupby(
        "user_id").agg(n_ratings=("rating", "size"), mean_rating=("rating", "mean"),
                       mean_popularity=("pop", "mean"))  # fmt: skip

    user_groupings, user_notes = user_attribute_groups(
        data.users, profile.index.to_numpy(), _listed(config.user_attributes), config.max_groups
    )
    notes += user_notes
    user_groupings[ACTIVITY] = activity_groups(profile["n_ratings"])
    user_groupings[PROPENSITY] = propensity_groups(profile["mean_popularity"])
    item_groupings, item_notes = item_attribute_groups(
        data.items, popularity.index.to_numpy(), _listed(config.item_attributes), config.max_groups
    )
    notes += item_notes
    item_groupings[ITEM_POPULARITY] = popularity_groups

    if progress:
        progress(0.2, "per-user measures")
    parts = _per_user_inputs(data, model, evaluation, lists, config, popularity, long_tail)
    if "miscalibration" not in parts:
        notes.append("No item genres: calibration is not audited.")
    rows: list[dict[str, Any]] = []
    for n, (grouping, labels) in enumerate(user_groupings.items()):
        if progress:
            progress(0.3 + 0.5 * n / len(user_groupings), f"user groups: {grouping}")
        for metric, metric_parts in parts.items():
            rows += _group_rows(metric, grouping, labels, metric_parts, profile["n_ratings"],
                                config, rng)  # fmt: skip
    for grouping, membership in item_groupings.items():
        rows += _exposure_rows(grouping, membership, lists, ratings, config, rng)
    table = pd.DataFrame(rows, columns=ROW_COLUMNS)
    table["p_adjusted"] = holm(table["p_value"].to_numpy())
    _flag(table, config)

    oof = evaluation.predictions[evaluation.predictions["model"] == "SVD"]
    yao = pd.DataFrame(
        [r for g, labels in user_groupings.items() for r in _yao(g, labels, oof, config)]
    )
    gap = _delta_gap(user_groupings[PROPENSITY], lists, ratings, popularity)
    disparity = _bias_disparity(user_groupings, item_groupings, ratings, lists)
    catalogue = _catalogue(data, lists, item_groupings, evaluation, table, config)
    hints = _hints(table[table["flag"]], user_groupings, profile, config, rng)
    if progress:
        progress(1.0, "audit done")
    return AuditResult(config, table, catalogue, yao, gap, disparity, hints, notes)


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def _flag(table: pd.DataFrame, config: AuditConfig) -> None:
    low, high = config.band
    testable = table["status"] == "ok"
    outside = (table["ratio"] < low) | (table["ratio"] > high)
    significant = table["p_adjusted"] < config.alpha
    table["flag"] = testable & outside & significant
    worse_high = table["better"] == "lower"
    higher = table["ratio"] > 1
    direction = np.where(higher == worse_high, "worse", "better")
    exposure = table["family"] == "exposure"
    direction = np.where(exposure, np.where(higher, "over-exposed", "under-exposed"), direction)
    table["direction"] = np.where(table["flag"], direction, "")
    table.loc[table["flag"], "status"] = "flagged"


def _delta_gap(
    labels: pd.Series, lists: pd.DataFrame, ratings: pd.DataFrame, popularity: pd.Series
) -> pd.DataFrame:
    """Delta-GAP per propensity group: (GAP_recommended - GAP_profile) / GAP_profile.

    GAP(g) is the mean over the group's users of the mean popularity (number of ratings)
    of their items (profile or list); < 0: the lists are less popular than the profiles.
    """
    profile = measures.per_user_mean(ratings, popularity)
    recommended = measures.arp(lists, popularity)
    rows = []
    for group in ("niche", "diverse", "blockbuster"):
        users = labels.index[labels == group]
        gp, gr = profile.reindex(users).mean(), recommended.reindex(users).mean()
        rows.append((group, len(users), gp, gr, (gr - gp) / gp))
    return pd.DataFrame(
        rows, columns=["group", "n_users", "gap_profile", "gap_recommended", "delta_gap"]
    )


def _bias_disparity(
    user_groupings: dict[str, pd.Series],
    item_groupings: dict[str, pd.DataFrame],
    ratings: pd.DataFrame,
    lists: pd.DataFrame,
) -> pd.DataFrame:
    categories = item_groupings.get("genres")
    if categories is None:
        return pd.DataFrame()
    frames = []
    for grouping, labels in user_groupings.items():
        frame = measures.bias_disparity(labels, ratings, lists, categories)
        frames.append(frame.assign(grouping=grouping))
    return pd.concat(frames, ignore_index=True)


def _catalogue(
    data: RatingData,
    lists: pd.DataFrame,
    item_groupings: dict[str, pd.DataFrame],
    evaluation: Evaluation,
    table: pd.DataFrame,
    config: AuditConfig,
) -> pd.DataFrame:
    catalogue_ids = np.asarray(pd.unique(data.ratings["item_id"]), dtype=object)
    rows = [
        ("coverage", "", measures.coverage(lists, len(catalogue_ids)),
         "share of the catalogue recommended to at least one user (higher = broader)"),
        ("gini_exposure", "", measures.exposure_gini(lists, catalogue_ids),
         "Gini of recommendation counts over the whole catalogue (0 = equal exposure)"),
    ]  # fmt: skip
    oof_lists = evaluation.top_lists[evaluation.top_lists["model"] == "SVD"]
    fold_of = evaluation.predictions[evaluation.predictions["model"] == "SVD"]
    relevant = fold_of[fold_of["rating"] >= config.threshold][["fold", "user_id", "item_id"]]
    for grouping, membership in item_groupings.items():
        rows.append((
            "pop_rsp" if grouping == ITEM_POPULARITY else "rsp", grouping,
            measures.rsp(lists, membership, data.ratings),
            "std/mean over item groups of recommended share of candidate items (0 = parity)",
        ))  # fmt: skip
        reo_by_fold = [
            measures.reo(oof_lists[oof_lists["fold"] == f], membership,
                         relevant[relevant["fold"] == f])
            for f in sorted(oof_lists["fold"].unique())
        ]  # fmt: skip
        rows.append((
            "pop_reo" if grouping == ITEM_POPULARITY else "reo", grouping,
            float(np.nanmean(reo_by_fold)),
            "std/mean over item groups of recall of held-out relevant items, mean over folds "
            "(0 = equal opportunity)",
        ))  # fmt: skip
    ndcg = table[(table["metric"] == "ndcg") & (table["grouping"] == ACTIVITY)].set_index("group")
    if {"active", "inactive"} <= set(ndcg.index):
        rows.append(("ugf_gap", ACTIVITY,
                     float(ndcg.loc["active", "value"] - ndcg.loc["inactive", "value"]),
                     "NDCG@k of the 5% most active users minus the rest (0 = no gap)"))  # fmt: skip
    return pd.DataFrame(rows, columns=["metric", "grouping", "value", "definition"])


def accuracy_by_model(
    evaluation: Evaluation, labels: pd.Series, min_users: int = 30
) -> pd.DataFrame:
    """RMSE of every rating model overall and per user group (out-of-fold predictions).

    Returns ``model, overall_rmse, max_gap`` where ``max_gap`` is the largest minus the
    smallest group RMSE among groups with at least ``min_users`` users (lower = fairer).
    """
    rows = []
    for model, frame in evaluation.predictions.groupby("model", sort=False):
        error = (frame["prediction"] - frame["rating"]) ** 2
        groups = labels.reindex(frame["user_id"]).to_numpy()
        table = pd.DataFrame(
            {"group": groups, "se": error.to_numpy(), "user": frame["user_id"].to_numpy()}
        )
        stats = table.groupby("group").agg(mse=("se", "mean"), users=("user", "nunique"))
        stats = stats[stats["users"] >= min_users]
        rmse = np.sqrt(stats["mse"])
        rows.append((model, float(np.sqrt(error.mean())),
                     float(rmse.max() - rmse.min()) if len(rmse) > 1 else 0.0))  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "overall_rmse", "max_gap"])
