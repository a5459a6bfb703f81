"""Version comparison (``engine.compare``, ``python -m engine compare``, Compare page)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest

from engine.analysis import Analysis, AnalysisSettings
from engine.audit import AuditConfig
from engine.cli import main
from engine.compare import CompareError, compare_models, paired_permutation_p
from engine.compare.paired import paired_difference, sign_flip_differences
from engine.data import DataFile, load_dataset
from engine.model import ModelConfig
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel
from engine.report.comparison_html import VERDICT_COLOURS
from engine.saved import save_analysis

N_PER_TEAM = 20
ITEMS = np.array([f"i{j}" for j in range(6)], dtype=object)
TEAM_X = [f"x{u:02d}" for u in range(N_PER_TEAM)]
TEAM_Y = [f"y{u:02d}" for u in range(N_PER_TEAM)]
USERS = TEAM_X + TEAM_Y


#: A catalogue user of the toys' training data: rated every item, never in a window.
CATALOGUE = "zz"


def _model(bu: np.ndarray, bi: np.ndarray, scale: tuple[float, float] = (1.0, 5.0)):
    """A hand-built model: ``prediction = 3 + b_u + b_i`` (no factors) for ``USERS``.

    Every user rated i0, and the catalogue user ``CATALOGUE`` (``b_u = 0``, last in the
    user order) every item: each item has a training rating, so the model knows it (an
    item without one would be predicted by the fallback, ``engine.compare.measures``).
    """
    history = pd.DataFrame(
        {
            "user_id": USERS + [CATALOGUE] * len(ITEMS),
            "item_id": ["i0"] * len(USERS) + list(ITEMS),
            "rating": 3.0,
        }
    )
    inter = Interactions.from_frame(history, ITEMS)
    assert list(inter.user_ids) == [*USERS, CATALOGUE]
    zeros = np.zeros((len(USERS) + 1, 1)), np.zeros((len(ITEMS), 1))
    return TrainedModel(ModelConfig(), 3.0, np.append(np.asarray(bu, float), 0.0),
                        np.asarray(bi, float), zeros[0], zeros[1], inter, scale)  # fmt: skip


@pytest.fixture(scope="module")
def toy():
    """A: predicts 3 everywhere, lists i3, i4 (k=2). B: +1 for team x (exact), -0.5 for y.

    Window: every user rates i1 and i2 with 4 (relevant). RMSE: A 1 for everyone; B 0 for
    team x and 1.5 for team y. B's lists are i1, i2 (i3, i4 pushed down): NDCG 0 -> 1.
    """
    bu_b = np.array([1.0] * N_PER_TEAM + [-0.5] * N_PER_TEAM)
    a = _model(np.zeros(len(USERS)), [0, 0, 0, 0.5, 0.4, 0])
    b = _model(bu_b, [0, 0, 0, -0.5, -0.4, 0])
    window = pd.DataFrame({"user_id": np.repeat(USERS, 2), "item_id": ["i1", "i2"] * len(USERS),
                           "rating": 4.0})  # fmt: skip
    users = pd.DataFrame({"team": ["x"] * N_PER_TEAM + ["y"] * N_PER_TEAM},
                         index=pd.Index(USERS, name="user_id"))  # fmt: skip
    items = pd.DataFrame({"kind": ["old", "old", "old", "new", "new", "new"]},
                         index=pd.Index(ITEMS, name="item_id"))  # fmt: skip
    return a, b, window, users, items


CONFIG = AuditConfig(k=2, min_group_size=5, permutations=999, bootstrap=100, seed=3)


def _row(rows: pd.DataFrame, metric: str, grouping: str, group: str) -> pd.Series:
    (index,) = np.flatnonzero(
        (rows["metric"] == metric) & (rows["grouping"] == grouping) & (rows["group"] == group)
    )
    return rows.iloc[index]


def test_per_group_differences_equal_the_hand_computed_values(toy):
    a, b, window, users, items = toy
    result = compare_models(a, b, window, CONFIG, users=users, items=items)
    rows = result.rows
    x, y = _row(rows, "RMSE", "team", "x"), _row(rows, "RMSE", "team", "y")
    assert (x["value_a"], x["value_b"], x["difference"]) == pytest.approx((1.0, 0.0, -1.0))
    assert (y["value_a"], y["value_b"], y["difference"]) == pytest.approx((1.0, 1.5, 0.5))
    overall = _row(rows, "RMSE", "all users", "all users")
    assert overall["difference"] == pytest.approx(np.sqrt((20 * 2 * 2.25) / 80) - 1.0)
    assert overall["n_pairs"] == 80 and overall["n_users"] == 40
    assert x["verdict"] == "improved" and y["verdict"] == "worsened"
    # 2 of 2^20 sign flips reach |d| in a team: no permutation of 999 does -> the bound
    for row in (x, y):
        assert row["p_value"] == pytest.approx(1 / 1000) and row["p_is_bound"]
        assert row["p_adjusted"] == pytest.approx(2 / 1000)  # Holm over the 2 teams
        assert row["ci_low"] <= row["difference"] <= row["ci_high"]
    ndcg = _row(rows, "NDCG@2", "all users", "all users")
    assert (ndcg["value_a"], ndcg["value_b"], ndcg["verdict"]) == (0.0, 1.0, "improved")
    new = _row(rows, "exposure: kind", "kind", "new")
    assert (new["value_a"], new["value_b"], new["verdict"]) == (1.0, 0.0, "lower")
    assert result.counts["pairs_used"] == 80 and result.counts["users_ndcg"] == 40
    (rmse_sentence,) = [s for s in result.sentences if "RMSE" in s]
    assert "improved it for team = x" in rmse_sentence
    assert "worsened it for team = y" in rmse_sentence
    assert "p < 0.001" in rmse_sentence


def test_identical_versions_show_no_change(toy):
    a, _, window, users, items = toy
    result = compare_models(a, a, window, CONFIG, users=users, items=items)
    tested = result.rows[result.rows["verdict"] != "insufficient data"]
    assert len(tested) and (tested["difference"] == 0).all()
    assert (tested["verdict"] == "no significant change").all()
    assert (tested["p_value"] == 1.0).all()
    fallback, *metrics = result.sentences  # first: how many ratings each predicted by fallback
    assert fallback == ("Both versions predicted all 80 window ratings with their model (each "
                        "had a training rating of every user and item): no fallback.")  # fmt: skip
    assert (result.n_fallback_a, result.n_fallback_b) == (0, 0)
    assert len(metrics) == 2 and all("no significant change" in s for s in metrics)


def test_sign_flip_p_matches_a_brute_force_enumeration():
    rng = np.random.default_rng(5)
    a_a, a_b, n = rng.uniform(0, 8, 4), rng.uniform(0, 8, 4), rng.integers(1, 6, 4).astype(float)
    observed = np.sqrt(a_b.sum() / n.sum()) - np.sqrt(a_a.sum() / n.sum())
    assert paired_difference(a_a, a_b, n, np.sqrt)[2] == pytest.approx(observed)
    brute = []
    for signs in itertools.product([False, True], repeat=4):
        new_a = [b if s else a for a, b, s in zip(a_a, a_b, signs, strict=True)]
        new_b = [a if s else b for a, b, s in zip(a_a, a_b, signs, strict=True)]
        brute.append(np.sqrt(sum(new_b) / n.sum()) - np.sqrt(sum(new_a) / n.sum()))
    flips = np.array(list(itertools.product([False, True], repeat=4)))
    np.testing.assert_allclose(sign_flip_differences(a_a, a_b, n, np.sqrt, flips), brute)
    exact = np.mean(np.abs(brute) >= abs(observed) - 1e-12)
    sampled = paired_permutation_p(a_a, a_b, n, np.sqrt, 40000, np.random.default_rng(1))
    assert sampled == pytest.approx(exact, abs=0.01)


def test_different_scales_and_an_unusable_window_are_refused(toy):
    a, _, window, _, _ = toy
    other = _model(np.zeros(len(USERS)), np.zeros(len(ITEMS)), scale=(1.0, 10.0))
    with pytest.raises(CompareError, match="different rating scales"):
        compare_models(a, other, window, CONFIG)
    # a user neither version knows is kept, predicted by both fallbacks (mu + b_i = 3)
    strangers = compare_models(a, a, window.assign(user_id="nobody"), CONFIG)
    assert (strangers.n_fallback_a, strangers.n_fallback_b) == (80, 80)
    overall = _row(strangers.rows, "RMSE", "all users", "all users")
    assert (overall["value_a"], overall["value_b"], overall["n_pairs"]) == (1.0, 1.0, 80)
    trained = pd.DataFrame({"user_id": USERS, "item_id": "i0", "rating": 4.0})
    with pytest.raises(CompareError, match=r"No rating of the window \(40 rows\) can be "
                       r"compared \(40 pair in a version's training data\)"):  # fmt: skip
        compare_models(a, a, trained, CONFIG)
    with pytest.raises(CompareError, match=r"\(0 rows\) can be compared \(empty window\)"):
        compare_models(a, a, window.head(0), CONFIG)


# -- command line --------------------------------------------------------------------------
def _ratings(rows: list[tuple], name: str) -> DataFile:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return DataFile(name, frame.to_csv(index=False).encode())


#: 2020-09-13T12:26:40Z: epoch seconds the loader reads as timestamps.
T0 = 1_600_000_000


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A trained on a toy, B = A updated with later ratings, and a window after both."""
    rng = np.random.default_rng(11)
    folder = tmp_path_factory.mktemp("compare")
    cells = [(f"u{u}", f"i{i}") for u in range(40) for i in range(15)]
    order = rng.permutation(len(cells))
    ratings = [(*cells[c], int(rng.integers(1, 6))) for c in order]
    old = [(*r, T0 + 1000 + t) for t, r in enumerate(ratings[:300])]
    new = [(*r, T0 + 5000 + t) for t, r in enumerate(ratings[300:400])]
    later = [(*r, T0 + 9000 + t) for t, r in enumerate(ratings[400:])]
    settings = AnalysisSettings(model=ModelConfig(n_factors=3, n_epochs=20, seed=1))
    analysis = Analysis(load_dataset(_ratings(old, "old.csv")), settings)
    analysis.model  # noqa: B018  (computes the model stage, which is saved)
    a = save_analysis(analysis, folder / "A")
    (folder / "new.csv").write_bytes(_ratings(new, "new.csv").content)
    (folder / "window.csv").write_bytes(_ratings(later, "window.csv").content)
    assert main(["update", str(a), "--ratings", str(folder / "new.csv"),
                 "--out", str(folder / "B")]) == 0  # fmt: skip
    return folder


