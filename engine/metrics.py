r"""Accuracy and top-N metrics, each with its definition.

Accuracy (lower is better, in rating units, range ``[0, high - low]``):

.. math::

    \text{RMSE} = \sqrt{\tfrac{1}{|T|} \sum_{(u,i) \in T} (\hat r_{ui} - r_{ui})^2}, \qquad
    \text{MAE} = \tfrac{1}{|T|} \sum_{(u,i) \in T} |\hat r_{ui} - r_{ui}|

with :math:`\hat r` clipped to the rating scale (as Surprise's ``accuracy`` module).

Top-N, per user with ``L`` the top-``k`` list, ``R`` the user's relevant held-out items
(rating >= threshold), ``hit_r = 1`` when the item at rank ``r`` is in ``R``; all in
``[0, 1]``, higher is better; users with ``R`` empty are left out of the means, and a
fold with no such user has no value (NaN, shown as "n/a"; ``engine.evaluate`` notes why):

* ``precision@k = |L ∩ R| / k``
* ``recall@k = |L ∩ R| / |R|``
* ``ndcg@k = DCG / IDCG`` with ``DCG = sum_r hit_r / log2(r + 1)`` and ``IDCG`` the DCG of
  ``min(k, |R|)`` hits at the top (binary relevance; Järvelin & Kekäläinen 2002)
* ``ap@k = sum_r hit_r * precision@r / min(k, |R|)``; MAP@k is its mean over users
* ``hit@k = 1 if |L ∩ R| > 0``; HitRate@k is its mean
* ``coverage@k`` = share of the catalogue recommended to at least one user.

The threshold defaults to the top quarter of the rating scale
(``RatingScale.relevance_threshold``: 4 on 1-5, 8 on 1-10, 75 on 0-100); ``resolve_threshold``
applies that default and says the rule and its origin in words.
"""

from __future__ import annotations

import math
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd

from engine.data.types import RatingScale

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")
#: Where the relevance threshold came from: the caller, or the data's rating scale.
ThresholdSource: TypeAlias = Literal["given", "scale"]


def rmse(predictions: np.ndarray, ratings: np.ndarray) -> float:
    """Root mean squared error (see module docstring); NaN for no pairs."""
    errors = np.asarray(predictions, float) - np.asarray(ratings, float)
    return float(np.sqrt(np.mean(errors**2))) if errors.size else float("nan")


def mae(predictions: np.ndarray, ratings: np.ndarray) -> float:
    """Mean absolute error (see module docstring); NaN for no pairs."""
    errors = np.asarray(predictions, float) - np.asarray(ratings, float)
    return float(np.mean(np.abs(errors))) if errors.size else float("nan")


def ranking_scores(hits: np.ndarray, n_relevant: np.ndarray, k: int) -> pd.DataFrame:
    """Per-user top-N metrics from a hit matrix.

    Parameters
    ----------
    hits
        Boolean ``(n_users, k)``: ``hits[u, r]`` is True when the item at rank ``r + 1``
        of user ``u``'s list is relevant (shorter lists are padded with False).
    n_relevant
        ``|R|`` per user (> 0).
    k
        List length the metrics are "at".

    Returns
    -------
    pandas.DataFrame
        Columns ``precision, recall, ndcg, map, hit_rate`` (``map`` holds AP@k), one row per user.
    """
    hits = np.asarray(hits, bool)
    n_relevant = np.asarray(n_relevant, float)
    ranks = np.arange(1, hits.shape[1] + 1)
    discounts = 1 / np.log2(ranks + 1)
    n_hits = hits.sum(axis=1)
    ideal_len = np.minimum(n_relevant, k).astype(int)
    ideal = np.concatenate([[0.0], np.cumsum(1 / np.log2(np.arange(1, k + 1) + 1))])[ideal_len]
    precision_at_r = np.cumsum(hits, axis=1) / ranks
    return pd.DataFrame(
        {
            "precision": n_hits / k,
            "recall": n_hits / n_relevant,
            "ndcg": (hits * discounts).sum(axis=1) / ideal,
            "map": (hits * precision_at_r).sum(axis=1) / np.minimum(n_relevant, k),
            "hit_rate": (n_hits > 0).astype(float),
        }
    )


def _scale_text(scale: RatingScale) -> str:
    joiner = " to " if scale.low < 0 else "-"
    return f"{scale.low:g}{joiner}{scale.high:g}"


def resolve_threshold(
    threshold: float | None, scale: RatingScale
) -> tuple[float, ThresholdSource, str, list[str]]:
    """Return ``(threshold, source, rule, notes)`` for a given or default threshold.

    ``None`` takes ``scale.relevance_threshold()`` (source ``"scale"``); a number is used
    as given. ``rule`` says it in words; ``notes`` warn when the threshold lies outside
    the scale (above it no rating can be relevant; at or below its bottom every rating is).
    """
    default = scale.relevance_threshold()
    span = _scale_text(scale)
    if threshold is None:
        # "the top quarter of the scale" was read as the top quarter of the ratings
        rule = f"relevant = rating >= {default:g}, three quarters of the way up the {span} scale"
        if not math.isclose(default, scale.low + 0.75 * (scale.high - scale.low)):
            rule += " (rounded up to a rating step)"
        return default, "scale", rule, []
    threshold = float(threshold)
    rule = f"relevant = rating >= {threshold:g}, as given (the rating scale is {span})"
    notes = []
    if threshold > scale.high:
        notes.append(
            f"The relevance threshold {threshold:g} is above the top of the {span} rating "
            "scale, so no rating can be relevant and the ranking metrics are n/a: use a "
            f"threshold of at most {scale.high:g} (by default {default:g}, three quarters of the "
            "way up the scale)."
        )
    elif threshold <= scale.low:
        notes.append(
            f"The relevance threshold {threshold:g} is at or below the bottom of the {span} "
            "rating scale, so every held-out rating is relevant: the ranking metrics only "
            f"measure whether held-out items are recommended (by default {default:g})."
        )
    return threshold, "given", rule, notes
