"""The audit's tables besides the metric rows.

Yao & Huang unfairness, delta-GAP, bias disparity, catalogue-level measures, and accuracy
across rating models. Each function takes what ``engine.audit.run.run_audit`` has computed
once (group labels, lists, out-of-fold predictions) and returns a tidy DataFrame with the
columns listed in its docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.audit import measures
from engine.audit.groups import ACTIVITY, ITEM_POPULARITY
from engine.data.types import RatingData
from engine.evaluate import Evaluation
from engine.ids import object_ids

YAO_COLUMNS = ["grouping", "group", "n_users", "value", "absolute", "under", "over",
               "non_parity", "n_items"]  # fmt: skip
DELTA_GAP_COLUMNS = ["group", "n_users", "gap_profile", "gap_recommended", "delta_gap"]
CATALOGUE_COLUMNS = ["metric", "grouping", "value", "definition"]


def yao_rows(
    grouping: str,
    labels: pd.Series,
    oof: pd.DataFrame,
    min_ratings: int,
    notes: list[str],
) -> list[dict[str, Any]]:
    """Yao & Huang (NeurIPS 2017) unfairness of each group vs the rest of the users.

    Over items with >= ``min_ratings`` ratings in both: value = mean_j |(E_g[y] - E_g[r])
    - (E_o[y] - E_o[r])|, absolute = mean_j ||E_g[y]-E_g[r]| - |E_o[y]-E_o[r]||, under/over
    the same with max(0, r - y) / max(0, y - r); non-parity = |mean_g(y) - mean_o(y)|. Lower
    is fairer; 0 = parity. A group that holds every user with an out-of-fold prediction
    (no "rest" to compare with) gets no row and a note; ``n_items`` = 0 (values NaN) when
    no item qualifies.
    """
    # Items as codes in id order (factorize with sort; a missing id stays missing): the
    # same groups, in the same order, as grouping by the ids, without hashing strings.
    codes, _ = pd.factorize(oof["item_id"], sort=True)
    items = np.where(codes >= 0, codes, np.nan)
    frame = pd.DataFrame({  # the columns used only: not a copy of the whole table per group
        "item_id": items, "group": labels.reindex(oof["user_id"]).to_numpy(),
        "prediction": oof["prediction"].to_numpy(), "rating": oof["rating"].to_numpy(),
    })  # fmt: skip
    rows, alone = [], []
    for group in sorted(frame["group"].dropna().unique(), key=str):
        inside = frame["group"] == group
        stats = (
            frame.assign(inside=inside)
            .groupby(["item_id", "inside"])
            .agg(y=("prediction", "mean"), r=("rating", "mean"), n=("rating", "size"))
            .unstack("inside")
        )
        if stats.shape[1] < 6:
            alone.append(str(group))
            continue
        ok = (stats["n"][True] >= min_ratings) & (stats["n"][False] >= min_ratings)
        s = stats[ok]
        dg, do = s["y"][True] - s["r"][True], s["y"][False] - s["r"][False]
        rows.append({
            "grouping": grouping, "group": str(group), "n_users": int(labels.eq(group).sum()),
            "value": _mean(s, (dg - do).abs()),
            "absolute": _mean(s, (dg.abs() - do.abs()).abs()),
            "under": _mean(s, (np.maximum(0, -dg) - np.maximum(0, -do)).abs()),
            "over": _mean(s, (np.maximum(0, dg) - np.maximum(0, do)).abs()),
            "non_parity": float(abs(frame.loc[inside, "prediction"].mean()
                                    - frame.loc[~inside, "prediction"].mean())),
            "n_items": int(ok.sum()),
        })  # fmt: skip
    if alone:
        notes.append(
            f"Yao & Huang unfairness is not computed for {grouping} = {', '.join(alone)}: "
            "every user with an out-of-fold prediction is in that group, so there is no rest "
            "to compare with."
        )
    return rows


def _mean(rows: pd.DataFrame, values: pd.Series) -> float:
    return float(values.mean()) if len(rows) else float("nan")


def delta_gap(
    labels: pd.Series, lists: pd.DataFrame, ratings: pd.DataFrame, popularity: pd.Series
) -> pd.DataFrame:
    """Delta-GAP per propensity group: (GAP_recommended - GAP_profile) / GAP_profile.

    GAP(g) is the mean over the group's users of the mean popularity (number of ratings)
    of their items (profile or list); < 0: the lists are less popular than the profiles.
    Columns ``DELTA_GAP_COLUMNS``; NaN for a group without users or lists.
    """
    profile = measures.per_user_mean(ratings, popularity)
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
    frames = []
    ratings, lists = object_ids(ratings), object_ids(lists)
    for grouping, labels in user_groupings.items():
        frame = measures.bias_disparity(labels, ratings, lists, categories)
        frames.append(frame.assign(grouping=grouping))
    return pd.concat(frames, ignore_index=True)


def catalogue(
    data: RatingData,
    lists: pd.DataFrame,
    item_groupings: dict[str, pd.DataFrame],
    evaluation: Evaluation,
    table: pd.DataFrame,
    threshold: float,
) -> pd.DataFrame:
    """Model-level measures, columns ``CATALOGUE_COLUMNS``.

    ``coverage``, ``gini_exposure`` (NaN when nothing is recommended), ``pop_rsp`` /
    ``rsp`` and ``pop_reo`` / ``reo`` per item grouping (REO: relevant = held-out rating
    >= ``threshold``, mean over the folds where it is defined, NaN when none is), and
    ``ugf_gap`` when both activity groups have NDCG rows.
    """
    catalogue_ids = np.asarray(pd.unique(data.ratings["item_id"]), dtype=object)
    gini = measures.exposure_gini(lists, catalogue_ids) if len(lists) else float("nan")
    rows = [
        ("coverage", "", measures.coverage(lists, len(catalogue_ids)),
         "share of the catalogue recommended to at least one user (higher = broader)"),
        ("gini_exposure", "", gini,
         "Gini of recommendation counts over the whole catalogue (0 = equal exposure)"),
    ]  # fmt: skip
    oof_lists = object_ids(evaluation.top_lists[evaluation.top_lists["model"] == "SVD"])
    # only the columns used, selected before any copy: on 25M ratings a whole-table copy of
    # the held-out predictions or of the ratings is gigabytes in this process
    held_out = evaluation.predictions
    is_relevant = (held_out["model"] == "SVD") & (held_out["rating"] >= threshold)
    relevant = object_ids(held_out.loc[is_relevant, ["fold", "user_id", "item_id"]])
    listed, rated = object_ids(lists), object_ids(data.ratings[["user_id", "item_id"]])
    for grouping, membership in item_groupings.items():
        rows.append((
            "pop_rsp" if grouping == ITEM_POPULARITY else "rsp", grouping,
            measures.rsp(listed, membership, rated),
            "std/mean over item groups of recommended share of candidate items (0 = parity)",
        ))  # fmt: skip
        reo_by_fold = np.array([
            measures.reo(oof_lists[oof_lists["fold"] == f], membership,
                         relevant[relevant["fold"] == f])
            for f in sorted(oof_lists["fold"].unique())
        ], float)  # fmt: skip
        defined = reo_by_fold[np.isfinite(reo_by_fold)]
        rows.append((
            "pop_reo" if grouping == ITEM_POPULARITY else "reo", grouping,
            float(defined.mean()) if len(defined) else float("nan"),
            "std/mean over item groups of recall of held-out relevant items, mean over folds "
            "(0 = equal opportunity)",
        ))  # fmt: skip
    ndcg = table[(table["metric"] == "ndcg") & (table["grouping"] == ACTIVITY)].set_index("group")
    if {"active", "inactive"} <= set(ndcg.index):
        rows.append(("ugf_gap", ACTIVITY,
                     float(ndcg.loc["active", "value"] - ndcg.loc["inactive", "value"]),
                     "NDCG@k of the 5% most active users minus the rest (0 = no gap)"))  # fmt: skip
    return pd.DataFrame(rows, columns=CATALOGUE_COLUMNS)


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
        codes, _ = pd.factorize(frame["user_id"])  # counted, never shown; -1 is a missing id
        users = np.where(codes >= 0, codes, np.nan)
        table = pd.DataFrame({"group": groups, "se": error.to_numpy(), "user": users})
        stats = table.groupby("group").agg(mse=("se", "mean"), users=("user", "nunique"))
        stats = stats[stats["users"] >= min_users]
        rmse = np.sqrt(stats["mse"])
        rows.append((model, float(np.sqrt(error.mean())),
                     float(rmse.max() - rmse.min()) if len(rmse) > 1 else 0.0))  # fmt: skip
    return pd.DataFrame(rows, columns=["model", "overall_rmse", "max_gap"])
