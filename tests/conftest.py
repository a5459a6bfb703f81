from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DIR = ROOT / "sample_data"
ML100K = ROOT.parent / "shared" / "datasets" / "ml-100k"


@pytest.fixture
def ml100k() -> Path:
    if not (ML100K / "u.data").exists():
        pytest.skip(f"MovieLens 100K not found at {ML100K} (licence forbids bundling it)")
    return ML100K


def zip_bytes(files: dict[str, bytes | str]) -> bytes:
    """Return a zip archive holding ``files`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buffer.getvalue()


def synth_ratings(n_users: int, n_items: int, n_ratings: int, seed: int):
    """Canonical ratings (sorted, float) of a small synthetic dataset."""
    from engine.synth import SynthConfig, generate

    data = generate(SynthConfig(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=seed))
    ratings = data.ratings.astype({"rating": float})
    return ratings.sort_values(["user_id", "item_id"], ignore_index=True)


#: Hostile strings planted in the report fixture's data (titles, groups, column and file names).
XSS_TITLES = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')
HOSTILE_PROVIDER = "<img src=x onerror=alert('provider')>"
FORMULA_PROVIDER = "=cmd|' /C calc'!A0"
HOSTILE_GENDER = "<svg/onload=alert('gender')>"
HOSTILE_COLUMN = "region\"><script>alert('col')</script>"
HOSTILE_FOLDER = "data<img src=x onerror=alert('name')>"
#: Markup a renderer would interpret (Streamlit markdown, LaTeX, colour directives, plotly
#: tags): shown anywhere, each must read exactly as written (``engine.text``).
MARKUP_TITLES = ("{{7*7}} ${7*7}", "*x*", "<b>x</b>", "_y_", "`code`", "[link](http://x)",
                 ":red[x]")  # fmt: skip
#: Group values made of markup: a provider (item group) and a region (user group).
MARKUP_PROVIDER = "*x* <b>x</b> :red[x]"
MARKUP_REGION = "_y_ `code` {{7*7}} ${7*7}"
#: Every user id in the fixture starts with this; no report may contain it.
SECRET_USER = "SECRETUSER-"
REPORT_CREATED = "2026-01-02T03:04:05+00:00"


def hostile_sample(folder: Path) -> Path:
    """Write the sample with hostile strings and tracer user ids into ``folder``/HOSTILE_FOLDER.

    Titles cycle through ``XSS_TITLES`` and ``MARKUP_TITLES`` (``"<title> #<n>"``); the
    providers and regions hold the ``HOSTILE_*`` / ``MARKUP_*`` group values.

    One extra row has a non-numeric rating, so the load report holds an example row
    (with a tracer user id) that the report must not copy.
    """
    import pandas as pd

    out = folder / HOSTILE_FOLDER
    out.mkdir(parents=True)
    ratings = pd.read_csv(SAMPLE_DIR / "ratings.csv", dtype=str)
    users = pd.read_csv(SAMPLE_DIR / "users.csv", dtype=str)
    items = pd.read_csv(SAMPLE_DIR / "items.csv", dtype=str)
    for frame in (ratings, users):
        frame["user_id"] = SECRET_USER + frame["user_id"]
    bad = {"user_id": SECRET_USER + "REJECTED", "item_id": "i0001", "rating": "abc",
           "timestamp": "1483096888"}  # fmt: skip
    ratings = pd.concat([ratings, pd.DataFrame([bad])], ignore_index=True)
    titles = (*XSS_TITLES, *MARKUP_TITLES)
    items["title"] = [f"{titles[i % len(titles)]} #{i}" for i in range(len(items))]
    items["provider"] = items["provider"].replace(
        {"Indie Collective": HOSTILE_PROVIDER, "Redwood Films": FORMULA_PROVIDER,
         "Bluefin Studios": MARKUP_PROVIDER}
    )  # fmt: skip
    users["gender"] = users["gender"].replace({"F": HOSTILE_GENDER})
    users["region"] = users["region"].replace({"North": MARKUP_REGION})
    users = users.rename(columns={"region": HOSTILE_COLUMN})
    ratings.to_csv(out / "ratings.csv", index=False)
    users.to_csv(out / "users.csv", index=False)
    items.to_csv(out / "items.csv", index=False)
    return out


@pytest.fixture(scope="session")
def hostile_report(tmp_path_factory):
    """``(data, model, evaluation, result, report)`` for the hostile sample (fast settings)."""
    from datetime import datetime

    from engine import (
        AuditConfig,
        EvaluationConfig,
        ModelConfig,
        evaluate,
        load_dataset,
        run_audit,
        train,
    )
    from engine.report import build_report

    data = load_dataset(hostile_sample(tmp_path_factory.mktemp("hostile")))
    model = train(data)
    evaluation = evaluate(data, ModelConfig(), EvaluationConfig(models=("SVD", "BaselineOnly")))
    result = run_audit(data, model, evaluation, AuditConfig(bootstrap=50, permutations=300))
    created = datetime.fromisoformat(REPORT_CREATED)
    return data, model, evaluation, result, build_report(data, model, evaluation, result,
                                                         created=created)  # fmt: skip


def rare_half_step_and_lookalike_lines() -> list[str]:
    """CSV lines ``user,item,rating,timestamp``: 26 ratings, one of them 4.5.

    Users u1, U1 and u１ (fullwidth 1) look alike, as do items i2 and i2 + zero-width space.
    """
    users = ["u1", "U1", "u\uff11", "u2", "u3", "u4"]
    items = ["i1", "i2", "i2\u200b", "i3", "i4"]
    lines = [f"{u},{i},{1 + (n % 5)},{978300000 + n}" for n, (u, i) in
             enumerate((u, i) for u in users for i in items)][:26]  # fmt: skip
    return [lines[0].replace(",1,", ",4.5,"), *lines[1:]]


def per_seed(function, seeds: tuple[int, ...], tmp_path_factory, name: str) -> dict:
    """``{seed: function(seed, folder)}``, every seed at once, each in its own process.

    For slow fixtures of several seeds: 3 seeds on 2 cores take about 1.5 seeds' time. Each
    seed gets a fresh temporary folder (``name`` + seed). The processes are spawned (fresh
    interpreters, so nothing of this one, e.g. a JVM's threads, is forked), and
    ``function`` must be importable (a module-level function of a test module).
    """
    import multiprocessing
    import sys
    import types
    from concurrent.futures import ProcessPoolExecutor

    folders = [str(tmp_path_factory.mktemp(f"{name}{seed}")) for seed in seeds]
    context = multiprocessing.get_context("spawn")
    # A spawned child runs the parent's __main__ again; after a test that ran a script as
    # __main__ (Streamlit's AppTest.from_function does), that script is gone. The children
    # need only ``function``'s module, so they get an empty __main__.
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        with ProcessPoolExecutor(max_workers=len(seeds), mp_context=context) as pool:
            return dict(zip(seeds, pool.map(function, seeds, folders), strict=True))
    finally:
        sys.modules["__main__"] = main


def write_side(folder, data, model, per_part=1_000_000):
    """Write ``model``'s user side and ``data``'s ratings under ``folder`` as a kept run does
    (``engine.saved.user_side``); return the files' records for ``save_kept``."""
    import numpy as np
    import pandas as pd

    from engine.saved.user_side import parts_of, side_tables, write_user_side

    inter = model.interactions
    users, items = side_tables(inter.user_ids, model.bu, model.P, inter.item_ids, model.bi,
                               model.Q, inter.counts_per_item())  # fmt: skip
    ratings = pd.DataFrame({
        "u": inter.rows().astype(np.int32), "i": inter.items.astype(np.int32),
        "rating": inter.ratings, "timestamp": data.ratings["timestamp"].to_numpy(),
    })  # fmt: skip
    ratings["timestamp"] = pd.array(ratings["timestamp"], dtype="Int64")
    return write_user_side(folder, model.mu, users, items, parts_of(ratings, per_part),
                           data.users, data.items)  # fmt: skip


@pytest.fixture
def sessions_dir(tmp_path, monkeypatch):
    """Session work goes to a fresh folder."""
    monkeypatch.setenv("RECSYS_SESSION_DIR", str(tmp_path / "sessions"))
    return tmp_path / "sessions"


@pytest.fixture
def started_on(monkeypatch):
    """Start the app as ``streamlit run dashboard/app.py -- --analysis FOLDER`` would."""
    from streamlit.testing.v1 import AppTest

    from dashboard import state

    def start(folder) -> AppTest:
        monkeypatch.setattr("sys.argv", ["dashboard/app.py", "--analysis", str(folder)])
        state.starting_kept_run.clear()
        state.starting_analysis.clear()
        return AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180).run()

    yield start
    state.starting_kept_run.clear()  # the next test's server starts on the sample again
    state.starting_analysis.clear()
