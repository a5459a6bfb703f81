r"""Audit one system's outputs with the built-in audit (``engine.audit.run_audit``).

The system's top-``k`` lists are given to ``run_audit`` as its ``lists`` and its rating
predictions as its ``oof`` input, so every family, statistic, tier and minimum size is the
built-in audit's own. What differs is where utility and accuracy come from:

* Top-N utility: each user's list against the user's *held-out* ratings
  (``engine.external.heldout``): relevant = held-out rating >= threshold; per user with a
  list and at least one relevant held-out item, ``engine.metrics.ranking_scores`` (NDCG@k,
  Recall@k, ...). Users with relevant held-out items but no list are counted in a note.
* Accuracy: the predictions of held-out pairs, clipped to the rating scale (as the
  built-in accuracy), against the held-out rating. Predictions of pairs without a held-out
  rating are not used (counted).
* The data the audit rests on is ``HeldOut.train``: item popularity, long tail, user
  profiles and groups. Listed items outside it (never rated before the cut) and listed users
  without a rating in it are left out of the audited lists, counted in a note.
* Explanation support and fidelity are not audited: they explain the built-in SVD, not the
  system (``engine.external.surrogate`` explains a system through a surrogate instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from engine.audit import AuditConfig, AuditResult, run_audit
from engine.evaluate import Evaluation, EvaluationConfig
from engine.external.heldout import HeldOut
from engine.external.types import ExternalSystem
from engine.metrics import RANKING_METRICS, ranking_scores, resolve_threshold
from engine.model.svd import TrainedModel

#: Columns of ``SystemAudit.ranking``.
RANKING_COLUMNS = ["user_id", "n_relevant", *RANKING_METRICS]
#: Columns of ``SystemAudit.accuracy`` (the audit's ``oof`` input).
ACCURACY_COLUMNS = ["user_id", "item_id", "rating", "prediction", "raw_prediction"]


@dataclass(frozen=True)
class SystemAudit:
    """One system audited on the held-out ratings.

    Attributes
    ----------
    name
        The system's name.
    result
        The built-in ``AuditResult`` of its lists and predictions (module docstring).
    lists
        The audited lists: ``user_id, rank, item_id, score`` with ``rank <= k``.
    ranking
        Per user with a list and a relevant held-out item: ``RANKING_COLUMNS``.
    accuracy
        The held-out pairs the system predicted: ``ACCURACY_COLUMNS`` (``prediction``
        clipped to the scale, ``raw_prediction`` as given); empty without predictions.
    notes
        Sentences on what was left out of this system's audit.
    """

    name: str
    result: AuditResult
    lists: pd.DataFrame
    ranking: pd.DataFrame
    accuracy: pd.DataFrame
    has_lists: bool
    has_predictions: bool
    notes: list[str] = field(default_factory=list)


def audited_lists(
    lists: pd.DataFrame, heldout: HeldOut, k: int, notes: list[str], name: str
) -> pd.DataFrame:
    """Top-``k`` rows of ``lists`` whose user and item are in ``heldout.train`` (counted)."""
    top = lists[lists["rank"] <= k]
    train = heldout.train.ratings
    known_items = top["item_id"].isin(pd.Index(pd.unique(train["item_id"])))
    known_users = top["user_id"].isin(pd.Index(pd.unique(train["user_id"])))
    if (~known_items).any():
        notes.append(
            f"{name}: {int((~known_items).sum()):,} listed items (of "
            f"{top.loc[~known_items, 'item_id'].nunique():,} distinct items) have no rating "
            "in the data the lists rest on: left out of the audited lists."
        )
    if (~known_users).any():
        notes.append(
            f"{name}: {top.loc[~known_users, 'user_id'].nunique():,} listed users have no "
            "rating in the data the lists rest on: left out of the audit."
        )
    kept = top[known_items & known_users]
    return kept[["user_id", "rank", "item_id", "score"]].reset_index(drop=True)


def user_ranking(lists: pd.DataFrame, held: pd.DataFrame, k: int, threshold: float) -> pd.DataFrame:
    """Ranking metrics of each listed user with a relevant held-out item (``RANKING_COLUMNS``).

    ``relevant = held-out rating >= threshold``; ``hit_r`` = the item at rank ``r <= k`` is
    relevant; metrics as ``engine.metrics.ranking_scores``.
    """
    relevant = held[held["rating"] >= threshold]
    users = pd.Index(sorted(set(relevant["user_id"]) & set(lists["user_id"])), dtype=object)
    if not len(users):
        return pd.DataFrame({c: pd.Series([], dtype=object if c == "user_id" else float)
                             for c in RANKING_COLUMNS})  # fmt: skip
    top = lists[(lists["rank"] <= k) & lists["user_id"].isin(users)]
    hit = top.merge(relevant[["user_id", "item_id"]].assign(hit=True), how="left",
                    on=["user_id", "item_id"])  # fmt: skip
    matrix = np.zeros((len(users), k), bool)
    rows = users.get_indexer(hit["user_id"])
    matrix[rows, hit["rank"].to_numpy() - 1] = hit["hit"].fillna(False).to_numpy(bool)
    n_relevant = relevant.groupby("user_id").size().reindex(users).to_numpy(float)
    table = ranking_scores(matrix, n_relevant, k)
    table.insert(0, "n_relevant", n_relevant.astype(int))
    table.insert(0, "user_id", users.to_numpy())
    return table


def accuracy_pairs(
    predictions: pd.DataFrame | None, held: pd.DataFrame, scale: tuple[float, float]
) -> pd.DataFrame:
    """Held-out pairs the system predicted: ``ACCURACY_COLUMNS`` (prediction clipped)."""
    if predictions is None or not len(predictions):
        return pd.DataFrame({c: pd.Series([], dtype=object if c.endswith("_id") else float)
                             for c in ACCURACY_COLUMNS})  # fmt: skip
    pairs = held[["user_id", "item_id", "rating"]].merge(
        predictions[["user_id", "item_id", "prediction"]], on=["user_id", "item_id"]
    )
    return pairs.assign(
        raw_prediction=pairs["prediction"],
        prediction=np.clip(pairs["prediction"].to_numpy(float), scale[0], scale[1]),
    )[ACCURACY_COLUMNS]


def _evaluation(
    model: TrainedModel,
    heldout: HeldOut,
    lists: pd.DataFrame,
    ranking: pd.DataFrame,
    k: int,
    threshold: float,
) -> Evaluation:
    """Return an ``Evaluation`` holding the system's held-out results as one split of model "SVD".

    The audit reads the audited model's rows (``"SVD"``) for the catalogue's REO (its lists
    and the held-out relevant pairs); the held-out ratings stand in as ``predictions`` rows
    (their ``prediction`` is unused there: accuracy comes from the given ``oof``).
    """
    held = heldout.ratings
    predictions = pd.DataFrame({
        "model": "SVD", "fold": 0, "user_id": held["user_id"].to_numpy(object),
        "item_id": held["item_id"].to_numpy(object), "rating": held["rating"].to_numpy(float),
        "prediction": np.nan, "raw_prediction": np.nan, "was_impossible": False, "reason": "",
    })  # fmt: skip
    return Evaluation(
        config=model.config,
        evaluation=EvaluationConfig(k=k, threshold=threshold, models=("SVD",)),
        predictions=predictions,
        fold_metrics=pd.DataFrame(columns=["model", "fold", "metric", "value"]),
        user_ranking=ranking.assign(model="SVD", fold=0),
        top_lists=lists[["user_id", "rank", "item_id"]].assign(model="SVD", fold=0),
        n_ratings=len(heldout.train.ratings),
        fingerprint=heldout.train.fingerprint,
    )


def audit_system(
    system: ExternalSystem,
    heldout: HeldOut,
    model: TrainedModel,
    config: AuditConfig | None = None,
) -> SystemAudit:
    """Audit ``system`` on ``heldout`` with the built-in audit (module docstring).

    ``model`` is the SVD trained on ``heldout.train`` (it fixes the catalogue ``k`` is capped
    at; its explanations are not audited for another system). ``config.explanations`` is
    switched off; every other setting is used as given.
    """
    config = replace(config or AuditConfig(), explanations=False)
    k = min(config.k, model.interactions.n_items)
    threshold, _, _, _ = resolve_threshold(config.threshold, heldout.train.scale)
    notes: list[str] = []
    empty_lists = pd.DataFrame({"user_id": pd.Series([], dtype=object),
                                "rank": pd.Series([], dtype="int64"),
                                "item_id": pd.Series([], dtype=object),
                                "score": pd.Series([], dtype=float)})  # fmt: skip
    lists = (audited_lists(system.lists, heldout, k, notes, system.name)
             if system.lists is not None else empty_lists)  # fmt: skip
    ranking = user_ranking(lists, heldout.ratings, k, threshold)
    relevant_users = heldout.ratings.loc[heldout.ratings["rating"] >= threshold, "user_id"]
    unlisted = len(set(relevant_users) - set(lists["user_id"]))
    if system.lists is not None and unlisted:
        notes.append(
            f"{system.name}: {unlisted:,} users with a relevant held-out rating have no list: "
            "left out of top-N utility."
        )
    scale = (heldout.train.scale.low, heldout.train.scale.high)
    accuracy = accuracy_pairs(system.predictions, heldout.ratings, scale)
    if system.predictions is not None:
        unused = len(system.predictions) - len(accuracy)
        if unused:
            notes.append(
                f"{system.name}: {unused:,} of {len(system.predictions):,} predictions are of "
                "pairs without a held-out rating: not used for accuracy."
            )
    evaluation = _evaluation(model, heldout, lists, ranking, k, threshold)
    result = run_audit(heldout.train, model, evaluation, config, lists=lists,
                       inputs={"oof": accuracy})  # fmt: skip
    result = replace(result, notes=[heldout.describe(), *notes, *result.notes])
    return SystemAudit(system.name, result, lists, ranking, accuracy,
                       has_lists=system.lists is not None,
                       has_predictions=system.predictions is not None, notes=notes)  # fmt: skip
