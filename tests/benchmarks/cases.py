"""Benchmark cases. Each returns the number of rows handled; the runner times it.

Every case runs in a fresh subprocess, so its peak memory (``ru_maxrss``) is its own.
Baselines are what an analyst would otherwise use on the same file, run in the same
table so that the ratio is measured side by side.
"""

from __future__ import annotations

import io
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
ML100K = ROOT.parent / "shared" / "datasets" / "ml-100k"
WORK = ROOT / ".bench"
MILLION_CSV = WORK / "ratings_1m.csv"
SYNTH_1M = WORK / "synth_1m"


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


def load_ml100k_folder() -> tuple[int, str]:
    from engine import load_dataset

    return load_dataset(ML100K).report.rows_read, ""


def load_ml100k_zip() -> tuple[int, str]:
    from engine import DataFile, load_dataset

    return load_dataset(DataFile("ml-100k.zip", ml100k_zip())).report.rows_read, ""


def surprise_ml100k() -> tuple[int, str]:
    from surprise import Dataset, Reader

    reader = Reader(line_format="user item rating timestamp", sep="\t")
    return len(Dataset.load_from_file(str(ML100K / "u.data"), reader).raw_ratings), ""


def load_million_csv() -> tuple[int, str]:
    from engine import load_dataset

    return load_dataset(MILLION_CSV).report.rows_read, ""


def pandas_million_csv() -> tuple[int, str]:
    return len(pd.read_csv(MILLION_CSV)), ""


def surprise_million_csv() -> tuple[int, str]:
    from surprise import Dataset, Reader

    reader = Reader(line_format="user item rating timestamp", sep=",", skip_lines=1)
    return len(Dataset.load_from_file(str(MILLION_CSV), reader).raw_ratings), ""


def profile_million_csv() -> tuple[int, str]:
    from engine import dataset_profile, load_dataset

    data = load_dataset(MILLION_CSV)
    return dataset_profile(data).n_ratings, ""


def generate_sample() -> tuple[int, str]:
    from engine.synth import generate, write_dataset

    dataset = generate()
    with tempfile.TemporaryDirectory() as folder:
        write_dataset(dataset, folder)
    return len(dataset.ratings), ""


def _cross_validate(data, config) -> tuple[int, str]:
    from engine.evaluate import EvaluationConfig, evaluate

    result = evaluate(data, config, EvaluationConfig(models=("SVD",)))
    summary = result.to_dict()["models"]["SVD"]
    return data.n_ratings, (
        f"RMSE {summary['rmse']['mean']:.4f} ± {summary['rmse']['std']:.4f}, "
        f"MAE {summary['mae']['mean']:.4f} ± {summary['mae']['std']:.4f}, "
        f"fit {summary['fit_seconds']['mean']:.2f} s/fold, "
        f"NDCG@10 {summary['ndcg']['mean']:.4f}"
    )


def svd_default_no_refit_ml100k() -> tuple[int, str]:
    from engine import load_dataset
    from engine.model import ModelConfig

    return _cross_validate(load_dataset(ML100K), ModelConfig(refit_users=False))


def svd_default_refit_ml100k() -> tuple[int, str]:
    from engine import load_dataset
    from engine.model import ModelConfig

    return _cross_validate(load_dataset(ML100K), ModelConfig())


def svd_tuned_ml100k() -> tuple[int, str]:
    from engine import load_dataset
    from engine.model import ModelConfig

    return _cross_validate(load_dataset(ML100K), ModelConfig.from_preset("tuned"))


def _ml100k_model():
    from engine import load_dataset
    from engine.model import ModelConfig, train

    return train(load_dataset(ML100K), ModelConfig(refit_users=False))


