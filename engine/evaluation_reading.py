"""Sentences that read a cross-validated comparison: where a comparator beats the SVD.

The metrics table alone invites the reader to assume the SVD wins everywhere. When a
simpler comparator (most often Popularity on a popularity-skewed catalogue) ranks better,
the page says so next to the table, with the means and in how many paired folds it won.
"""

from __future__ import annotations

import pandas as pd

from engine.metrics import RANKING_METRICS

#: Metric -> its label in a sentence (``{k}`` is the list length).
METRIC_LABELS: dict[str, str] = {
    "precision": "precision@{k}", "recall": "recall@{k}", "ndcg": "NDCG@{k}",
    "map": "MAP@{k}", "hit_rate": "hit rate@{k}", "rmse": "RMSE", "mae": "MAE",
}  # fmt: skip
#: Metrics where lower is better; every other metric read here is better higher.
LOWER_IS_BETTER = ("rmse", "mae")


def comparator_wins(fold_metrics: pd.DataFrame, k: int, reference: str = "SVD") -> list[str]:
    """Return one sentence per comparator whose mean beats ``reference`` on some metric.

    Parameters
    ----------
    fold_metrics
        ``Evaluation.fold_metrics``: tidy ``model, fold, metric, value``.
    k
        The top-N list length (for the ranking metrics' labels).
    reference
        The model the others are read against.

    Returns
    -------
    list[str]
        For each comparator (in table order) that has a better mean than ``reference`` on
        at least one of ``rmse, mae`` (lower is better) or the ranking metrics
        (``engine.metrics.RANKING_METRICS``, higher is better), e.g. ``"Popularity beats
        SVD on NDCG@10 (0.0412 vs 0.0310, better in 5 of 5 folds)."``, means with 4
        decimals as in the Model page's table. Means skip folds
        where a metric is undefined; folds are counted where both models have a value.
        Empty when ``reference`` wins everywhere or is absent.
    """
    metrics = [*LOWER_IS_BETTER, *RANKING_METRICS]
    rows = fold_metrics[fold_metrics["metric"].isin(metrics)].dropna(subset=["value"])
    wide = rows.pivot_table(index=["metric", "fold"], columns="model", values="value")
    if reference not in wide.columns:
        return []
    sentences = []
    for model in [m for m in pd.unique(fold_metrics["model"]) if m != reference]:
        if model not in wide.columns:
            continue
        parts = []
        for metric in metrics:
            if metric not in wide.index.get_level_values("metric"):
                continue
            pair = wide.loc[metric, [model, reference]]
            mine, theirs = pair[model].mean(), pair[reference].mean()
            if pd.isna(mine) or pd.isna(theirs):
                continue
            sign = -1 if metric in LOWER_IS_BETTER else 1
            if sign * (mine - theirs) <= 0:
                continue
            both = pair.dropna()
            won = int((sign * (both[model] - both[reference]) > 0).sum())
            label = METRIC_LABELS[metric].format(k=k)
            parts.append(
                f"{label} ({mine:.4f} vs {theirs:.4f}, better in {won} of "
                f"{len(both)} fold{'s' * (len(both) != 1)})"
            )
        if parts:
            sentences.append(f"{model} beats {reference} on {_join(parts)}.")
    return sentences


def _join(parts: list[str]) -> str:
    """Join as ``a``, ``a and b``, ``a, b and c``."""
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