def test_cli_compares_an_analysis_with_its_update(saved, capsys):
    capsys.readouterr()
    out = saved / "out"
    assert main(["compare", str(saved / "A"), str(saved / "B"), "--window",
                 str(saved / "window.csv"), "--out", str(out), "--permutations", "200",
                 "--min-group-size", "5"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["counts"]["pairs_used"] == 200  # every later pair: users, items known
    assert sum(printed["counts"]["pairs_excluded"].values()) == 0
    assert any(s.startswith("B ") and "RMSE" in s for s in printed["sentences"])
    written = json.loads((out / "comparison.json").read_text("utf-8"))
    assert written["sentences"] == printed["sentences"]
    rows = pd.read_csv(out / "comparison.csv")
    assert {"RMSE", "NDCG@10"} <= set(rows["metric"])
    overall = rows[(rows["metric"] == "RMSE") & (rows["grouping"] == "all users")]
    assert overall["n_pairs"].tolist() == [200]


@pytest.mark.parametrize(
    "case, fragment",
    [("not saved", "saved analysis"),
     ("trained pair", "No rating of the window (1 rows) can be compared (1 pair in a version's"),
     ("old window", "can be compared (100 not after the training data)")],
)  # fmt: skip
def test_cli_bad_inputs_exit_2_with_one_sentence(saved, tmp_path, capsys, case, fragment):
    a, b, window = saved / "A", saved / "B", saved / "window.csv"
    if case == "not saved":
        a = tmp_path
    elif case == "trained pair":  # a pair of B's batch, given again after the training data
        window = tmp_path / "w.csv"
        first = pd.read_csv(saved / "new.csv").iloc[0]
        rows = [(first["user_id"], first["item_id"], 4, T0 + 20_000)]
        window.write_bytes(_ratings(rows, "w.csv").content)
    else:  # ratings of the training period: pairs already rated
        window = tmp_path / "w.csv"
        window.write_text((saved / "new.csv").read_text())
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--window", str(window)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and fragment in err and "Traceback" not in err
    assert err.count("\n") == 1


# -- dashboard page --------------------------------------------------------------------------
def test_compare_page_compares_the_session_analysis_with_an_uploaded_update(tmp_path):
    from engine.saved import zip_analysis
    from engine.update import update_analysis
    from tests.conftest import SAMPLE_DIR
    from tests.test_app import app, assert_ok, frame_with

    sample = load_dataset(SAMPLE_DIR)
    analysis = Analysis(sample)
    rated = set(zip(sample.ratings["user_id"], sample.ratings["item_id"], strict=True))
    rng = np.random.default_rng(2)
    users = rng.choice(sample.ratings["user_id"].unique(), 300, replace=False)
    items = sample.ratings["item_id"].unique()
    fresh = [(u, i) for u in users for i in rng.choice(items, 12, replace=False)
             if (u, i) not in rated]  # fmt: skip
    start = int(sample.ratings["timestamp"].max()) + 1
    rows = [(u, i, int(rng.integers(1, 6)), start + t) for t, (u, i) in enumerate(fresh)]
    half = len(rows) // 2
    batch = load_dataset(_ratings(rows[:half], "batch.csv"), batch=True)
    updated, _ = update_analysis(analysis, batch)
    b_zip = zip_analysis(save_analysis(updated, tmp_path / "B"))
    window = _ratings(rows[half:], "window.csv").content

    at = app()
    at.switch_page("views/compare.py")
    at.run()
    at.file_uploader(key="compare_b").set_value(("B.zip", b_zip, "application/zip"))
    at.file_uploader(key="compare_window").set_value(("window.csv", window, "text/csv"))
    at.run()
    at.button(key="run_compare").click().run()
    assert_ok(at)
    table = frame_with(at, "Verdict", "B - A", "p", "95% interval of B - A", "Note")
    assert set(table["Metric"]) == {"RMSE"}  # the chosen metric's rows
    assert {"age_band", "gender", "region"} <= set(table["Grouping"])
    rows = at.session_state["compare_result"].rows
    assert len(table) == (rows["metric"] == "RMSE").sum()
    cells = table.astype(str).to_numpy().ravel()
    assert not any(c in ("None", "nan", "<NA>") or "e-0" in c for c in cells)
    untested = table[table["Verdict"] == "insufficient data"]
    assert (untested["95% interval of B - A"] == "—").all()
    compared = frame_with(at, "name", "dataset", "dates")  # What was compared, as the report
    assert list(compared[""]) == ["A", "B", "window"]
    assert list(compared["name"]) == ["This session's analysis", "B.zip", "window.csv"]
    assert compared["dates"].iloc[2].startswith("window ")
    sentences = [m.value for m in at.markdown if "overall" in m.value]
    assert any("RMSE overall" in s for s in sentences)
    at.selectbox(key="compare_metric").set_value("NDCG@10").run()
    assert set(frame_with(at, "Verdict", "B - A")["Metric"]) == {"NDCG@10"}
    (chart,) = at.get("plotly_chart")
    traces = json.loads(chart.proto.spec)["data"]  # coloured by verdict, as the report
    verdicts = {t["name"]: t["name"].removesuffix(" (interval excludes 0)") for t in traces}
    assert set(verdicts.values()) <= set(VERDICT_COLOURS)
    assert all(t["marker"]["color"] == VERDICT_COLOURS[verdicts[t["name"]]] for t in traces)
    buttons = {b.key: b.proto.label for b in at.get("download_button")}
    assert set(buttons) == {"download_comparison.html", "download_comparison.json"}
    files = at.session_state["compare_files"]  # what the buttons serve: render_comparison's
    document = json.loads(files["comparison.json"])
    assert document["compared"]["b"]["name"] == "B.zip"
    assert document["compared"]["a"]["name"] == "This session's analysis"
    assert len(document["sentences"]) == len(at.session_state["compare_result"].sentences)
    assert document["sentences"] == at.session_state["compare_result"].sentences
    assert b'<section id="charts">' in files["comparison.html"]