def topn_vectorised_ml100k() -> tuple[int, str, float]:
    """All-users top-10 with numpy (timed alone); notes the largest gap to Surprise's est."""
    from surprise import SVD

    from engine.model.base import surprise_trainset
    from engine.recommend import recommend_all

    model = _ml100k_model()
    start = time.perf_counter()
    recs = recommend_all(model, 10)
    seconds = time.perf_counter() - start
    ratings = pd.DataFrame(
        {
            "user_id": np.repeat(model.interactions.user_ids, model.interactions.counts_per_user()),
            "item_id": model.interactions.item_ids[model.interactions.items],
            "rating": model.interactions.ratings,
        }
    )
    algo = SVD(random_state=0).fit(surprise_trainset(ratings, model.scale))
    scores = model.score_block(np.arange(model.interactions.n_users))
    users, items = model.interactions.user_ids, model.interactions.item_ids
    gap = max(
        abs(algo.predict(users[u], items[i], clip=False).est - scores[u, i])
        for u in range(model.interactions.n_users)
        for i in range(model.interactions.n_items)
    )
    return len(recs), f"max abs(ours - Surprise est) over all pairs = {gap:.1e}", seconds


def topn_surprise_recipe_ml100k() -> tuple[int, str, float]:
    """Surprise's documented recipe (timed alone): test() on build_anti_testset(), sort."""
    from collections import defaultdict

    from surprise import SVD

    from engine.model.base import surprise_trainset

    model = _ml100k_model()
    ratings = pd.DataFrame(
        {
            "user_id": np.repeat(model.interactions.user_ids, model.interactions.counts_per_user()),
            "item_id": model.interactions.item_ids[model.interactions.items],
            "rating": model.interactions.ratings,
        }
    )
    trainset = surprise_trainset(ratings, model.scale)
    algo = SVD(random_state=0).fit(trainset)
    start = time.perf_counter()
    predictions = algo.test(trainset.build_anti_testset())
    top = defaultdict(list)
    for uid, iid, _, est, _ in predictions:
        top[uid].append((iid, est))
    for uid, pairs in top.items():
        pairs.sort(key=lambda x: x[1], reverse=True)
        top[uid] = pairs[:10]
    seconds = time.perf_counter() - start
    return sum(len(v) for v in top.values()), "test() on build_anti_testset() + sort", seconds


def ensure_synthetic_million() -> Path:
    """Write a 1M-rating synthetic dataset shaped like MovieLens 1M (6,040 x 3,700) once."""
    from engine.synth import SynthConfig, generate, write_dataset

    if not (SYNTH_1M / "ratings.csv").exists():
        config = SynthConfig(n_users=6040, n_items=3700, n_ratings=1_000_000, seed=1)
        write_dataset(generate(config), SYNTH_1M)
    return SYNTH_1M


def pipeline_million() -> tuple[int, str]:
    """Train + 5-fold evaluation (SVD) + all-users top-10 on 1M synthetic ratings."""
    from engine import load_dataset
    from engine.evaluate import EvaluationConfig, evaluate
    from engine.model import train
    from engine.recommend import recommend_all

    data = load_dataset(SYNTH_1M)
    start = time.perf_counter()
    model = train(data)
    fit = time.perf_counter() - start
    result = evaluate(data, evaluation=EvaluationConfig(models=("SVD",)))
    cv = time.perf_counter() - start - fit
    recs = recommend_all(model, 10)
    top = time.perf_counter() - start - fit - cv
    rmse = result.to_dict()["models"]["SVD"]["rmse"]["mean"]
    return data.n_ratings, (
        f"train {fit:.1f} s + 5-fold {cv:.1f} s + top-10 for {recs['user_id'].nunique():,} "
        f"users {top:.1f} s; RMSE {rmse:.4f}"
    )


def _explain_pairs(n_pairs: int = 200, max_ratings: int | None = None):
    """The model (default preset) and 200 seeded random (user, top-10 item) pairs on ml-100k."""
    from engine import load_dataset
    from engine.model import train
    from engine.recommend import recommend_all

    data = load_dataset(ML100K)
    model = train(data)
    recs = recommend_all(model, 10)
    users = model.interactions.user_index(recs["user_id"].to_numpy())
    if max_ratings is not None:
        recs = recs[model.interactions.counts_per_user()[users] <= max_ratings]
    rows = recs.iloc[np.random.default_rng(0).choice(len(recs), n_pairs, replace=False)]
    return data, model, list(zip(rows["user_id"], rows["item_id"], strict=True))


