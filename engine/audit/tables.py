"""The audit's tables besides the metric rows.

Yao & Huang unfairness, delta-GAP, bias disparity, catalogue-level measures, and accuracy
across rating models. Each function takes what ``engine.audit.run.run_audit`` has computed
once (group labels, lists, out-of-fold predictions) and returns a tidy DataFrame with the
columns listed in its docstring.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from engine.audit import measures
from engine.audit.groups import ACTIVITY, ITEM_POPULARITY
from engine.audit.inputs import AUDITED_MODEL, error_sums_by_user
from engine.data.types import RatingData
from engine.evaluate import Evaluation, model_rows
from engine.ids import object_ids

YAO_COLUMNS = ["grouping", "group", "n_users", "value", "absolute", "under", "over",
               "non_parity", "n_items"]  # fmt: skip
DELTA_GAP_COLUMNS = ["group", "n_users", "gap_profile", "gap_recommended", "delta_gap"]
CATALOGUE_COLUMNS = ["metric", "grouping", "value", "definition"]
#: Out-of-fold predictions summed at a time by ``yao_sums``.
YAO_ROWS_AT_ONCE = 1024 * 1024


class YaoSums(NamedTuple):
    """Yao & Huang's sufficient statistics of the out-of-fold predictions by user group.

    ``names``: the groups (labels), then one column for users without a label; ``n``,
    ``y``, ``r``: per (item, column) the count and the sums of predictions and ratings
    (``items x (len(names) + 1)``); ``n_all``, ``y_all``: per column the count and sum of
    predictions over every item.
    """

    names: pd.Index
    n: np.ndarray
    y: np.ndarray
    r: np.ndarray
    n_all: np.ndarray
    y_all: np.ndarray


def yao_rows(
    grouping: str,
    labels: pd.Series,
    oof: pd.DataFrame,
    min_ratings: int,
    notes: list[str],
) -> list[dict[str, Any]]:
    """Yao & Huang unfairness of each group of ``labels`` (``yao_rows_of_sums``).

    ``oof``: ``user_id, item_id, rating, prediction``; summed by ``yao_sums``.
    """
    return yao_rows_of_sums(grouping, labels, yao_sums(labels, oof), min_ratings, notes)


def yao_sums(labels: pd.Series, oof: pd.DataFrame) -> YaoSums:
    """``YaoSums`` of ``oof`` by ``labels`` (a missing item id is in no item)."""
    # by bincount (a user without a label in the last column), summed over
    # YAO_ROWS_AT_ONCE rows at a time: on 25M out-of-fold predictions the per-row codes of
    # all rows at once were 1 GB
    item_ids = pd.Index(pd.unique(oof["item_id"])).dropna()
    label_codes, names = pd.factorize(labels)  # -1: a user without a label
    width = len(names) + 1
    n, y, r = (np.zeros(len(item_ids) * width) for _ in range(3))
    n_all, y_all = np.zeros(width, np.int64), np.zeros(width)
    for start in range(0, len(oof), YAO_ROWS_AT_ONCE):
        part = oof.iloc[start : start + YAO_ROWS_AT_ONCE]
        items = item_ids.get_indexer(part["item_id"])
        positions = labels.index.get_indexer(part["user_id"])
        group = np.where(positions >= 0, label_codes[positions], -1)
        group[group < 0] = len(names)  # unlabelled users: only ever in the rest
        prediction, rating = part["prediction"].to_numpy(float), part["rating"].to_numpy(float)
        known = items >= 0
        key = items[known] * width + group[known]
        n += np.bincount(key, minlength=len(n))
        y += np.bincount(key, prediction[known], minlength=len(y))
        r += np.bincount(key, rating[known], minlength=len(r))
        n_all += np.bincount(group, minlength=width)
        y_all += np.bincount(group, prediction, minlength=width)
    n, y, r = (cells.reshape(-1, width) for cells in (n, y, r))
    return YaoSums(names, n, y, r, n_all, y_all)


def yao_rows_of_sums(
    grouping: str,
    labels: pd.Series,
    sums: YaoSums,
    min_ratings: int,
    notes: list[str],
) -> list[dict[str, Any]]:
    """Yao & Huang (NeurIPS 2017) unfairness of each group vs the rest of the users.

    Over items with >= ``min_ratings`` ratings in both: value = mean_j |(E_g[y] - E_g[r])
    - (E_o[y] - E_o[r])|, absolute = mean_j ||E_g[y]-E_g[r]| - |E_o[y]-E_o[r]||, under/over
    the same with max(0, r - y) / max(0, y - r); non-parity = |mean_g(y) - mean_o(y)|. Lower
    is fairer; 0 = parity. Each group's rest is the item's total less the group. A group
    that holds every user with an out-of-fold prediction (no "rest" to compare with) gets
    no row and a note; ``n_items`` = 0 (values NaN) when no item qualifies.
    """
    names, n, y, r, n_all, y_all = sums
    rows, alone = [], []
    for g in sorted((g for g in range(len(names)) if n_all[g]), key=lambda g: str(names[g])):
        n_in, n_out = n[:, g], n.sum(axis=1) - n[:, g]
        if not n_in.any() or not n_out.any():
            alone.append(str(names[g]))
            continue
        ok = (n_in >= min_ratings) & (n_out >= min_ratings)
        dg = (y[ok, g] - r[ok, g]) / n_in[ok]
        do = (y[ok].sum(axis=1) - y[ok, g] - (r[ok].sum(axis=1) - r[ok, g])) / n_out[ok]
        rows.append({
            "grouping": grouping, "group": str(names[g]), "n_users": int(labels.eq(names[g]).sum()),
            "value": _mean(np.abs(dg - do)),
            "absolute": _mean(np.abs(np.abs(dg) - np.abs(do))),
            "under": _mean(np.abs(np.maximum(0, -dg) - np.maximum(0, -do))),
            "over": _mean(np.abs(np.maximum(0, dg) - np.maximum(0, do))),
            "non_parity": float(abs(y_all[g] / n_all[g] - (y_all.sum() - y_all[g])
                                    / (n_all.sum() - n_all[g]))),
            "n_items": int(ok.sum()),
        })  # fmt: skip
    if alone:
        notes.append(
            f"Yao & Huang unfairness is not computed for {grouping} = {', '.join(alone)}: "
            "every user with an out-of-fold prediction is in that group, so there is no rest "
            "to compare with."
        )
    return rows


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def delta_gap(
    labels: pd.Series, lists: pd.DataFrame, profile: pd.Series, popularity: pd.Series
) -> pd.DataFrame:
    """Delta-GAP per propensity group: (GAP_recommended - GAP_profile) / GAP_profile.

    GAP(g) is the mean over the group's users of the mean popularity (number of ratings)
    of their items (profile or list); < 0: the lists are less popular than the profiles.
    ``profile``: each user's mean popularity of the rated items (the audit's
    ``profile["mean_popularity"]``), ``popularity``: ratings per item. Columns
    ``DELTA_GAP_COLUMNS``; NaN for a group without users or lists.
    """
    recommended = measures.arp(lists, popularity)
    rows = []
    for group in ("niche", "diverse", "blockbuster"):
        users = labels.index[labels == group]
        gp, gr = profile.reindex(users).mean(), recommended.reindex(users).mean()
        gap = (gr - gp) / gp if np.isfinite(gp) and np.isfinite(gr) and gp > 0 else np.nan
        rows.append((group, len(users), gp, gr, gap))
    return pd.DataFrame(rows, columns=DELTA_GAP_COLUMNS)


def bias_disparity(
    user_groupings: dict[str, pd.Series],
    item_groupings: dict[str, pd.DataFrame],
    ratings: pd.DataFrame,
    lists: pd.DataFrame,
) -> pd.DataFrame:
    """``measures.bias_disparity`` for every user grouping over the genres (empty without)."""
    categories = item_groupings.get("genres")
    if categories is None:
        return pd.DataFrame()
    ratings = object_ids(ratings)
    counts = {grouping: measures.category_counts(labels, ratings, categories)
              for grouping, labels in user_groupings.items()}  # fmt: skip
    return bias_disparity_rows(user_groupings, categories, counts, lists)


def bias_disparity_rows(
    user_groupings: dict[str, pd.Series],
    categories: pd.DataFrame,
    counts: dict[str, pd.DataFrame],
    lists: pd.DataFrame,
) -> pd.DataFrame:
    """``measures.bias_disparity_of_counts`` for every user grouping (``counts[grouping]``).

    Columns ``user_group, category, b_input, b_recommended, bias_disparity, grouping``.
    """
    lists = object_ids(lists)
    frames = [
        measures.bias_disparity_of_counts(counts[grouping], labels, lists, categories)
        .assign(grouping=grouping)
        for grouping, labels in user_groupings.items()
    ]  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def catalogue(
    data: RatingData,
    lists: pd.DataFrame,
    item_groupings: dict[str, pd.DataFrame],
    evaluation: Evaluation,
    table: pd.DataFrame,
    threshold: float,
) -> pd.DataFrame:
    """Model-level measures (``catalogue_rows``) of an in-memory audit.

    REO: relevant = the audited model's held-out rating >= ``threshold``, its fold lists.
    """
    catalogue_ids = np.asarray(pd.unique(data.ratings["item_id"]), dtype=object)
    # REO's per-item counts of hits and relevant pairs, fold by fold, once for every item
    # grouping: only that fold's pairs are copied (on 25M ratings a copy of the relevant
    # held-out pairs of every fold is 0.5 GB)
    top_lists, held_out, pair = evaluation.top_lists, evaluation.predictions, ["user_id", "item_id"]
    audited_lists = (top_lists["model"] == AUDITED_MODEL).to_numpy()
    is_relevant = (
        (held_out["model"] == AUDITED_MODEL) & (held_out["rating"] >= threshold)
    ).to_numpy()
    counts_by_fold = [
        tuple(ids.value_counts() for ids in measures.held_out_hits(
            object_ids(top_lists.loc[audited_lists & (top_lists["fold"] == f).to_numpy(), pair]),
            object_ids(held_out.loc[is_relevant & (held_out["fold"] == f).to_numpy(), pair]),
        ))
        for f in sorted(top_lists.loc[audited_lists, "fold"].unique())
    ]  # fmt: skip
    listed = object_ids(lists)
    # the listed users' ratings per item (RSP's candidates): one pass over the ratings
    ratings = data.ratings
    rated = ratings.loc[ratings["user_id"].isin(pd.unique(listed["user_id"])), "item_id"]
    return catalogue_rows(
        listed, catalogue_ids, item_groupings, rated.value_counts(), counts_by_fold, table
    )


def catalogue_rows(
    lists: pd.DataFrame,
    catalogue_ids: np.ndarray,
    item_groupings: dict[str, pd.DataFrame],
    rated_by_listed: pd.Series,
    counts_by_fold: list[tuple[pd.Series, pd.Series]],
    table: pd.DataFrame,
) -> pd.DataFrame:
    """Model-level measures, columns ``CATALOGUE_COLUMNS``.

    ``coverage``, ``gini_exposure`` (NaN when nothing is recommended) of ``lists`` over the
    catalogue ``catalogue_ids``; ``pop_rsp`` / ``rsp`` per item grouping
    (``measures.rsp_of_counts`` with ``rated_by_listed``: per item, the ratings by users
    with a list) and ``pop_reo`` / ``reo`` (``reo_row`` of ``counts_by_fold``); ``ugf_gap``
    when both activity groups have NDCG rows in ``table``.
    """
    gini = measures.exposure_gini(lists, catalogue_ids) if len(lists) else float("nan")
    rows = [
        ("coverage", "", measures.coverage(lists, len(catalogue_ids)),
         "share of the catalogue recommended to at least one user (higher = broader)"),
        ("gini_exposure", "", gini,
         "Gini of recommendation counts over the whole catalogue (0 = equal exposure)"),
    ]  # fmt: skip
    for grouping, membership in item_groupings.items():
        rows.append((
            "pop_rsp" if grouping == ITEM_POPULARITY else "rsp", grouping,
            measures.rsp_of_counts(lists, membership, rated_by_listed),
            "std/mean over item groups of recommended share of candidate items (0 = parity)",
        ))  # fmt: skip
        rows.append(reo_row(grouping, counts_by_fold, membership))
    rows += ugf_gap_rows(table)
    return pd.DataFrame(rows, columns=CATALOGUE_COLUMNS)


def reo_row(
    grouping: str, counts_by_fold: list[tuple[pd.Series, pd.Series]], membership: pd.DataFrame
) -> tuple[str, str, float, str]:
    """Return the catalogue row of REO by ``grouping``: the mean over the folds defining it.

    ``counts_by_fold``: per fold, the per-item counts of hits and of relevant held-out
    pairs (``measures.reo_of_counts``); NaN when no fold defines it.
    """
    by_fold = np.array(
        [measures.reo_of_counts(hits, relevant, membership) for hits, relevant in counts_by_fold],
        float,
    )
    defined = by_fold[np.isfinite(by_fold)]
    return (
        "pop_reo" if grouping == ITEM_POPULARITY else "reo", grouping,
        float(defined.mean()) if len(defined) else float("nan"),
        "std/mean over item groups of recall of held-out relevant items, mean over folds "
        "(0 = equal opportunity)",
    )  # fmt: skip


def ugf_gap_rows(table: pd.DataFrame) -> list[tuple[str, str, float, str]]:
    """Return the catalogue's ``ugf_gap`` row if both activity groups have NDCG rows."""
    ndcg = table[(table["metric"] == "ndcg") & (table["grouping"] == ACTIVITY)].set_index("group")
    if not {"active", "inactive"} <= set(ndcg.index):
        return []
    gap = float(ndcg.loc["active", "value"] - ndcg.loc["inactive", "value"])
    return [("ugf_gap", ACTIVITY, gap,
             "NDCG@k of the 5% most active users minus the rest (0 = no gap)")]  # fmt: skip


