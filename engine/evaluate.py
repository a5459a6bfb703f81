"""Evaluation of the SVD engine and its comparators on the same splits.

By default (``split="kfold"``) every rating is held out exactly once, so the out-of-fold
predictions cover the whole dataset (the audit computes group metrics from them). Folds
are assigned by a seeded permutation: ``fold[perm[j]] = j mod K``. The time-aware
protocols (``temporal``, ``last-n``, ``rolling``; defined in ``engine.protocols``) hold out
later ratings instead and never train on a rating later than their cut; their held-out
predictions and lists have the same form, with the split (window) index as ``fold``. All
models see the same splits, so their differences are paired. Top-N lists rank, for each
user with held-out ratings, every item known to the training part that the user did not
rate in it. Definitions of the metrics are in ``engine.metrics``. With the Spark engine
(``ModelConfig.engine == "spark"``) the SVD slot of each split is trained, predicted and
ranked in Spark (``engine.spark.evaluate.evaluate_split_in_spark``) on these same splits,
giving the same tables; the comparators run in memory as always.

A held-out rating is relevant when it is ``>= threshold``; by default the threshold comes
from the data's rating scale (``RatingScale.relevance_threshold``: the top quarter of the
scale, 4 on 1-5, 8 on 1-10). A fold in which no user with a relevant held-out rating can
be ranked has no ranking metrics: they are NaN there (shown as "n/a"), the means are over
the folds where they are defined, and ``Evaluation.notes`` says which folds and why. RMSE
and MAE do not depend on the threshold and are always computed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.checks import check_seed, is_finite_number
from engine.data.types import RatingData
from engine.errors import ConfigError, DataError
from engine.ids import object_ids
from engine.memory import ColumnParts, release_free_memory
from engine.metrics import (
    RANKING_METRICS,
    ThresholdSource,
    mae,
    ranking_scores,
    resolve_threshold,
    rmse,
)
from engine.model.base import Recommender
from engine.model.comparators import (
    KNN_MAX_ITEMS,
    train_baseline,
    train_knn_baseline,
    train_popularity,
)
from engine.model.config import ModelConfig
from engine.model.interactions import Interactions
from engine.model.svd import Progress, clip_to_scale, train_svd
from engine.protocols import (
    SPLIT_COLUMNS,
    SplitName,
    check_protocol,
    describe_protocol,
    make_splits,
    n_splits,
    protocol_label,
    split_table,
)
from engine.protocols import assign_folds as assign_folds  # re-exported: K-fold assignment
from engine.recommend import (
    DEFAULT_BLOCK_BYTES,
    first_unrated,
    ranking_order,
    top_k_indices,
    user_blocks,
)

if TYPE_CHECKING:
    from engine.spark.train import SparkFit

MODEL_NAMES: tuple[str, ...] = ("SVD", "BaselineOnly", "KNNBaseline", "Popularity")
#: Fold metrics that need a ranked user: NaN ("n/a") in a fold where no user could be ranked.
LIST_METRICS: tuple[str, ...] = (*RANKING_METRICS, "coverage")
#: The protocol parameters each split uses.
_PROTOCOL_FIELDS: dict[str, tuple[str, ...]] = {
    "kfold": (), "temporal": ("test_share",), "last-n": ("last_n",),
    "rolling": ("test_share", "windows"),
}  # fmt: skip


@dataclass(frozen=True)
class EvaluationConfig:
    """How to evaluate.

    Parameters
    ----------
    folds
        Number of folds K, >= 2.
    seed
        Seed of the fold assignment, an integer in ``[0, 2**32 - 1]``.
    k
        Length of the top-N lists ranking metrics are computed at, >= 1.
    threshold
        A held-out rating >= threshold is relevant, in rating units. ``None`` (default)
        takes it from the data's scale (``RatingScale.relevance_threshold``, the top
        quarter: 4 on 1-5, 8 on 1-10, 75 on 0-100). A threshold outside the scale is
        allowed; the evaluation then notes that no (or every) rating is relevant.
    models
        Which of ``MODEL_NAMES`` to evaluate (the SVD engine is always first).
    split
        The protocol (``engine.protocols``): ``"kfold"`` (default; ``folds`` and ``seed``),
        ``"temporal"`` (train before a cut, test after; ``test_share``), ``"last-n"``
        (each user's ``last_n`` latest ratings tested) or ``"rolling"`` (``windows``
        expanding-window splits over the last ``test_share`` of time). The time protocols
        need a timestamp for the ratings.
    test_share
        ``temporal`` and ``rolling``: the share of the time *span* (not of the ratings) held
        out at its end, strictly between 0 and 1 (default 0.2).
    last_n
        ``last-n``: how many of each user's latest ratings are tested, >= 1 (default 1).
    windows
        ``rolling``: the number of windows W, >= 1 (default 3).

    A protocol parameter the chosen ``split`` does not use is reset to its default, so two
    settings that evaluate the same way are equal.
    """

    folds: int = 5
    seed: int = 0
    k: int = 10
    threshold: float | None = None
    models: tuple[str, ...] = MODEL_NAMES
    split: SplitName = "kfold"
    test_share: float = 0.2
    last_n: int = 1
    windows: int = 3

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ConfigError(f"folds={self.folds} is too few: use at least 2 (default 5).")
        if self.k < 1:
            raise ConfigError(f"k={self.k} must be at least 1 (default 10).")
        check_seed("EvaluationConfig", self.seed)
        if self.threshold is not None and not is_finite_number(self.threshold):
            raise ConfigError(
                f"EvaluationConfig.threshold={self.threshold!r} is not allowed: use a finite "
                "rating, or None to take it from the data's scale (three quarters of the way up)."
            )
        unknown = set(self.models) - set(MODEL_NAMES)
        if unknown:
            raise ConfigError(
                f"Unknown model(s) {', '.join(sorted(unknown))}: choose from "
                f"{', '.join(MODEL_NAMES)}."
            )
        check_protocol(self.split, self.test_share, self.last_n, self.windows)
        used = _PROTOCOL_FIELDS[self.split]
        for name, default in (("test_share", 0.2), ("last_n", 1), ("windows", 3)):
            if name not in used:  # unused: equal configs evaluate equally and hash equally
                object.__setattr__(self, name, default)

    @property
    def n_splits(self) -> int:
        """Number of train/test splits (the ``fold`` values ``0..n-1``): K, 1, 1 or W."""
        return n_splits(self.split, self.folds, self.windows)

    def label(self) -> str:
        """Return the protocol in a few words (``engine.protocols.protocol_label``)."""
        return protocol_label(
            self.split, folds=self.folds, seed=self.seed, test_share=self.test_share,
            last_n=self.last_n, windows=self.windows,
        )  # fmt: skip

    def protocol_fields(self) -> dict[str, object]:
        """Return the protocol settings the chosen ``split`` uses (none for ``kfold``).

        ``AnalysisSettings`` hashes these instead of all four, so a K-fold evaluation's
        settings (and stage key) are the same as before the time protocols existed, and
        an unused parameter (``windows`` of a temporal split) changes no key.
        """
        if self.split == "kfold":
            return {}
        used = _PROTOCOL_FIELDS[self.split]
        return {"split": self.split, **{name: getattr(self, name) for name in used}}


@dataclass(frozen=True)
class Evaluation:
    """Out-of-fold predictions and metrics of every evaluated model.

    Attributes
    ----------
    evaluation
        The settings used, with ``threshold`` resolved to the number applied (never
        ``None``); ``threshold_source`` says whether it was given or taken from the scale.
    predictions
        One row per (model, held-out rating): ``model, fold, user_id, item_id, rating,
        prediction`` (clipped to the scale), ``raw_prediction`` (unclipped),
        ``was_impossible`` (user or item absent from the training fold: the
        prediction fell back to ``mu + b_i`` / ``mu + b_u`` / ``mu``) and ``reason``.
        Ranking-only models (Popularity) have no rows. Rows are grouped by model (in
        ``MODEL_NAMES`` order), then by split, so one model's rows are one contiguous
        block (the audit reads the SVD's as a view, not a copy; ``engine.audit.inputs``).
        ``model`` and ``reason`` here, and ``model`` in ``user_ranking`` and
        ``top_lists``, are categoricals (``LABEL_COLUMNS``, ``as_labels``).
    fold_metrics
        Tidy ``model, fold, metric, value``; metrics ``rmse, mae`` (rating models),
        ``precision, recall, ndcg, map, hit_rate`` (means over users with a relevant
        held-out item), ``coverage``, ``n_users_ranked``, ``fit_seconds`` (training on
        the split once its ratings are indexed, which is done once for every model). The
        ranking metrics and ``coverage`` are NaN in a fold where no user could be ranked
        (see ``notes``).
    user_ranking
        ``model, fold, user_id, n_relevant, precision, recall, ndcg, map, hit_rate``
        (these columns even when empty).
    top_lists
        The ranked lists behind ``user_ranking``: ``model, fold, user_id, rank, item_id``.
    threshold_source
        ``"given"`` (``EvaluationConfig.threshold`` was set) or ``"scale"`` (the top
        quarter of the data's rating scale).
    relevance_rule
        The rule in words, e.g. ``"relevant = rating >= 4, three quarters of the way up the
        1-5 scale"``.
    notes
        Sentences a reader of the metrics must see: folds where the ranking metrics are
        undefined and why (``"no held-out rating >= 6 in fold 2"``), a threshold outside
        the scale.
    splits
        One row per split (``engine.protocols.split_table``): ``fold, n_train, n_test,
        n_unused, test_start, test_end, train_latest, n_test_users, n_train_only_users,
        n_cold_users, n_cold_items, n_cold_ratings`` (times in epoch seconds, NaN where
        not a window of time).
    protocol
        The protocol in words with its sizes and cold-start counts
        (``engine.protocols.describe_protocol``).
    """

    config: ModelConfig
    evaluation: EvaluationConfig
    predictions: pd.DataFrame
    fold_metrics: pd.DataFrame
    user_ranking: pd.DataFrame
    top_lists: pd.DataFrame
    n_ratings: int
    fingerprint: str = ""
    skipped: dict[str, str] = field(default_factory=dict)
    threshold_source: ThresholdSource = "given"
    relevance_rule: str = ""
    notes: list[str] = field(default_factory=list)
    splits: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SPLIT_COLUMNS))
    protocol: str = ""

    def __post_init__(self) -> None:
        for name in LABEL_COLUMNS.keys() | SMALL_INT_COLUMNS.keys():
            frame, changed = getattr(self, name), {}
            for kind, columns in ((as_labels, LABEL_COLUMNS), (small_ints, SMALL_INT_COLUMNS)):
                for column in (c for c in columns.get(name, ()) if c in frame.columns):
                    values = frame[column]
                    if (kept := kind(values)) is not values:
                        changed[column] = kept
            if changed:
                object.__setattr__(self, name, frame.assign(**changed))

    def summary(self) -> pd.DataFrame:
        """Mean and standard deviation over folds: index ``model``, columns ``(metric, stat)``.

        Means and standard deviations skip folds where a metric is undefined (NaN); a
        metric undefined in every fold keeps its column, with NaN.
        """
        table = self.fold_metrics.groupby(["model", "metric"], sort=False)["value"].agg(
            ["mean", "std"]
        )
        table = table.unstack("metric").swaplevel(axis=1).sort_index(axis=1)
        order = [m for m in self.evaluation.models if m in table.index]
        return table.loc[order]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary: per model, each metric's mean, std and per-fold values.

        Also the protocol (``split``, its parameters, ``protocol`` in words), ``folds`` =
        the number of splits, and ``splits`` (``split_table``'s rows, with the cold-start
        counts).

        Undefined values (a metric NaN in a fold; a mean over no defined fold; a standard
        deviation over fewer than two) are ``None``, so the result is strict JSON.
        """
        out: dict[str, object] = {}
        for model, rows in self.fold_metrics.groupby("model", sort=False):
            metrics = {}
            for metric, values in rows.groupby("metric", sort=False)["value"]:
                defined = values.dropna()
                metrics[metric] = {
                    "mean": float(defined.mean()) if len(defined) else None,
                    "std": float(defined.std(ddof=1)) if len(defined) > 1 else None,
                    "folds": [_json_number(v) for v in values],
                }
            out[str(model)] = metrics
        return {
            "split": self.evaluation.split,
            "protocol": self.protocol,
            **self.evaluation.protocol_fields(),
            "folds": self.evaluation.n_splits,
            "seed": self.evaluation.seed,
            "k": self.evaluation.k,
            "relevance_threshold": self.evaluation.threshold,
            "threshold_source": self.threshold_source,
            "relevance_rule": self.relevance_rule,
            "n_ratings": self.n_ratings,
            "model_config": self.config.__dict__,
            "models": out,
            "skipped": self.skipped,
            "notes": list(self.notes),
            "splits": [
                {k: _json_number(v) if isinstance(v, float) else v for k, v in row.items()}
                for row in self.splits.to_dict("records")
            ],
        }


def model_rows(predictions: pd.DataFrame, model: str, columns: list[str]) -> pd.DataFrame:
    """Return ``columns`` of ``model``'s rows of ``Evaluation.predictions``.

    A view where the rows are one block (as ``evaluate`` orders them: on 25M ratings a
    copy of four columns of one model is 0.8 GB), else a copy of these columns only (rows
    of several models interleaved, as in analyses saved before that order).
    """
    chosen = (predictions["model"] == model).to_numpy()
    rows = np.flatnonzero(chosen)
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return predictions.iloc[rows[0] : rows[-1] + 1][columns]
    return predictions.loc[chosen, columns]


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _undefined_ranking_reason(
    train: pd.DataFrame, test: pd.DataFrame, threshold: float, fold: int
) -> tuple[str, str] | None:
    """``(kind, sentence)`` saying why no user can be ranked in this fold, else ``None``.

    The same for every model: they all train on the same fold. ``kind`` is
    ``"no relevant"`` or ``"not in training"``.
    """
    relevant = test[test["rating"] >= threshold]
    if relevant.empty:
        return "no relevant", f"no held-out rating >= {threshold:g} in fold {fold}"
    if not relevant["user_id"].isin(train["user_id"]).any():
        return "not in training", (
            f"no user with a held-out rating >= {threshold:g} in fold {fold} has a rating in "
            "the training folds"
        )
    return None


def _ranking_notes(reasons: dict[int, tuple[str, str]], folds: int, threshold: float) -> list[str]:
    if not reasons:
        return []
    names = "precision, recall, NDCG, MAP, hit rate and coverage"
    kinds = {kind for kind, _ in reasons.values()}
    if len(reasons) == folds:
        if kinds == {"no relevant"}:
            why = f"no held-out rating >= {threshold:g} in any of the {folds} folds"
        elif kinds == {"not in training"}:
            why = (
                f"in none of the {folds} folds does a user with a held-out rating >= "
                f"{threshold:g} have a rating in the training folds (each user's ratings fall "
                "in one fold, e.g. users with a single rating)"
            )
        else:
            why = "; ".join(sentence for _, sentence in reasons.values())
        return [
            f"The ranking metrics ({names}) are n/a for every model: {why}. RMSE and MAE "
            "do not depend on the threshold and are computed as usual."
        ]
    return [
        f"The ranking metrics ({names}) are n/a in fold {fold} for every model: {sentence}; "
        "their means are over the other folds."
        for fold, (_, sentence) in sorted(reasons.items())
    ]


#: ``trainer(train, scale, catalogue, interactions=...)``: ``interactions`` is
#: ``Interactions.from_frame(train, catalogue)``, built once per split for every model.
Trainer = Callable[..., Recommender]
#: ``reason`` of a held-out prediction whose user, item or both have no training rating.
REASON_USER = "user not in training fold"
REASON_ITEM = "item not in training fold"
REASON_BOTH = "user and item not in training fold"
REASONS: tuple[str, ...] = ("", REASON_USER, REASON_ITEM, REASON_BOTH)

#: Columns of ``Evaluation``'s tables holding a few distinct labels, kept as pandas
#: categoricals (``as_labels``): on 25M ratings the ``model`` and ``reason`` columns of
#: the 50M held-out predictions are 1 byte a row each instead of 15 and 8 as strings
#: (about 1.1 GB), ``model`` of the 24M list rows 1 instead of 15 (0.3 GB). A saved
#: analysis stores them as ``str`` columns (``engine.saved.tables``).
LABEL_COLUMNS: dict[str, tuple[str, ...]] = {
    "predictions": ("model", "reason"),
    "user_ranking": ("model",),
    "top_lists": ("model",),
}


#: Integer columns of ``Evaluation``'s tables kept in the smallest signed integer type that
#: holds them (``small_ints``): on 25M ratings ``fold`` of the 50M held-out predictions and
#: ``fold`` and ``rank`` of the 24M list rows take 1 byte a row each instead of 8 (about
#: 0.65 GB). A saved analysis stores them as they are (``engine.saved.stages`` accepts any
#: signed integer type); one saved with int64 reads back narrowed.
SMALL_INT_COLUMNS: dict[str, tuple[str, ...]] = {
    "predictions": ("fold",),
    "user_ranking": ("fold",),
    "top_lists": ("fold", "rank"),
}


def small_int_dtype(low: int, high: int) -> np.dtype:
    """Return the first of int8, int16, int32, int64 holding every integer in ``[low, high]``."""
    for dtype in (np.int8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


def small_ints(values: pd.Series) -> pd.Series:
    """Signed integer ``values`` in the smallest type holding them (``small_int_dtype``).

    Never widened, never wrapped: the type is chosen from the values' own range. Other
    dtypes and empty columns are returned as they are.
    """
    dtype = values.dtype
    if not (isinstance(dtype, np.dtype) and dtype.kind == "i") or values.empty:
        return values
    small = small_int_dtype(int(values.min()), int(values.max()))
    return values.astype(small) if small.itemsize < dtype.itemsize else values


def as_labels(values: pd.Series, categories: Collection[str] | None = None) -> pd.Series:
    """``values`` as a categorical whose categories are the values present, sorted.

    Sorted categories group and sort as the strings would, and one table gets the same
    dtype however it was built (evaluated, or read back from a saved analysis).
    ``categories``: exactly these (sorted) instead, present or not, so that parts
    labelled alike concatenate to a categorical.
    """
    if categories is not None:
        return values.astype(pd.CategoricalDtype(sorted(categories)))
    if not isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(pd.CategoricalDtype(sorted(pd.unique(values.dropna()))))
    # recoded through a table of the categories: pandas' remove_unused_categories and
    # reorder_categories take about 27 and 10 bytes a row (1.8 GB for the 50M held-out
    # predictions of 25M ratings); this, the new codes (1 byte a row for a few labels)
    codes, old = values.cat.codes.to_numpy(), values.cat.categories
    seen = np.zeros(len(old) + 1, dtype=bool)  # counted 65,536 codes at a time (as intp)
    for start in range(0, len(codes), 1 << 16):
        chunk = codes[start : start + (1 << 16)].astype(np.intp) + 1
        seen |= np.bincount(chunk, minlength=len(old) + 1) > 0
    kept = sorted(old[seen[1:]])
    if list(old) == kept:
        return values
    recode = np.full(len(old) + 1, -1, dtype=codes.dtype)  # the last: a missing value (-1)
    recode[old.get_indexer(kept)] = np.arange(len(kept))
    labelled = pd.Categorical.from_codes(recode[codes], categories=kept)
    return pd.Series(labelled, index=values.index, name=values.name)


def _model_label(name: str, rows: int, names: Collection[str]) -> pd.Categorical:
    """``rows`` times ``name`` as a categorical over ``names`` (sorted)."""
    dtype = pd.CategoricalDtype(sorted(names))
    codes = np.full(rows, dtype.categories.get_loc(name), dtype=np.int8)
    return pd.Categorical.from_codes(codes, dtype=dtype)


@dataclass(frozen=True)
class SplitResult:
    """One model's results on one split, as ``evaluate`` gathers them.

    Attributes
    ----------
    predictions
        ``held_out_predictions``' rows, ``None`` for a ranking-only model (Popularity).
    rmse, mae
        On the clipped predictions (NaN without predictions).
    user_ranking, top_lists, coverage
        ``held_out_ranking``'s three results.
    fit_seconds
        Wall-clock seconds spent training (the split's indexing not included).
    """

    predictions: pd.DataFrame | None
    rmse: float
    mae: float
    user_ranking: pd.DataFrame
    top_lists: pd.DataFrame
    coverage: float
    fit_seconds: float


def _trainers(config: ModelConfig) -> dict[str, Trainer]:
    """Trainers of models scored in memory.

    The Spark engine's SVD slot is ``engine.spark.evaluate``'s; with that engine
    ``BaselineOnly`` is fitted by Spark too (``train_baseline_spark``: the same biases, and
    no Surprise trainset of the whole training set in this process).
    """
    baseline = train_baseline
    if config.engine == "spark":
        from engine.spark.train import train_baseline_spark as baseline
    return {
        "SVD": lambda r, s, items, **shared: train_svd(r, s, config, item_ids=items, **shared),
        "BaselineOnly": baseline,
        "KNNBaseline": train_knn_baseline,
        "Popularity": train_popularity,
    }


def prediction_frame(
    name: str, fold: int, test: pd.DataFrame, raw: np.ndarray, clipped: np.ndarray,
    reason: np.ndarray,
) -> tuple[pd.DataFrame, float, float]:  # fmt: skip
    """``Evaluation.predictions`` rows of one split and its RMSE and MAE on ``clipped``.

    ``raw``, ``clipped`` and ``reason`` (``""`` when the model knew user and item) are
    aligned with ``test``'s rows; ``was_impossible`` is ``reason != ""``.
    """
    frame = pd.DataFrame(
        {
            "model": name,
            "fold": fold,
            "user_id": test["user_id"].to_numpy(),
            "item_id": test["item_id"].to_numpy(),
            "rating": test["rating"].to_numpy(),
            "prediction": clipped,
            "raw_prediction": raw,
            "was_impossible": reason != "",
            "reason": reason,
        }
    )
    ratings = test["rating"].to_numpy()
    return frame, rmse(clipped, ratings), mae(clipped, ratings)


def held_out_predictions(
    model: Recommender, test: pd.DataFrame, fold: int
) -> tuple[pd.DataFrame, float, float]:
    """Predict the held-out ratings ``test`` (``user_id, item_id, rating``) with ``model``.

    Returns the ``Evaluation.predictions`` rows of this split (``fold`` = its index; a user
    or item the model has no training rating for is predicted by its fallback and marked
    ``was_impossible`` with the ``reason``), and the split's RMSE and MAE on the clipped
    predictions.
    """
    users = model.interactions.user_index(test["user_id"].to_numpy())
    items = model.interactions.item_index(test["item_id"].to_numpy())
    known_item = items >= 0
    known_item[known_item] = model.interactions.counts_per_item()[items[known_item]] > 0
    items = np.where(known_item, items, -1)
    raw = model.predict_pairs(users, items)
    # one shared str per reason, not a fixed-width unicode array (100 bytes a row; 0.5 GB
    # per nested np.where on the 5M held-out ratings of a split of 25M)
    kind = (users < 0).astype(np.int8) + 2 * (items < 0).astype(np.int8)
    reason = np.array(["", REASON_USER, REASON_ITEM, REASON_BOTH], dtype=object)[kind]
    return prediction_frame(model.name, fold, test, raw, clip_to_scale(raw, model.scale), reason)


def empty_ranking() -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """``held_out_ranking``'s result when no user can be ranked: typed empty tables, NaN."""
    ids = pd.Series([], dtype=object)  # typed: concatenating an empty split keeps dtypes
    metrics = {m: pd.Series([], dtype="float64") for m in RANKING_METRICS}
    return (
        pd.DataFrame({"user_id": ids, "n_relevant": pd.Series([], dtype="int64"), **metrics}),
        pd.DataFrame({"user_id": ids, "rank": pd.Series([], dtype="int64"), "item_id": ids}),
        float("nan"),
    )


def user_ranking_rows(
    user_ids: np.ndarray, n_relevant: np.ndarray, scores: pd.DataFrame
) -> pd.DataFrame:
    """``user_id, n_relevant`` then ``scores``' metric columns (``ranking_scores``' output)."""
    scores = scores.copy()
    scores.insert(0, "n_relevant", np.asarray(n_relevant, dtype=np.int64))
    scores.insert(0, "user_id", user_ids)
    return scores


def list_rows(user_ids: np.ndarray, items: np.ndarray, valid: np.ndarray) -> pd.DataFrame:
    """``user_id, rank, item_id`` of lists ``items`` (``(users, k)`` ids, best first).

    Only slots where ``valid`` is True are kept (ranks count every slot from 1).
    """
    width = items.shape[1]
    return pd.DataFrame(
        {
            "user_id": np.repeat(user_ids, width)[valid.ravel()],
            "rank": np.tile(np.arange(1, width + 1), len(user_ids))[valid.ravel()],
            "item_id": items[valid],
        }
    )


def held_out_ranking(
    model: Recommender,
    test: pd.DataFrame,
    k: int,
    threshold: float,
    max_block_bytes: int,
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Per-user top-k metrics and lists for users with a relevant held-out item; coverage.

    Users come in the order of their first relevant held-out rating in ``test``.
    Coverage is the share of the catalogue (``model``'s item axis) in any list. With no
    such user in the training fold, both tables are empty (with their columns) and
    coverage is NaN: there is no list to measure.
    """
    inter = model.interactions
    relevant = test[test["rating"] >= threshold]
    users = ranked_users(inter, relevant)
    if len(users) == 0:
        return empty_ranking()
    rel_items = inter.item_index(relevant["item_id"].to_numpy())
    rel_users = inter.user_index(relevant["user_id"].to_numpy())
    n_rel = relevant.groupby("user_id").size()
    untrained = inter.counts_per_item() == 0
    order = ranking_order(model)
    if order is not None:
        order = order[~untrained[order]]
    recommended = np.zeros(inter.n_items, dtype=bool)
    rows, lists = [], []
    for block in user_blocks(len(users), inter.n_items, max_block_bytes):
        chunk = users[block]
        if order is not None:  # one order for every user: no need to score every item
            top, valid = first_unrated(inter, chunk, order, k)
        else:
            scores = model.score_block(chunk)
            scores[inter.rated_mask(chunk)] = -np.inf
            scores[:, untrained] = -np.inf
            top = top_k_indices(scores, k)
            valid = np.isfinite(np.take_along_axis(scores, top, 1))
        recommended[top[valid]] = True
        truth = np.zeros((len(chunk), inter.n_items), dtype=bool)
        position = np.full(inter.n_users, -1)
        position[chunk] = np.arange(len(chunk))
        mine = (rel_users >= 0) & (position[np.maximum(rel_users, 0)] >= 0) & (rel_items >= 0)
        truth[position[rel_users[mine]], rel_items[mine]] = True
        hits = np.take_along_axis(truth, top, 1) & valid
        ids = inter.user_ids[chunk]
        counts = n_rel.loc[ids].to_numpy()
        rows.append(user_ranking_rows(ids, counts, ranking_scores(hits, counts, k)))
        lists.append(list_rows(ids, inter.item_ids[top], valid))
    per_user = pd.concat(rows, ignore_index=True)
    top_lists = pd.concat(lists, ignore_index=True)
    return per_user, top_lists, float(recommended.sum() / inter.n_items)


def ranked_users(inter: Interactions, relevant: pd.DataFrame) -> np.ndarray:
    """Return the indices of the training users with a row in ``relevant``, by first row."""
    users = inter.user_index(relevant["user_id"].unique())
    return users[users >= 0]


@dataclass(frozen=True)
class _SplitContext:
    """What every model of every split of one evaluation shares."""

    config: ModelConfig
    scale: tuple[float, float]
    catalogue: np.ndarray
    k: int
    threshold: float
    max_block_bytes: int


def _in_memory_split(
    trainer: Trainer,
    train: pd.DataFrame | None,
    test: pd.DataFrame,
    fold: int,
    context: _SplitContext,
    interactions: Interactions,
) -> SplitResult:
    """Train one model on the driver, then score ``test`` and rank with numpy."""
    start = time.perf_counter()
    model = trainer(train, context.scale, context.catalogue, interactions=interactions)
    fit_seconds = time.perf_counter() - start
    frame, fold_rmse, fold_mae = None, math.nan, math.nan
    if model.predicts_ratings:
        frame, fold_rmse, fold_mae = held_out_predictions(model, test, fold)
    users, lists, coverage = held_out_ranking(
        model, test, context.k, context.threshold, context.max_block_bytes
    )
    return SplitResult(frame, fold_rmse, fold_mae, users, lists, coverage, fit_seconds)


def _reads_training_frame(name: str, config: ModelConfig) -> bool:
    """Whether a model's trainer reads a split's training ratings as a table.

    Those that build a Surprise trainset do; the others read only the index
    (``Interactions``).
    """
    return name == "KNNBaseline" or (config.engine == "surprise" and name != "Popularity")


def _evaluate_model(
    name: str,
    train: pd.DataFrame | None,
    test: pd.DataFrame,
    fold: int,
    context: _SplitContext,
    interactions: Interactions,
    spark_fit: SparkFit | None = None,
) -> SplitResult:
    """One model on one split: the Spark engine's SVD in Spark, everything else in memory.

    ``interactions``: the split's training ratings indexed on the catalogue, built once
    for every model (12 s per 20M ratings); ``train``, those ratings as a table, is
    ``None`` when no model reads it (``_reads_training_frame``). ``spark_fit``: the Spark
    engine's SVD fit of this split, if made. ``BaselineOnly`` is then its first stage (the
    same biases of the same ratings), collected rather than fitted again; its fit time is
    that stage's plus the collection's.
    """
    if name == "SVD" and context.config.engine == "spark":
        from engine.spark.evaluate import evaluate_split_in_spark

        return evaluate_split_in_spark(
            train, test, fold, context.scale, context.catalogue, context.config,
            context.k, context.threshold, interactions,
        )  # fmt: skip
    trainer = _trainers(context.config)[name]
    if name == "BaselineOnly" and spark_fit is not None:
        from engine.spark.train import train_baseline_spark

        fitted = spark_fit.baselines
        trainer = partial(train_baseline_spark, fitted=fitted)
        result = _in_memory_split(trainer, train, test, fold, context, interactions)
        return replace(result, fit_seconds=result.fit_seconds + fitted.seconds)
    return _in_memory_split(trainer, train, test, fold, context, interactions)


def evaluate(
    data: RatingData,
    config: ModelConfig | None = None,
    evaluation: EvaluationConfig | None = None,
    *,
    progress: Progress | None = None,
    max_block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> Evaluation:
    """Evaluate the SVD engine and the comparators on the same splits (``evaluation.split``).

    The relevance threshold is resolved once here (``resolve_threshold``): the returned
    ``Evaluation.evaluation.threshold`` is the number used. A fold where no user with a
    relevant held-out rating can be ranked gets NaN ranking metrics and a note, never an
    error.

    Raises
    ------
    DataError
        Fewer ratings than folds; a time protocol with no rating before its cut or in a
        window.
    ConfigError
        An invalid setting, a time protocol on data without timestamps, or a model that
        cannot run on this data (the message says which; e.g. KNNBaseline on a catalogue
        too large for its similarity matrix).
    """
    config = config or ModelConfig()
    evaluation = evaluation or EvaluationConfig()
    ratings = data.ratings
    if evaluation.split == "kfold" and len(ratings) < evaluation.folds:
        raise DataError(
            f"{data.name} has {len(ratings)} ratings, fewer than the {evaluation.folds} folds: "
            "use fewer folds or more data."
        )
    threshold, source, rule, notes = resolve_threshold(evaluation.threshold, data.scale)
    evaluation = replace(evaluation, threshold=threshold)
    if evaluation.k > data.n_items:  # as the audit does: a list cannot be longer than that
        notes.append(
            f"k = {evaluation.k} exceeds the catalogue of {data.n_items:,} items; "
            f"k = {data.n_items} used."
        )
        evaluation = replace(evaluation, k=data.n_items)
    parts = make_splits(
        ratings, evaluation.split, folds=evaluation.folds, seed=evaluation.seed,
        test_share=evaluation.test_share, last_n=evaluation.last_n, windows=evaluation.windows,
        name=data.name,
    )  # fmt: skip
    ratings = object_ids(ratings)  # fast row reads and isin (engine.ids)
    scale = (data.scale.low, data.scale.high)
    catalogue = np.asarray(pd.unique(ratings["item_id"]), dtype=object)
    catalogue.sort()
    context = _SplitContext(config, scale, catalogue, evaluation.k, threshold, max_block_bytes)
    names = [m for m in MODEL_NAMES if m in evaluation.models]
    skipped = {}
    if "KNNBaseline" in names and len(catalogue) > KNN_MAX_ITEMS:
        names.remove("KNNBaseline")
        skipped["KNNBaseline"] = (
            f"{len(catalogue):,} items exceed the {KNN_MAX_ITEMS:,}-item limit of its dense "
            "similarity matrix"
        )
    # the splits' rows, joined at the end one column at a time (engine.memory.ColumnParts);
    # the predictions model by model (Evaluation.predictions)
    predictions = {name: ColumnParts() for name in names}
    per_user, top_lists = ColumnParts(), ColumnParts()
    metrics: list[tuple[str, int, str, float]] = []
    undefined: dict[int, tuple[str, str]] = {}
    steps = len(parts) * len(names)
    unit = {"kfold": "fold", "rolling": "window"}.get(evaluation.split, "split")
    # each split's copies hold what the models read (not the timestamps: 0.2 GB at 25M)
    rated = ratings[["user_id", "item_id", "rating"]]
    keep_train = any(_reads_training_frame(name, config) for name in names)
    fold_type, rank_type = small_int_dtype(0, len(parts) - 1), small_int_dtype(1, evaluation.k)
    for part in parts:
        fold, train, test = part.fold, rated[part.train], rated[part.test]
        reason = _undefined_ranking_reason(train, test, threshold, fold)
        if reason is not None:
            undefined[fold] = reason
        spark_fit = None  # the Spark engine's SVD fit of this split, once made
        interactions = Interactions.from_frame(train, catalogue)  # once for every model
        if not keep_train:  # every model reads the index only (about 0.3 GB at 25M ratings)
            train = None
        for position, name in enumerate(names):
            if progress:
                done = (fold * len(names) + position) / steps
                progress(done, f"{unit} {fold + 1}/{len(parts)}: training {name}")
            result = _evaluate_model(name, train, test, fold, context, interactions, spark_fit)
            spark_fit = getattr(result, "fit", spark_fit)
            rows = {"fit_seconds": result.fit_seconds}
            if result.predictions is not None:
                # labels with the same categories, and folds of the same type, in every
                # split, so the concatenation below keeps them (LABEL_COLUMNS,
                # SMALL_INT_COLUMNS)
                predictions[name].append(result.predictions.assign(
                    model=as_labels(result.predictions["model"], names),
                    fold=result.predictions["fold"].astype(fold_type),
                    reason=as_labels(result.predictions["reason"], REASONS),
                ))  # fmt: skip
                rows |= {"rmse": result.rmse, "mae": result.mae}
            users, lists = result.user_ranking.copy(), result.top_lists.copy()
            lists["rank"] = lists["rank"].astype(rank_type)
            lists.insert(0, "fold", np.full(len(lists), fold, dtype=fold_type))
            lists.insert(0, "model", _model_label(name, len(lists), names))
            top_lists.append(lists)
            rows |= {m: float(users[m].mean()) if len(users) else math.nan for m in RANKING_METRICS}
            rows |= {"coverage": result.coverage, "n_users_ranked": float(len(users))}
            users.insert(0, "fold", np.full(len(users), fold, dtype=fold_type))
            users.insert(0, "model", _model_label(name, len(users), names))
            per_user.append(users)
            metrics += [(name, fold, metric, value) for metric, value in rows.items()]
            release_free_memory()  # the model's scores and tables (engine.memory)
        # nothing of this split is needed past it: freed now, not once the next split's
        # copies replace it (after the last split, the closing table and joins run next)
        train = test = interactions = spark_fit = result = users = lists = None
        release_free_memory()
    if progress:
        progress(1.0, "evaluation done")
    table = split_table(ratings, parts)
    return Evaluation(
        config=config,
        evaluation=evaluation,
        predictions=ColumnParts.joined(predictions.values()),
        fold_metrics=pd.DataFrame(metrics, columns=["model", "fold", "metric", "value"]),
        user_ranking=per_user.concat(),
        top_lists=top_lists.concat(),
        n_ratings=len(ratings),
        fingerprint=data.fingerprint,
        skipped=skipped,
        threshold_source=source,
        relevance_rule=rule,
        notes=notes + _ranking_notes(undefined, len(parts), threshold),
        splits=table,
        protocol=describe_protocol(
            evaluation.split, table, folds=evaluation.folds, seed=evaluation.seed,
            test_share=evaluation.test_share, last_n=evaluation.last_n,
        ),
    )  # fmt: skip