def _aopc(model, pairs, attribution, k_max: int = 5, seed: int = 0) -> tuple[float, float]:
    """AOPC@k_max of an attribution and of random deletion (Samek et al. 2017).

    AOPC = mean over pairs and k = 1..k_max of (prediction - prediction after removing
    the k most positively attributed ratings and refolding); random removes k at random.
    """
    rng = np.random.default_rng(seed)
    ids = model.interactions.item_ids
    ours, rand = [], []
    for user_id, item_id in pairs:
        user = model.interactions.user_index([user_id])[0]
        item = model.interactions.item_index([item_id])[0]
        vector = model.user_vector(user)
        before = model.score_vector(vector)[item]
        order = np.argsort(-attribution(user, item)[: len(vector.items)], kind="stable")
        shuffled = rng.permutation(len(vector.items))
        for k in range(1, min(k_max, len(vector.items) - 1) + 1):
            for drop, sink in ((order[:k], ours), (shuffled[:k], rand)):
                keep = np.ones(len(vector.items), bool)
                keep[drop] = False
                refolded = model.fold_in(ids[vector.items[keep]], vector.ratings[keep])
                sink.append(before - model.score_vector(refolded)[item])
    return float(np.mean(ours)), float(np.mean(rand))


def explain_exact_ml100k() -> tuple[int, str, float]:
    """Latency of the exact bundle (factors, history split, neighbours) and counterfactual."""
    from engine.explain import explain_prediction, linear_history

    data, model, pairs = _explain_pairs()
    exact, counterfactual = [], []
    for user_id, item_id in pairs:
        start = time.perf_counter()
        explain_prediction(model, user_id, item_id, data=data, counterfactual=False)
        exact.append(time.perf_counter() - start)
        start = time.perf_counter()
        explain_prediction(model, user_id, item_id, data=data)
        counterfactual.append(time.perf_counter() - start - exact[-1])
    ours, rand = _aopc(
        model, pairs, lambda u, i: linear_history(model, model.user_vector(u), i).values
    )
    p50, p95 = np.percentile(exact, [50, 95]) * 1000
    c50, c95 = np.percentile(counterfactual, [50, 95]) * 1000
    return (
        len(pairs),
        (
            f"exact bundle p50 {p50:.1f} ms, p95 {p95:.1f} ms; counterfactual adds "
            f"p50 {c50:.0f} ms, p95 {c95:.0f} ms; AOPC@5 exact split {ours:.4f} vs random "
            f"{rand:.4f}"
        ),
        float(np.median(exact)),
    )


def explain_shapley_ml100k() -> tuple[int, str, float]:
    """Latency of the 10-permutation Shapley view (users with <= 300 ratings) and its AOPC."""
    from engine.explain import shapley_history

    _, model, pairs = _explain_pairs(max_ratings=300)
    first = model.interactions.user_index([pairs[0][0]])[0]
    shapley_history(model, model.user_vector(first), 0)  # one-time numba compile in shap
    cache, times = {}, []
    for user_id, item_id in pairs:
        user = model.interactions.user_index([user_id])[0]
        item = model.interactions.item_index([item_id])[0]
        start = time.perf_counter()
        cache[user, item] = shapley_history(model, model.user_vector(user), item).values
        times.append(time.perf_counter() - start)

    ours, rand = _aopc(model, pairs, lambda u, i: cache[u, i])
    p50, p95 = np.percentile(times, [50, 95])
    return (
        len(pairs),
        (
            f"10 permutations, users <= 300 ratings: p50 {p50:.2f} s, p95 {p95:.2f} s; "
            f"AOPC@5 Shapley {ours:.4f} vs random {rand:.4f}"
        ),
        float(np.median(times)),
    )


def _audit(folder) -> tuple[int, str, float]:
    """Train + SVD 5-fold evaluation (not timed), then the full audit (timed)."""
    from engine import load_dataset
    from engine.audit import AuditConfig, run_audit
    from engine.evaluate import EvaluationConfig, evaluate
    from engine.model import train

    data = load_dataset(folder)
    model = train(data)
    evaluation = evaluate(data, evaluation=EvaluationConfig(models=("SVD",)))
    start = time.perf_counter()
    result = run_audit(data, model, evaluation, AuditConfig(bootstrap=200))
    seconds = time.perf_counter() - start
    m = result.metrics
    rmse = m[
        (m["metric"] == "rmse") & m["grouping"].isin(["gender", "age", "age_band", "occupation"])
    ]
    by_group = ", ".join(
        f"{r.grouping} {r.group} {r.value:.3f}{' (flagged ' + r.direction + ')' if r.flag else ''}"
        for r in rmse.itertuples()
    )
    return (
        len(m),
        (f"{len(m)} metric rows, {int(m['flag'].sum())} flagged; RMSE by group: {by_group}"),
        seconds,
    )


