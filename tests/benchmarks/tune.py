"""Grid search behind the ``tuned`` preset: ``python -m tests.benchmarks.tune``.

5-fold RMSE on MovieLens 100K (from ../shared/datasets/ml-100k) for each setting, with
the exact user refit on; prints a markdown table sorted by RMSE. Same folds for all.
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np

from engine import load_dataset
from engine.evaluate import assign_folds
from engine.metrics import rmse
from engine.model import ModelConfig, clip_to_scale, train_svd
from tests.benchmarks.cases import ML100K

GRID = {
    "n_factors": [50, 100, 200],
    "n_epochs": [20, 40],
    "lr_all": [0.005, 0.01],
    "reg_all": [0.02, 0.05, 0.1],
    "refit_lambda": [0.05, 0.1, 0.2],
}

#: Settings beyond the grid's edges (more epochs, stronger regularisation), run after it.
BEYOND = [
    {"n_factors": 100, "n_epochs": 60, "lr_all": 0.01, "reg_all": 0.1, "refit_lambda": 0.1},
    {"n_factors": 100, "n_epochs": 40, "lr_all": 0.01, "reg_all": 0.15, "refit_lambda": 0.1},
    {"n_factors": 100, "n_epochs": 60, "lr_all": 0.01, "reg_all": 0.15, "refit_lambda": 0.1},
]


def cv_rmse(data, config: ModelConfig, folds: int = 5) -> float:
    fold_of = assign_folds(data.n_ratings, folds, 0)
    scale = (data.scale.low, data.scale.high)
    errors = []
    for fold in range(folds):
        train, test = data.ratings[fold_of != fold], data.ratings[fold_of == fold]
        model = train_svd(train, scale, config)
        users = model.interactions.user_index(test["user_id"].to_numpy())
        items = model.interactions.item_index(test["item_id"].to_numpy())
        pred = clip_to_scale(model.predict_pairs(users, items), scale)
        errors.append(rmse(pred, test["rating"].to_numpy()))
    return float(np.mean(errors))


def main() -> int:
    if not (ML100K / "u.data").exists():
        print(f"MovieLens 100K not found at {ML100K}", file=sys.stderr)
        return 1
    data = load_dataset(ML100K)
    rows = []
    grid = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    for settings in grid + BEYOND:
        start = time.perf_counter()
        score = cv_rmse(data, ModelConfig(**settings))
        rows.append((score, settings, time.perf_counter() - start))
        print(f"{score:.4f} {settings}", file=sys.stderr, flush=True)
    rows.sort(key=lambda r: r[0])
    print("| RMSE | " + " | ".join(GRID) + " | seconds (5 folds) |")
    print("|---:|" + "---:|" * len(GRID) + "---:|")
    for score, settings, seconds in rows:
        cells = " | ".join(str(settings[k]) for k in GRID)
        print(f"| {score:.4f} | {cells} | {seconds:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
