"""Benchmark cases. Each returns the number of rows handled; the runner times it.

Every case runs in a fresh subprocess, so its peak memory (``ru_maxrss``) is its own.
Baselines are what an analyst would otherwise use on the same file, run in the same
table so that the ratio is measured side by side.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
ML100K = ROOT.parent / "shared" / "datasets" / "ml-100k"
WORK = ROOT / ".bench"
MILLION_CSV = WORK / "ratings_1m.csv"


def ensure_million_csv() -> Path:
    """Write a 1,000,000-row CSV once.

    20,000 users, 20,000 items with power-law popularity, ratings 1-5, timestamps,
    and 5,000 repeated (user, item) pairs (0.5%) for the duplicate policy.
    """
    if MILLION_CSV.exists():
        return MILLION_CSV
    WORK.mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    n, repeats = 1_000_000, 5_000
    users = rng.integers(1, 20_001, 2 * n)
    weights = 1 / np.arange(1, 20_001) ** 0.9
    items = rng.choice(np.arange(1, 20_001), 2 * n, p=weights / weights.sum())
    pairs = pd.DataFrame({"user_id": users, "item_id": items}).drop_duplicates()
    pairs = pairs.iloc[: n - repeats]
    pairs = pd.concat([pairs, pairs.sample(repeats, random_state=0)], ignore_index=True)
    pairs["rating"] = rng.integers(1, 6, n)
    pairs["timestamp"] = rng.integers(1_400_000_000, 1_700_000_000, n)
    pairs.to_csv(MILLION_CSV, index=False)
    return MILLION_CSV


def ml100k_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(ML100K.iterdir()):
            if path.is_file():
                zf.write(path, f"ml-100k/{path.name}")
    return buffer.getvalue()


def load_ml100k_folder() -> int:
    from engine import load_dataset

    return load_dataset(ML100K).report.rows_read


def load_ml100k_zip() -> int:
    from engine import DataFile, load_dataset

    return load_dataset(DataFile("ml-100k.zip", ml100k_zip())).report.rows_read


def surprise_ml100k() -> int:
    from surprise import Dataset, Reader

    reader = Reader(line_format="user item rating timestamp", sep="\t")
    return len(Dataset.load_from_file(str(ML100K / "u.data"), reader).raw_ratings)


def load_million_csv() -> int:
    from engine import load_dataset

    return load_dataset(MILLION_CSV).report.rows_read


def pandas_million_csv() -> int:
    return len(pd.read_csv(MILLION_CSV))


def surprise_million_csv() -> int:
    from surprise import Dataset, Reader

    reader = Reader(line_format="user item rating timestamp", sep=",", skip_lines=1)
    return len(Dataset.load_from_file(str(MILLION_CSV), reader).raw_ratings)


def profile_million_csv() -> int:
    from engine import dataset_profile, load_dataset

    data = load_dataset(MILLION_CSV)
    return dataset_profile(data).n_ratings


def generate_sample() -> int:
    from engine.synth import generate, write_dataset

    dataset = generate()
    with tempfile.TemporaryDirectory() as folder:
        write_dataset(dataset, folder)
    return len(dataset.ratings)


SURPRISE_100K = "surprise load_from_file ml-100k"

#: name -> (function, needs, baseline name or None, repeats)
CASES: dict[str, tuple[Callable[[], int], str, str | None, int]] = {
    "load ml-100k folder": (load_ml100k_folder, "ml100k", SURPRISE_100K, 5),
    "load ml-100k zip": (load_ml100k_zip, "ml100k", SURPRISE_100K, 5),
    SURPRISE_100K: (surprise_ml100k, "ml100k", None, 5),
    "load + validate 1M-row CSV": (
        load_million_csv,
        "million",
        "pandas read_csv 1M (no checks)",
        3,
    ),
    "load + profile 1M-row CSV": (profile_million_csv, "million", None, 3),
    "pandas read_csv 1M (no checks)": (pandas_million_csv, "million", None, 3),
    "surprise load_from_file 1M": (surprise_million_csv, "million", None, 3),
    "generate + write sample data": (generate_sample, "", None, 3),
}
