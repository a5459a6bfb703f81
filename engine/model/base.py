"""What every trained recommender offers to evaluation and recommendation."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd
from surprise import Dataset, Reader, Trainset

from engine.errors import ConfigError, DataError
from engine.model.interactions import Interactions


@runtime_checkable
class Recommender(Protocol):
    """A trained model scoring (user, item) pairs by integer index.

    ``predict_pairs`` and ``score_block`` return *unclipped* scores: the predicted
    rating for rating models, a ranking score for the popularity ranker
    (``predicts_ratings`` is then False and accuracy metrics do not apply).

    A model whose every user ranks the items in one order (BaselineOnly, Popularity) also
    has ``item_order()``: item indices best first, ties by lower index; top-N lists are
    then each user's first unrated items of it (``engine.recommend.ranking_order``).
    """

    name: str
    interactions: Interactions
    scale: tuple[float, float]
    predicts_ratings: bool

    def predict_pairs(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of pairs; ``-1`` marks a user or item unknown to the model."""
        ...

    def score_block(self, users: np.ndarray) -> np.ndarray:
        """Scores of the given users for every item, shape ``(len(users), n_items)``."""
        ...


def surprise_trainset(ratings: pd.DataFrame, scale: tuple[float, float]) -> Trainset:
    """Build a Surprise ``Trainset`` from canonical ratings (``user_id, item_id, rating``)."""
    if len(ratings) == 0:
        raise DataError("No training ratings: a model needs at least one rating to learn from.")
    reader = Reader(rating_scale=scale)
    dataset = Dataset.load_from_df(ratings[["user_id", "item_id", "rating"]], reader)
    return dataset.build_full_trainset()


def surprise_order(
    trainset: Trainset, user_ids: np.ndarray, item_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Surprise inner ids of raw ids, so that ``algo.bu[order]`` follows our order."""
    users = np.fromiter((trainset.to_inner_uid(u) for u in user_ids), np.int64, len(user_ids))
    items = np.fromiter((trainset.to_inner_iid(i) for i in item_ids), np.int64, len(item_ids))
    return users, items


def check_finite(name: str, hint: str, *arrays: np.ndarray) -> None:
    """Raise ``ConfigError`` when training produced NaN or infinite parameters."""
    if not all(np.isfinite(a).all() for a in arrays):
        raise ConfigError(f"{name} training diverged (NaN or infinite parameters): {hint}.")