def accuracy_by_model(
    evaluation: Evaluation, labels: pd.Series, min_users: int = 30
) -> pd.DataFrame:
    """RMSE of every rating model overall and per user group (out-of-fold predictions).

    ``accuracy_of_error_sums`` of each model's per-user error sums (the audit's
    ``error_sums_by_user`` of the model's rows, read as a view).
    """
    return accuracy_of_error_sums(error_sums_by_model(evaluation), labels, min_users)


def error_sums_by_model(evaluation: Evaluation) -> dict[str, pd.DataFrame]:
    """Sum each rating model's held-out errors per user: model -> ``error_sums_by_user``."""
    predictions, columns = evaluation.predictions, ["user_id", "rating", "prediction"]
    return {
        model: error_sums_by_user(model_rows(predictions, model, columns))
        for model in pd.unique(predictions["model"])
    }


def accuracy_of_error_sums(
    sums: dict[str, pd.DataFrame], labels: pd.Series, min_users: int = 30
) -> pd.DataFrame:
    """RMSE of every rating model overall and per user group, from per-user error sums.

    ``sums``: model -> ``se, n`` per user (index ``user_id``; summed squared error of the
    held-out predictions and their count). Returns ``model, overall_rmse, max_gap,
    groups_compared`` (models in the order of ``sums``) where ``max_gap`` is the largest minus
    the smallest group RMSE among the ``groups_compared`` groups with at least ``min_users``
    users (lower = fairer; NaN when fewer than two such groups: nothing was compared, which
    is not a gap of 0); users without a label count only overall. A group's mean squared
    error is its users' summed squared errors over their count.
    """
    rows = []
    for model, per_user in sums.items():
        stats = (
            per_user[["se", "n"]]
            .assign(group=labels.reindex(per_user.index).to_numpy())
            .groupby("group")
            .agg(se=("se", "sum"), n=("n", "sum"), users=("n", "size"))
        )
        stats = stats[stats["users"] >= min_users]
        rmse = np.sqrt(stats["se"] / stats["n"])
        overall = np.sqrt(per_user["se"].sum() / per_user["n"].sum())
        rows.append((model, float(overall),
                     float(rmse.max() - rmse.min()) if len(rmse) > 1 else np.nan,
                     len(rmse)))  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "overall_rmse", "max_gap", "groups_compared"])


