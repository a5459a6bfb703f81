"""Builders of the audit's shared inputs (declared in ``engine.audit.registry``).

Each builder takes the audit's ``AuditSources`` (data, model, evaluation, settings) and
a view of the inputs it declares it needs, and returns one input. The registry builds each
input at most once per audit, on first use, and only when a metric (or ``run_audit``)
names it. A builder returns ``None`` when the input does not exist for this audit (no item
genres, explanations switched off): the metrics that need it are not audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.audit import measures
from engine.audit.groups import LONG_TAIL, item_popularity_groups
from engine.evaluate import model_rows
from engine.metrics import RANKING_METRICS
from engine.model import ridge
from engine.recommend import recommend_all

if TYPE_CHECKING:
    from engine.audit.registry import AuditSources
    from engine.model.svd import TrainedModel

#: Explanation support is the share of a recommendation's history effect held by this
#: many ratings (those with the largest |contribution|); deletion fidelity deletes the
#: (up to) this many most positive ones.
SUPPORT_TOP_RATINGS = 3
#: The rated model in ``Evaluation.predictions`` and ``Evaluation.user_ranking`` audited.
AUDITED_MODEL = "SVD"

Needs = Mapping[str, Any]


def ratings(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Return the canonical ratings (``user_id, item_id, rating, ...``)."""
    return sources.data.ratings


