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

from engine.audit.groups import LONG_TAIL, item_popularity_groups
from engine.metrics import RANKING_METRICS
from engine.recommend import recommend_all

if TYPE_CHECKING:
    from engine.audit.registry import AuditSources
    from engine.model.svd import TrainedModel

#: The top-1 recommendation "rests on" the user's history when at least this many of
#: their ratings each add at least ``SUPPORT_MIN_CONTRIBUTION`` stars to it.
SUPPORT_MIN_RATINGS = 3
SUPPORT_MIN_CONTRIBUTION = 0.01
#: The rated model in ``Evaluation.predictions`` and ``Evaluation.user_ranking`` audited.
AUDITED_MODEL = "SVD"

Needs = Mapping[str, Any]


def ratings(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Return the canonical ratings (``user_id, item_id, rating, ...``)."""
    return sources.data.ratings


def out_of_fold(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Return the SVD's out-of-fold predictions (``user_id, item_id, rating, prediction``)."""
    predictions = sources.evaluation.predictions
    return predictions[predictions["model"] == AUDITED_MODEL]


def errors(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Sum each user's squared (``se``) and absolute (``ae``) errors, count them (``n``)."""
    oof = needs["oof"]
    error = oof["prediction"] - oof["rating"]
    by_user = pd.DataFrame({"user_id": oof["user_id"], "se": error**2, "ae": error.abs()})
    sums = by_user.groupby("user_id").agg(se=("se", "sum"), ae=("ae", "sum"), n=("se", "size"))
    return sums.assign(n=sums["n"].astype(float))


def ranking(sources: AuditSources, needs: Needs) -> pd.DataFrame:
    """Average each user's ranking metrics (``RANKING_METRICS``) over the folds.

    Index ``user_id``; users without a relevant held-out item are absent
    (``Evaluation.user_ranking``).
    """
    table = sources.evaluation.user_ranking
    table = table[table["model"] == AUDITED_MODEL]
    return table.groupby("user_id")[list(RANKING_METRICS)].mean()


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
    table, pop = needs["ratings"], needs["popularity"]
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


def model(sources: AuditSources, needs: Needs) -> TrainedModel:
    """Return the audited model (trained on all data)."""
    return sources.model


def explanations(sources: AuditSources, needs: Needs) -> pd.DataFrame | None:
    """Per user with a list: ``support`` and ``fidelity`` of the top-1 recommendation.

    Index ``user_id``; ``support`` is 0/1, ``fidelity`` in stars; ``None`` when
    ``AuditConfig.explanations`` is off.
    ``support`` is 1 when at least ``SUPPORT_MIN_RATINGS`` of the user's ratings each add
    at least ``SUPPORT_MIN_CONTRIBUTION`` stars in the exact linear split
    (``linear_history``); ``fidelity`` is the prediction minus the prediction after deleting
    the (up to) ``SUPPORT_MIN_RATINGS`` most positive ratings and refolding the user.
    """
    if not sources.config.explanations:
        return None
    # Imported here: engine.explain loads shap, which only this input needs.
    from engine.explain.history import linear_history

    trained, top1 = needs["model"], needs["lists"]
    top1 = top1[top1["rank"] == 1]
    users = trained.interactions.user_index(top1["user_id"].to_numpy())
    items = trained.interactions.item_index(top1["item_id"].to_numpy())
    ids = trained.interactions.item_ids
    support, fidelity = [], []
    for user, item in zip(users, items, strict=True):
        vector = trained.user_vector(user)
        values = linear_history(trained, vector, item).values[: len(vector.items)]
        support.append(float((values >= SUPPORT_MIN_CONTRIBUTION).sum() >= SUPPORT_MIN_RATINGS))
        drop = np.argsort(-values, kind="stable")[:SUPPORT_MIN_RATINGS]
        drop = drop[values[drop] > 0]
        keep = np.ones(len(vector.items), bool)
        keep[drop] = False
        refolded = trained.fold_in(ids[vector.items[keep]], vector.ratings[keep])
        fidelity.append(
            float(trained.score_vector(vector)[item] - trained.score_vector(refolded)[item])
        )
    index = pd.Index(top1["user_id"].to_numpy(), name="user_id")
    return pd.DataFrame({"support": support, "fidelity": fidelity}, index=index)