#: Columns of ``ranking_by_group``.
RANKING_BY_GROUP_COLUMNS = ["grouping", "group", "model", "n_users", "value", "difference",
                            "ci_low", "ci_high"]  # fmt: skip
#: ``ranking_by_group``'s row of every user of a model, before its groups.
ALL_USERS = "all users"
#: The standard normal's 97.5% quantile: a two-sided 95% interval.
Z_95 = 1.959963984540054


def ranking_by_group(
    means: dict[str, pd.Series], groupings: dict[str, pd.Series], min_users: int = 30
) -> pd.DataFrame:
    """Each model's mean ranking metric over all users and per user group (higher is better).

    ``means``: model -> one value per user (index ``user_id``), over the users with a
    relevant held-out rating: each user's metric averaged over the folds in which they were
    ranked (``engine.audit.inputs.ranking_means``, the audit's convention for top-N
    utility); the first model is the reference the others are compared with (the audited
    SVD). ``groupings``: grouping -> labels (index ``user_id``, as
    ``engine.audit.run.user_groupings_of``).

    Returns ``RANKING_BY_GROUP_COLUMNS``: per grouping and model, first the row
    ``ALL_USERS`` (every user of ``means``, labelled or not), then one row per group in label
    order. ``n_users`` counts the group's users in ``means``, ``value`` is their mean, NaN
    where fewer than ``min_users`` (too few to compare, as in the audit), so the SVD's group
    values are the audit's values of that metric for the same groups. ``difference`` is the
    mean over the group's users ranked by both of the model's value minus the reference's
    (paired: the same users), with a 95% normal-approximation interval ``ci_low, ci_high``
    (mean +/- 1.96 standard errors of the paired differences); NaN for the reference, and
    where the value is.
    """
    reference = next(iter(means), None)
    base = means[reference].dropna() if reference is not None else pd.Series(dtype=float)
    rows = []
    for grouping, labels in groupings.items():
        names = sorted(pd.unique(labels.dropna()).tolist(), key=str)
        for model, values in means.items():
            values = values.dropna()
            paired = None if model == reference else (values - base).dropna()
            rows.append(_ranking_row(grouping, ALL_USERS, model, values, paired, 1))
            label = labels.reindex(values.index).to_numpy()
            pair_label = None if paired is None else labels.reindex(paired.index).to_numpy()
            for name in names:
                in_pairs = None if paired is None else paired[pair_label == name]
                rows.append(_ranking_row(grouping, name, model, values[label == name], in_pairs,
                                         min_users))  # fmt: skip
    return pd.DataFrame(rows, columns=RANKING_BY_GROUP_COLUMNS)


def _ranking_row(
    grouping: str,
    group: str,
    model: str,
    values: pd.Series,
    paired: pd.Series | None,
    min_users: int,
) -> tuple:
    """One ``ranking_by_group`` row: the mean of ``values`` and of the ``paired`` differences."""
    if len(values) < max(min_users, 1):
        return (grouping, group, model, len(values), np.nan, np.nan, np.nan, np.nan)
    difference = low = high = np.nan
    if paired is not None and len(paired) >= 2:
        difference = float(paired.mean())
        half = Z_95 * float(paired.std(ddof=1)) / np.sqrt(len(paired))
        low, high = difference - half, difference + half
    return (grouping, group, model, len(values), float(values.mean()), difference, low, high)