def audit_sample() -> tuple[int, str, float]:
    """Full audit of the sample data."""
    return _audit(ROOT / "sample_data")


def audit_ml100k() -> tuple[int, str, float]:
    """Full audit of MovieLens 100K (directions reported, not asserted)."""
    return _audit(ML100K)


def audit_million() -> tuple[int, str, float]:
    """Full audit of the 1M synthetic ratings with user attributes."""
    return _audit(SYNTH_1M)


def browser_recommendations() -> tuple[int, str, float]:
    """Through Chromium: open -> recommendations rendered (first session, then a new one);
    switching the selected user (20 times) and what-if edits (20), each timed from the
    committing key press to the rerun finished and painted (``timed_rerun``)."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import (
        BROWSER_ARGS,
        CHROMIUM,
        OBSERVE_SCRIPT_STATE,
        READY,
        streamlit_server,
        timed_rerun,
        type_into_grid_cell,
    )

    ratings = pd.read_csv(ROOT / "sample_data" / "ratings.csv", dtype={"user_id": str})
    first = ratings[ratings["user_id"] == "u0001"].sort_values("item_id")["rating"].tolist()
    with streamlit_server("benchmark_server.log") as (url, _), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        opens = []
        for _ in range(2):  # the first open pays the server's imports and sample loading
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            start = time.perf_counter()
            page.goto(f"{url}/recommendations")
            page.wait_for_selector(READY, timeout=180_000)
            page.get_by_text("Because you rated").first.wait_for()
            opens.append(time.perf_counter() - start)
        page.evaluate(OBSERVE_SCRIPT_STATE)
        editor = page.locator("[data-testid='stDataFrame']").first
        page.get_by_text("What-if editor").click()
        edits = []
        for n in range(20):  # rows 0-9 of u0001: to another value, then back
            row = n % 10
            value = first[row] if n >= 10 else (1 if first[row] != 1 else 5)
            type_into_grid_cell(page, editor, row=row, right=1, text=f"{value:g}")
            edits.append(timed_rerun(page, lambda: page.keyboard.press("Enter")))
        switches = []
        for n in range(2, 22):
            box = page.locator("[data-testid='stSelectbox']").filter(has_text="User").first
            box.click()
            page.keyboard.type(f"u{n:04d}")
            switches.append(timed_rerun(page, lambda: page.keyboard.press("Enter")))
        browser.close()
    s50, s95 = np.percentile(switches, [50, 95])
    e50, e95 = np.percentile(edits, [50, 95])
    return (
        len(switches) + len(edits),
        (
            f"open to rendered recommendations: first {opens[0]:.1f} s, new session "
            f"{opens[1]:.1f} s (each session trains its own model); switching user: p50 "
            f"{s50:.2f} s, p95 {s95:.2f} s, max {max(switches):.2f} s; what-if edit: p50 "
            f"{e50:.2f} s, p95 {e95:.2f} s, max {max(edits):.2f} s"
        ),
        float(np.median(switches)),
    )


def _report_cli(models: str) -> tuple[int, str]:
    """``python -m engine audit sample_data --format html,pdf,json,csv`` in a fresh process
    (wall clock includes Python start-up, imports and training)."""
    import io
    import resource
    import subprocess
    import sys
    import tempfile

    from pypdf import PdfReader

    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-m", "engine", "audit", "sample_data", "--out", out, "--format",
             "html,pdf,json,csv", "--models", models],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        sizes = {p.name: p.stat().st_size for p in Path(out).iterdir()}
        pages = len(PdfReader(io.BytesIO((Path(out) / "report.pdf").read_bytes())).pages)
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return (
        len(sizes),
        f"models {models}; "
        + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sorted(sizes.items()))
        + f"; PDF {pages} pages; largest child process (CLI or Chromium) {child:.0f} MiB RSS",
    )


def report_cli_sample() -> tuple[int, str]:
    """The CLI report with its default comparators (SVD, BaselineOnly, Popularity)."""
    return _report_cli("SVD,BaselineOnly,Popularity")


def report_cli_sample_knn() -> tuple[int, str]:
    """The CLI report with every comparator, KNNBaseline included."""
    return _report_cli("SVD,BaselineOnly,KNNBaseline,Popularity")


SURPRISE_100K = "surprise load_from_file ml-100k"
SURPRISE_TOPN = "top-10 all users ml-100k, Surprise anti-testset recipe"

#: name -> (function, needs, baseline name or None, repeats). A function returns
#: ``(rows, notes)``, or ``(rows, notes, seconds)`` to time only part of its work.
CASES: dict[str, tuple[Callable[[], tuple], str, str | None, int]] = {
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
    "5-fold SVD default, refit off, ml-100k": (svd_default_no_refit_ml100k, "ml100k", None, 1),
    "5-fold SVD default + refit, ml-100k": (svd_default_refit_ml100k, "ml100k", None, 1),
    "5-fold SVD tuned preset, ml-100k": (svd_tuned_ml100k, "ml100k", None, 1),
    "top-10 all users ml-100k, vectorised": (topn_vectorised_ml100k, "ml100k", SURPRISE_TOPN, 1),
    SURPRISE_TOPN: (topn_surprise_recipe_ml100k, "ml100k", None, 1),
    "train + 5-fold + top-10, 1M synthetic ratings": (pipeline_million, "synth1m", None, 1),
    "explain 200 (user, top-10 item) pairs ml-100k, exact": (
        explain_exact_ml100k,
        "ml100k",
        None,
        1,
    ),
    "explain 200 pairs ml-100k, Shapley history": (explain_shapley_ml100k, "ml100k", None, 1),
    "audit (all families, 200 bootstrap), sample data": (audit_sample, "", None, 1),
    "audit (all families, 200 bootstrap), ml-100k": (audit_ml100k, "ml100k", None, 1),
    "audit (all families, 200 bootstrap), 1M synthetic": (audit_million, "synth1m", None, 1),
    "browser: sample recommendations (Chromium)": (browser_recommendations, "", None, 1),
    "report CLI, sample, 4 formats (default models)": (report_cli_sample, "", None, 1),
    "report CLI, sample, 4 formats (+ KNNBaseline)": (report_cli_sample_knn, "", None, 1),
}


# --- KNNBaseline's pearson_baseline similarity: Surprise's loop vs our fused sparse product ---

#: MovieLens latest-small's shape (users, items, ratings) for the synthetic similarity case.
LATEST_SMALL_SHAPE = (610, 9_724, 100_836)


def latest_small_like(seed: int = 2018) -> pd.DataFrame:
    """Ratings shaped like MovieLens latest-small: 610 users, all 9,724 items, 100,836 ratings.

    Users rate at least 20 items, with log-normal (sigma 1) activity on top (the largest
    about 3,300, latest-small's 2,698); item popularity is Zipf (exponent 0.9) and every
    item is rated at least once; ratings are half stars 0.5-5 from user and item biases
    plus noise.
    """
    n_users, n_items, n = LATEST_SMALL_SHAPE
    rng = np.random.default_rng(seed)
    weights = rng.lognormal(0.0, 1.0, n_users)
    counts = 20 + rng.multinomial(n - 20 * n_users, weights / weights.sum())
    popularity = rng.permutation(1.0 / np.arange(1, n_items + 1) ** 0.9)
    popularity /= popularity.sum()
    first = rng.choice(n_users, n_items, p=counts / counts.sum())  # who rates each item first
    users, items = [first], [np.arange(n_items)]
    for user in range(n_users):
        own = np.flatnonzero(first == user)
        quota = max(counts[user] - len(own), 0)
        draw = rng.choice(n_items, min(quota + len(own), n_items), replace=False, p=popularity)
        draw = draw[~np.isin(draw, own)][:quota]
        users.append(np.full(len(draw), user))
        items.append(draw)
    user, item = np.concatenate(users), np.concatenate(items)
    bu, bi = rng.normal(0, 0.4, n_users), rng.normal(0, 0.5, n_items)
    raw = 3.5 + bu[user] + bi[item] + rng.normal(0, 0.8, len(user))
    return pd.DataFrame(
        {
            "user_id": [f"u{u}" for u in user],
            "item_id": [f"i{i}" for i in item],
            "rating": np.clip(np.round(raw * 2) / 2, 0.5, 5.0),
        }
    )


#: Set up once per case process, reused by the repeats.
_SIMILARITY_INPUTS: dict[str, dict] = {}
_FIRST_CALL: list[float] = []


def _similarity_inputs(source: str) -> dict:
    """Trainset, its (user, item, rating) arrays and Surprise's ALS baselines (not timed).

    ``source`` is ``"ml-100k"`` or ``"synthetic"`` (``latest_small_like``). The
    baselines are ``BaselineOnly``'s, the same ALS fit as ``KNNBaseline``'s.
    """
    if source in _SIMILARITY_INPUTS:
        return _SIMILARITY_INPUTS[source]
    from surprise import BaselineOnly

    from engine import load_dataset
    from engine.model.base import surprise_trainset

    if source == "ml-100k":
        trainset = surprise_trainset(load_dataset(ML100K).ratings, (1.0, 5.0))
    else:
        trainset = surprise_trainset(latest_small_like(), (0.5, 5.0))
    baselines = BaselineOnly(verbose=False).fit(trainset)
    u, i, r = (np.array(c) for c in zip(*trainset.all_ratings(), strict=True))
    _SIMILARITY_INPUTS[source] = {
        "trainset": trainset, "users": u, "items": i, "ratings": r,
        "bu": baselines.bu, "bi": baselines.bi,
    }  # fmt: skip
    return _SIMILARITY_INPUTS[source]


def _ours(inputs: dict) -> np.ndarray:
    from engine.model.similarity import pearson_baseline

    return pearson_baseline(
        inputs["items"], inputs["users"], inputs["ratings"],
        inputs["trainset"].global_mean, inputs["bi"], inputs["bu"],
    )  # fmt: skip


def _warm_up() -> float:
    """Seconds of our first call in this process (numba import and cache load or compile)."""
    from engine.model.similarity import pearson_baseline

    if not _FIRST_CALL:
        start = time.perf_counter()
        pearson_baseline([0, 1], [0, 0], np.ones(2), 1.0, np.zeros(2), np.zeros(1))
        _FIRST_CALL.append(time.perf_counter() - start)
    return _FIRST_CALL[0]


def _surprise_similarity(source: str) -> tuple[int, str, float]:
    """Surprise's ``similarities.pearson_baseline`` (timed), then ours on the same input."""
    from surprise import similarities

    inputs = _similarity_inputs(source)
    trainset = inputs["trainset"]
    start = time.perf_counter()
    theirs = similarities.pearson_baseline(
        trainset.n_items, trainset.ur, 1, trainset.global_mean, inputs["bi"], inputs["bu"], 100
    )
    seconds = time.perf_counter() - start
    first = _warm_up()
    start = time.perf_counter()
    ours = _ours(inputs)
    ours_seconds = time.perf_counter() - start
    gap = float(np.abs(ours - theirs).max())
    return (
        trainset.n_ratings,
        (
            f"{trainset.n_users:,} users x {trainset.n_items:,} items; Surprise {seconds:.2f} s, "
            f"ours {ours_seconds:.3f} s in the same process ({seconds / ours_seconds:.1f}x); "
            f"max abs(ours - Surprise) = {gap:.1e}; ours' first call in a process adds "
            f"{first:.2f} s (numba)"
        ),
        seconds,
    )


def _our_similarity(source: str) -> tuple[int, str, float]:
    """Our ``pearson_baseline`` alone (timed after the one-time numba warm-up)."""
    inputs = _similarity_inputs(source)
    first = _warm_up()
    start = time.perf_counter()
    sim = _ours(inputs)
    seconds = time.perf_counter() - start
    return (
        inputs["trainset"].n_ratings,
        f"{sim.shape[0]:,}^2 float64 = {sim.nbytes / 2**20:.0f} MiB; first call +{first:.2f} s",
        seconds,
    )


SURPRISE_SIM_100K = "pearson_baseline sim ml-100k, Surprise"
SURPRISE_SIM_SYNTH = "pearson_baseline sim latest-small-like synthetic, Surprise"
CASES.update(
    {
        SURPRISE_SIM_100K: (lambda: _surprise_similarity("ml-100k"), "ml100k", None, 3),
        "pearson_baseline sim ml-100k, ours": (
            lambda: _our_similarity("ml-100k"), "ml100k", SURPRISE_SIM_100K, 5,
        ),
        SURPRISE_SIM_SYNTH: (lambda: _surprise_similarity("synthetic"), "", None, 3),
        "pearson_baseline sim latest-small-like synthetic, ours": (
            lambda: _our_similarity("synthetic"), "", SURPRISE_SIM_SYNTH, 3,
        ),
    }
)  # fmt: skip


# --- Speed targets of the default pipeline (issue #13 item 7) ---


def _blas_threads() -> int:
    """Threads of numpy's BLAS here (a child process gets the same): the exact refit's
    many small solves are much slower with two or more when other work shares the CPUs."""
    import numpy
    from threadpoolctl import threadpool_info

    numpy_libs = Path(numpy.__file__).parent.parent / "numpy.libs"
    return next(
        (i["num_threads"] for i in threadpool_info()
         if i["user_api"] == "blas" and Path(i["filepath"]).parent == numpy_libs),
        0,
    )  # fmt: skip


def audit_cli_json_sample() -> tuple[int, str, float]:
    """``python -m engine audit sample_data --format json`` in a fresh process: start-up,
    imports, load, train, 5-fold evaluation of SVD, BaselineOnly and Popularity, audit
    (200 bootstrap, 2,000 permutations) and the JSON report. Timed: wall clock of the
    child; the notes add its CPU time (user + sys), less disturbed by other load."""
    import resource
    import subprocess
    import sys
    import tempfile

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "engine", "audit", "sample_data", "--out", out,
             "--format", "json"],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        size = (Path(out) / "report.json").stat().st_size
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (
        1,
        f"wall {seconds:.1f} s, CPU {cpu:.1f} s (user + sys); report.json "
        f"{size / 1e6:.2f} MB; child peak RSS {after.ru_maxrss / 1024:.0f} MiB; "
        f"BLAS threads {_blas_threads()} (target <= 20 s on 2 cores)",
        seconds,
    )


