"""Incremental update (``engine.update``) against a full retrain, on a rolling monthly protocol.

Protocol: train the default SVD (exact refit) on every rating before month ``m0``; then for
each following month ``m`` with a next month to score on:

* **update**: ``update_model`` with month ``m``'s ratings, applied to the previous update
  (a chain of updates, never retrained), without and with ``refresh_items``;
* **retrain**: ``train`` on every rating up to the end of month ``m``;

and score all three on month ``m + 1``'s ratings whose user and item have a rating up to
month ``m`` (the same pairs for all three; an item new since ``m0`` has no item side in
the update without refresh and is predicted ``mu + b_u``). RMSE of predictions clipped to
the scale. Timed: ``update_model`` (merge, refits, record) against ``train`` on the merged
data; loading the batch file is not timed for either. Both run with the BLAS threads the CLI
uses (``engine.checks.blas_threads``, one by default), as ``python -m engine`` would.

Usage: ``python -m tests.benchmarks.update [ml-100k|sample]`` prints one row per month;
``python -m tests.benchmarks --only update`` runs the summary cases.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from tests.benchmarks.cases import CASES, ML100K, ROOT

#: First scored update month per dataset: the months before it are the initial training set.
START = {"ml-100k": "1997-12", "sample": "2022-07"}


def _month(ratings: pd.DataFrame) -> pd.Series:
    seconds = ratings["timestamp"].astype("float64")
    return pd.to_datetime(seconds, unit="s").dt.to_period("M").astype(str)


def _timed(func, *args, **kwargs):
    """``(result, wall seconds, CPU seconds of this process)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _rmse(model, frame: pd.DataFrame) -> float:
    from engine.model.svd import clip_to_scale

    inter = model.interactions
    users, items = inter.user_index(frame["user_id"]), inter.item_index(frame["item_id"])
    pred = clip_to_scale(model.predict_pairs(users, items), model.scale)
    return float(np.sqrt(np.mean((pred - frame["rating"].to_numpy()) ** 2)))


def rolling(source: str) -> list[dict[str, float | str]]:
    """Run the protocol on ``source`` (``ml-100k`` or ``sample``); one dict per month."""
    from threadpoolctl import threadpool_limits

    from engine.checks import blas_threads

    with threadpool_limits(limits=blas_threads()):
        return _rolling(source)


def _rolling(source: str) -> list[dict[str, float | str]]:
    from engine import DataFile, LoadOptions, load_dataset
    from engine.model import train
    from engine.update import update_model

    full = load_dataset(ML100K if source == "ml-100k" else ROOT / "sample_data")
    ratings = full.ratings.assign(month=_month(full.ratings))
    months = sorted(ratings["month"].unique())
    start = months.index(START[source])
    options = LoadOptions(scale=(full.scale.low, full.scale.high))

    def as_data(frame: pd.DataFrame, name: str, batch: bool = False):
        csv = frame.drop(columns="month").to_csv(index=False).encode()
        return load_dataset(DataFile(name, csv), options=options, batch=batch)

    data = as_data(ratings[ratings["month"] < months[start]], "train.csv")
    plain = refreshed = train(data)
    data_refreshed = data
    rows = []
    for m, next_m in zip(months[start:-1], months[start + 1 :], strict=True):
        batch = as_data(ratings[ratings["month"] == m], f"{m}.csv", batch=True)
        result, t_update, c_update = _timed(update_model, plain, data, batch)
        result_r, t_refresh, c_refresh = _timed(
            update_model, refreshed, data_refreshed, batch, refresh_items=True
        )
        retrained, t_retrain, c_retrain = _timed(train, result.data)
        plain, data = result.model, result.data
        refreshed, data_refreshed = result_r.model, result_r.data
        test = ratings[ratings["month"] == next_m]
        seen = test["user_id"].isin(data.ratings["user_id"]) & test["item_id"].isin(
            data.ratings["item_id"]
        )
        test = test[seen]
        rows.append({
            "month": m, "batch": batch.n_ratings, "scored": len(test),
            "users_refit": result.record.users_refit, "new_items": result.record.new_items,
            "rmse_update": _rmse(plain, test), "rmse_refresh": _rmse(refreshed, test),
            "rmse_retrain": _rmse(retrained, test),
            "s_update": t_update, "s_refresh": t_refresh, "s_retrain": t_retrain,
            "cpu_update": c_update, "cpu_refresh": c_refresh, "cpu_retrain": c_retrain,
        })  # fmt: skip
    return rows


def summary(rows: list[dict[str, float | str]]) -> tuple[str, float]:
    """One line of mean figures over the months, and the total update seconds."""
    f = pd.DataFrame(rows)
    gap = (f["rmse_update"] - f["rmse_retrain"]).mean()
    gap_r = (f["rmse_refresh"] - f["rmse_retrain"]).mean()
    speed = f["s_retrain"].sum() / f["s_update"].sum()
    speed_r = f["s_retrain"].sum() / f["s_refresh"].sum()
    median = (f["s_retrain"] / f["s_update"]).median()
    median_r = (f["s_retrain"] / f["s_refresh"]).median()
    cpu = f["cpu_retrain"].sum() / f["cpu_update"].sum()
    cpu_r = f["cpu_retrain"].sum() / f["cpu_refresh"].sum()
    text = (
        f"{len(f)} monthly batches ({f['month'].iloc[0]}..{f['month'].iloc[-1]}); mean RMSE on "
        f"the next month: retrain {f['rmse_retrain'].mean():.4f}, update "
        f"{f['rmse_update'].mean():.4f} (gap {gap:+.4f}), update --refresh-items "
        f"{f['rmse_refresh'].mean():.4f} (gap {gap_r:+.4f}); mean s per month: retrain "
        f"{f['s_retrain'].mean():.3f}, update {f['s_update'].mean():.3f} ({speed:.1f}x faster), "
        f"refresh {f['s_refresh'].mean():.3f} ({speed_r:.1f}x faster); median monthly "
        f"speed-up {median:.1f}x and {median_r:.1f}x; by CPU time {cpu:.1f}x and {cpu_r:.1f}x"
    )
    return text, float(f["s_update"].sum())


def _case(source: str) -> tuple[int, str, float]:
    rows = rolling(source)
    text, seconds = summary(rows)
    return int(sum(r["batch"] for r in rows)), text, seconds


CASES.update(
    {
        "update vs retrain, monthly, ml-100k": (lambda: _case("ml-100k"), "ml100k", None, 1),
        "update vs retrain, monthly, sample": (lambda: _case("sample"), "", None, 1),
    }
)


def main() -> int:
    source = sys.argv[1] if len(sys.argv) > 1 else "ml-100k"
    if source == "ml-100k" and not (ML100K / "u.data").exists():
        print(f"skipped: MovieLens 100K not found at {ML100K}")
        return 0
    rows = rolling(source)
    print(pd.DataFrame(rows).round(4).to_string(index=False))
    print(summary(rows)[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