def out_of_fold(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Return the SVD's out-of-fold predictions (``user_id, item_id, rating, prediction``).

    Held for the audit's whole run: a view of the evaluation's rows where it can be
    (``engine.evaluate.model_rows``).
    """
    columns = ["user_id", "item_id", "rating", "prediction"]
    return model_rows(sources.evaluation.predictions, AUDITED_MODEL, columns)


def errors(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Sum each user's squared and absolute errors (``error_sums_by_user`` of ``oof``)."""
    return error_sums_by_user(needs["oof"])


def error_sums_by_user(predictions: pd.DataFrame) -> pd.DataFrame:
    """Sum each user's squared (``se``) and absolute (``ae``) errors, count them (``n``).

    ``predictions``: ``user_id, rating, prediction``. Index ``user_id``, sorted; a missing
    id is in no user. Summed by ``np.bincount`` over the users' codes, not by a groupby
    over a table of the errors (on 25M ratings that table and its grouping held 1.4 GB).
    """
    codes, users = pd.factorize(predictions["user_id"], sort=True)
    error = predictions["prediction"].to_numpy(float) - predictions["rating"].to_numpy(float)
    if (codes < 0).any():
        codes, error = codes[codes >= 0], error[codes >= 0]
    n = np.bincount(codes, minlength=len(users)).astype(float)
    se = np.bincount(codes, error * error, minlength=len(users))
    ae = np.bincount(codes, np.abs(error, out=error), minlength=len(users))
    return pd.DataFrame({"se": se, "ae": ae, "n": n}, index=users.rename("user_id"))


def ranking(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Average each user's ranking metrics (``RANKING_METRICS``) over the folds.

    Index ``user_id``; users without a relevant held-out item are absent
    (``Evaluation.user_ranking``).
    """
    return ranking_means(sources.evaluation.user_ranking, AUDITED_MODEL, list(RANKING_METRICS))


def ranking_means(user_ranking: pd.DataFrame, model: str, metrics: list[str]) -> pd.DataFrame:
    """Average ``model``'s per-user ``metrics`` over the folds in which each user was ranked.

    ``user_ranking``: ``Evaluation.user_ranking``. Index ``user_id``; users without a
    relevant held-out item are absent.
    """
    return user_ranking[user_ranking["model"] == model].groupby("user_id")[metrics].mean()


def lists(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Recommend every user's top-``k`` unrated items with the model trained on all data."""
    return recommend_all(sources.model, sources.k)


def popularity(sources: AuditSources, needs: Needs) -> pd.Series:
    """Count the ratings per item (index ``item_id``), most rated first."""
    return needs["ratings"]["item_id"].value_counts()


def popularity_groups(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Split the items into short head and long tail (``item_popularity_groups``)."""
    return item_popularity_groups(needs["popularity"])


def long_tail(sources: AuditSources, needs: Needs) -> pd.Series:
    """Mark each item (index ``item_id``) in the long tail."""
    return needs["popularity_groups"][LONG_TAIL]


def profile(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Profile each user (index ``user_id``): ``n_ratings, mean_rating, mean_popularity``."""
    return user_profile(needs["ratings"], needs["popularity"])


def user_profile(ratings: pd.DataFrame, popularity: pd.Series) -> pd.DataFrame:
    """Profile each user (index ``user_id``): ``n_ratings, mean_rating, mean_popularity``.

    ``ratings``: ``user_id, item_id, rating``; ``popularity``: ratings per item (index
    ``item_id``); ``mean_popularity`` is the mean popularity of the items a user rated.
    """
    table, pop = ratings[["user_id", "item_id", "rating"]], popularity
    return table.assign(pop=pop.reindex(table["item_id"]).to_numpy()).groupby("user_id").agg(
        n_ratings=("rating", "size"), mean_rating=("rating", "mean"),
        mean_popularity=("pop", "mean"))  # fmt: skip


def n_users(sources: AuditSources, needs: Needs) -> int:
    """Return the number of users in the data."""
    return sources.data.n_users


def genres(sources: AuditSources, needs: Needs) -> pd.Series | None:
    """Return each item's genres (tuples, index ``item_id``); ``None`` without genres."""
    items = sources.data.items
    return items["genres"] if items is not None and "genres" in items else None


def history_genres(sources: AuditSources, needs: Needs) -> pd.DataFrame | None:
    """Each user's genre mix ``p(g|u)`` of the rated items (``measures.genre_distribution``).

    Users x genres, rows summing to 1; users who rated no item with a genre are absent.
    ``None`` without genres.
    """
    genre_table = needs["genres"]
    if genre_table is None:
        return None
    return measures.genre_distribution(needs["ratings"][["user_id", "item_id"]], genre_table)


def model(sources: AuditSources, needs: Needs) -> TrainedModel:
    """Return the audited model (trained on all data)."""
    return sources.model


#: The item side a user's explanation reads: ``(mu, b_i, Q)`` over item indices.
ItemSide = tuple[float, np.ndarray, np.ndarray]


def history_contributions(trained: TrainedModel, user: int, items: np.ndarray) -> np.ndarray:
    """Exact linear split of ``items``' predictions over ``user``'s ratings.

    Returns ``C`` of shape ``(n_ratings, len(items))``: ``C[j, t]`` is the term of the
    user's rating ``j`` in the prediction of ``items[t]`` (the ridge fold-in split
    ``c_j = w_j (r_uj - mu - b_j)``, ``w_j = x_j^T A^-1 x_i``), the same values as
    ``engine.explain.history.linear_history`` for each item, for the whole list at once.
    """
    vector = trained.user_vector(user)
    side = (trained.mu, trained.bi, trained.Q)
    return split_contributions(side, trained.config.refit_lambda, vector.items, vector.ratings,
                               items)  # fmt: skip


def split_contributions(
    side: ItemSide, lam: float, rated: np.ndarray, ratings: np.ndarray, items: np.ndarray
) -> np.ndarray:
    """``history_contributions`` of a user given by their ``rated`` items and ``ratings``.

    ``side``: the model's ``(mu, b_i, Q)``; ``lam``: its refit lambda. Nothing else of the
    model is read, so the executors of ``engine.spark.explanations`` call it too.
    """
    mu, bi, Q = side
    X = ridge.design(Q, rated)
    if len(X) == 0:
        return np.zeros((0, len(items)))
    targets = ridge.design(Q, np.asarray(items)).T  # columns x_i = [1, q_i]
    weights = X @ np.linalg.solve(ridge.ridge_matrix(X, lam), targets)
    return weights * ridge.residuals(mu, bi, rated, ratings)[:, None]


def explanation_measures(
    side: ItemSide,
    lam: float,
    theta: np.ndarray,
    rated: np.ndarray,
    ratings: np.ndarray,
    listed: np.ndarray,
) -> tuple[float, float]:
    """One user's explanation ``(support, fidelity)`` (definitions: ``explanations``).

    ``theta``: the user's trained ``[b_u, p_u]``; ``rated``/``ratings``: their rated item
    indices and ratings, in the order ties are broken in (ascending item index);
    ``listed``: their top-k item indices, best first. ``support`` is NaN when no listed item
    has any history effect.
    """
    mu, bi, Q = side
    contributions = split_contributions(side, lam, rated, ratings, listed)
    shares = top_share(contributions)
    support = float(np.nanmean(shares)) if np.isfinite(shares).any() else np.nan
    values = contributions[:, 0]  # the top-1 recommendation
    drop = np.argsort(-values, kind="stable")[:SUPPORT_TOP_RATINGS]
    drop = drop[values[drop] > 0]
    keep = np.ones(len(rated), bool)
    keep[drop] = False
    refolded = ridge.fit_user(mu, bi, Q, rated[keep], ratings[keep], lam)
    top = listed[:1]  # two scores, not two whole catalogues, per user
    before = mu + theta[0] + bi[top] + Q[top] @ theta[1:]
    after = mu + refolded[0] + bi[top] + Q[top] @ refolded[1:]
    return support, float(before[0] - after[0])


def top_share(contributions: np.ndarray, top: int = SUPPORT_TOP_RATINGS) -> np.ndarray:
    r"""Share of the history effect held by the ``top`` ratings, per column.

    :math:`s = \sum_{j \in \mathrm{top}} |c_j| / \sum_j |c_j|` over one recommendation's
    contributions ``c_j`` (a column of ``contributions``), ``top`` = the ratings with the
    largest ``|c_j|``. Range [0, 1] (at least ``min(top, n) / n``; 1 with ``top`` or fewer
    ratings); higher = the explanation rests on few ratings and is easier to read.
    Scale-free: it does not depend on the rating scale or the size of the effect. NaN
    for a column without any effect (all ``c_j`` = 0, or no rating).
    """
    magnitude = np.abs(np.asarray(contributions, float))
    total = magnitude.sum(axis=0)
    held = -np.sort(-magnitude, axis=0)[:top].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, held / total, np.nan)


def explanations(sources: AuditSources, needs: Needs) -> pd.DataFrame | None:
    """Per user with a list: explanation ``support`` and ``fidelity``.

    Index ``user_id``; ``None`` when ``AuditConfig.explanations`` is off.
    ``support`` (in [0, 1], higher = easier to read) is the mean over the user's top-k
    list of ``top_share``: the share of each recommendation's history effect
    (``sum_j |c_j|`` in the exact linear split, ``history_contributions``) held by the
    ``SUPPORT_TOP_RATINGS`` ratings with the largest ``|c_j|`` (NaN when no list item has
    any effect). ``fidelity`` (stars) is the top-1 prediction minus the prediction after
    deleting the (up to) ``SUPPORT_TOP_RATINGS`` most positive ratings and refolding the
    user.
    """
    if not sources.config.explanations:
        return None
    trained, listed = needs["model"], needs["lists"]
    listed = listed.sort_values(["user_id", "rank"], kind="stable")
    user_ids = pd.unique(listed["user_id"])
    if not len(user_ids):
        return pd.DataFrame({"support": [], "fidelity": []},
                            index=pd.Index([], name="user_id", dtype=object))  # fmt: skip
    users = trained.interactions.user_index(user_ids)
    per_user = listed.groupby("user_id", sort=False)["item_id"]
    side, lam = (trained.mu, trained.bi, trained.Q), trained.config.refit_lambda
    support, fidelity = [], []
    for user, (_, list_items) in zip(users, per_user, strict=True):
        vector = trained.user_vector(user)
        measured = explanation_measures(
            side, lam, np.r_[vector.bu, vector.pu], vector.items, vector.ratings,
            trained.interactions.item_index(list_items.to_numpy()),
        )  # fmt: skip
        support.append(measured[0])
        fidelity.append(measured[1])
    index = pd.Index(user_ids, name="user_id")
    return pd.DataFrame({"support": support, "fidelity": fidelity}, index=index)