def evaluate_latest_small_like() -> tuple[int, str, float]:
    """Train + 5-fold evaluation of SVD, BaselineOnly and Popularity on ``latest_small_like``
    (610 users x 9,724 items, 100,836 ratings): all-items top-10 lists per fold. Loading is
    not timed; the notes add the CPU time of the timed part."""
    from engine import DataFile, load_dataset
    from engine.evaluate import EvaluationConfig, evaluate
    from engine.model import train

    csv = latest_small_like().to_csv(index=False).encode()
    data = load_dataset(DataFile("ratings.csv", csv))
    start, cpu = time.perf_counter(), time.process_time()
    train(data)
    fit = time.perf_counter() - start
    result = evaluate(data, evaluation=EvaluationConfig(models=("SVD", "BaselineOnly",
                                                                  "Popularity")))  # fmt: skip
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    models = result.to_dict()["models"]
    rmse = ", ".join(f"{m} {models[m]['rmse']['mean']:.4f}" for m in ("SVD", "BaselineOnly"))
    ndcg = ", ".join(f"{m} {v['ndcg']['mean']:.4f}" for m, v in models.items())
    return (
        data.n_ratings,
        f"{data.n_users:,} users x {data.n_items:,} items; train {fit:.1f} s + 5-fold "
        f"{seconds - fit:.1f} s, CPU {cpu:.1f} s; RMSE {rmse}; NDCG@10 {ndcg}; "
        f"BLAS threads {_blas_threads()} (target <= 60 s)",
        seconds,
    )


CASES.update(
    {
        "audit CLI json, sample": (audit_cli_json_sample, "", None, 1),
        "train + 5-fold SVD/BaselineOnly/Popularity, 100k x 10k": (
            evaluate_latest_small_like, "", None, 1,
        ),
    }
)  # fmt: skip
