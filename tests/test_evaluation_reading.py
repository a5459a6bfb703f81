import numpy as np
import pandas as pd

from engine.evaluation_reading import comparator_wins


def _folds(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [
        {"model": model, "fold": fold, "metric": metric, "value": value}
        for (model, metric), folds in values.items()
        for fold, value in enumerate(folds)
    ]
    return pd.DataFrame(rows)


def test_popularity_beating_svd_on_ranking_is_said_with_means_and_folds():
    frame = _folds({
        ("SVD", "rmse"): [0.9, 0.9, 0.9], ("SVD", "ndcg"): [0.03, 0.03, 0.05],
        ("SVD", "recall"): [0.2, 0.2, 0.2], ("Popularity", "ndcg"): [0.05, 0.05, 0.04],
        ("Popularity", "recall"): [0.1, 0.1, 0.1], ("Popularity", "fit_seconds"): [9, 9, 9],
    })  # fmt: skip
    assert comparator_wins(frame, k=10) == [
        "Popularity beats SVD on NDCG@10 (0.0467 vs 0.0367, better in 2 of 3 folds)."
    ]


def test_lower_is_better_for_errors_and_several_metrics_are_joined():
    frame = _folds({
        ("SVD", "rmse"): [0.95, 0.95], ("SVD", "mae"): [0.75, 0.75],
        ("SVD", "hit_rate"): [0.5, 0.5], ("BaselineOnly", "rmse"): [0.94, 0.96],
        ("BaselineOnly", "mae"): [0.70, 0.74], ("BaselineOnly", "hit_rate"): [0.6, 0.6],
    })  # fmt: skip
    assert comparator_wins(frame, k=5) == [
        "BaselineOnly beats SVD on MAE (0.7200 vs 0.7500, better in 2 of 2 folds) and hit "
        "rate@5 (0.6000 vs 0.5000, better in 2 of 2 folds)."
    ]


def test_nothing_is_said_when_svd_wins_or_values_are_undefined():
    frame = _folds({
        ("SVD", "ndcg"): [0.05, np.nan], ("Popularity", "ndcg"): [0.04, 0.045],
        ("Popularity", "precision"): [0.5, 0.5], ("SVD", "precision"): [np.nan, np.nan],
    })  # fmt: skip
    assert comparator_wins(frame, k=10) == []
    assert comparator_wins(frame[frame["model"] != "SVD"], k=10) == []


def test_means_are_the_tables_and_folds_are_counted_where_both_are_defined():
    frame = _folds({("SVD", "ndcg"): [0.05, np.nan], ("Popularity", "ndcg"): [0.04, 0.09]})
    assert comparator_wins(frame, k=10) == [
        "Popularity beats SVD on NDCG@10 (0.0650 vs 0.0500, better in 0 of 1 fold)."
    ]
