"""Recommendation models: the SVD engine with exact user refit, and its comparators."""

from engine.model.base import Recommender
from engine.model.config import PRESETS, ModelConfig
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel, UserVector, clip_to_scale, train, train_svd

__all__ = [
    "PRESETS",
    "Interactions",
    "ModelConfig",
    "Recommender",
    "TrainedModel",
    "UserVector",
    "clip_to_scale",
    "train",
    "train_svd",
]
