"""Time-aware evaluation protocols: exact splits on a toy timeline, no leakage, cold start."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pandas as pd
import pytest

from engine import AuditConfig, ConfigError, DataError, EvaluationConfig, ModelConfig, load_dataset
from engine.analysis import Analysis, AnalysisSettings
from engine.cli import main
from engine.evaluate import evaluate
from engine.protocols import make_splits, split_table
from engine.report.formats import render_json
from engine.report.html import render_html
from engine.saved import open_analysis, save_analysis
from tests.conftest import ROOT, SAMPLE_DIR

T0 = 1_000_000_000  # 2001-09-09 01:46:40 UTC
SMALL = ModelConfig(n_factors=4, n_epochs=5)
FAST_AUDIT = AuditConfig(bootstrap=10, permutations=20, explanations=False)

#: (user, item, seconds after T0); row numbers are the positions in this list.
TIMELINE = [
    ("u1", "a", 0),  # 0
    ("u1", "b", 10),  # 1
    ("u2", "a", 20),  # 2
    ("u2", "c", 30),  # 3
    ("u1", "c", 40),  # 4
    ("u3", "a", 50),  # 5
    ("u2", "b", 60),  # 6
    ("u1", "d", 70),  # 7  d first rated here
    ("u3", "b", 80),  # 8
    ("u4", "a", 90),  # 9  u4's only rating
    ("u2", "e", 100),  # 10 e first rated here
    ("u5", "g", 5),  # 11
    ("u5", "x", 30),  # 12 same second as row 13: "x" > "f", so x is the later
    ("u5", "f", 30),  # 13
    ("u1", "z", None),  # 14 no time
]


def toy() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [u for u, _, _ in TIMELINE],
            "item_id": [i for _, i, _ in TIMELINE],
            "rating": [float(1 + n % 5) for n in range(len(TIMELINE))],
            "timestamp": pd.array([None if t is None else T0 + t for *_, t in TIMELINE], "Int64"),
        }
    )


def rows(mask: np.ndarray) -> list[int]:
    return np.flatnonzero(mask).tolist()


def test_temporal_split_trains_before_the_cut_and_tests_from_it_on():
    (split,) = make_splits(toy(), "temporal", test_share=0.2)
    # span 100 s, cut = ceil(T0 + 100 - 0.2 * 100) = T0 + 80
    assert split.test_start == T0 + 80
    assert rows(split.test) == [8, 9, 10]
    assert rows(split.train) == [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13]  # row 14 has no time
    table = split_table(toy(), [split]).iloc[0]
    assert (table.n_train, table.n_test, table.n_unused) == (11, 3, 1)
    assert (table.n_cold_users, table.n_cold_items, table.n_cold_ratings) == (1, 1, 2)  # u4, e
    assert table.n_test_users == 3
    assert table.train_latest == T0 + 70


def test_a_larger_test_share_moves_the_cut_earlier():
    (split,) = make_splits(toy(), "temporal", test_share=0.35)  # cut = ceil(T0 + 65) = T0 + 65
    assert rows(split.test) == [7, 8, 9, 10]
    table = split_table(toy(), [split]).iloc[0]
    assert (table.n_cold_users, table.n_cold_items, table.n_cold_ratings) == (1, 2, 3)  # d too


def test_leave_last_n_tests_each_users_latest_ratings_ties_by_item_id():
    (one,) = make_splits(toy(), "last-n", last_n=1)
    # u1 -> row 7 (row 14 has no time), u2 -> 10, u3 -> 8, u5 -> 12 (x beats f at t = 30);
    # u4 has a single rating and stays in training only.
    assert rows(one.test) == [7, 8, 10, 12]
    assert rows(one.train) == [0, 1, 2, 3, 4, 5, 6, 9, 11, 13]
    table = split_table(toy(), [one]).iloc[0]
    assert table.n_train_only_users == 1  # u4
    assert (table.n_cold_users, table.n_cold_items, table.n_cold_ratings) == (0, 3, 3)  # d e x
    (two,) = make_splits(toy(), "last-n", last_n=2)
    # u1 -> 4, 7; u2 -> 6, 10; u3 -> 5, 8 (all of u3: two ratings is not more than 2, so
    # u3 stays in training); u5 -> 12, 13
    assert rows(two.test) == [4, 6, 7, 10, 12, 13]
    assert 5 in rows(two.train) and 8 in rows(two.train)


def test_rolling_origin_expands_the_training_window():
    first, second = make_splits(toy(), "rolling", test_share=0.4, windows=2)
    # test range [T0 + 60, T0 + 100] in two windows: [60, 80) and [80, 100]
    assert (first.test_start, first.test_end) == (T0 + 60, T0 + 80)
    assert (second.test_start, second.test_end) == (T0 + 80, T0 + 100)
    assert rows(first.test) == [6, 7]
    assert rows(first.train) == [0, 1, 2, 3, 4, 5, 11, 12, 13]
    assert rows(second.test) == [8, 9, 10]
    assert rows(second.train) == [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13]
    table = split_table(toy(), [first, second])
    assert table["n_cold_ratings"].tolist() == [1, 2]  # d; u4 and e
    assert table["n_cold_items"].tolist() == [1, 1]
    assert table["n_cold_users"].tolist() == [0, 1]
    assert table["n_unused"].tolist() == [1 + 3, 1]  # no time; the later window


def test_kfold_splits_are_the_seeded_folds():
    splits = make_splits(toy(), "kfold", folds=3, seed=0)
    tested = np.sum([s.test for s in splits], axis=0)
    assert tested.tolist() == [1] * len(TIMELINE)  # every rating tested once, time ignored
    for s in splits:
        assert not (s.train & s.test).any() and (s.train | s.test).all()


def assert_no_leakage(ratings: pd.DataFrame, splits) -> None:
    times = ratings["timestamp"].to_numpy("float64", na_value=np.nan)
    for s in splits:
        assert np.nanmax(times[s.train]) < s.test_start <= np.nanmin(times[s.test])


@pytest.mark.parametrize("split", ["temporal", "rolling"])
def test_no_training_rating_is_later_than_its_cut_on_the_toy(split):
    assert_no_leakage(toy(), make_splits(toy(), split, test_share=0.4, windows=2))


def test_no_training_rating_is_later_than_its_cut_on_ml100k(ml100k):
    ratings = load_dataset(ml100k).ratings
    for split in ("temporal", "rolling"):
        splits = make_splits(ratings, split)
        assert_no_leakage(ratings, splits)
        assert sum(int(s.test.sum()) for s in splits) > 10_000


def test_time_protocols_refuse_data_without_time_in_one_sentence():
    untimed = toy().assign(timestamp=pd.array([None] * len(TIMELINE), "Int64"))
    for split in ("temporal", "last-n", "rolling"):
        with pytest.raises(ConfigError, match=r"needs a time .* --split kfold\.$"):
            make_splits(untimed, split)
    with pytest.raises(DataError, match="no user with more than 4 timed rating"):
        make_splits(toy(), "last-n", last_n=4)
    with pytest.raises(DataError, match="no rating in window"):
        make_splits(toy(), "rolling", test_share=0.04, windows=4)  # 1 s windows, empty ones


def test_protocol_settings_are_validated_and_unused_ones_reset():
    with pytest.raises(ConfigError, match="Unknown evaluation split 'random'"):
        EvaluationConfig(split="random")
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        EvaluationConfig(split="temporal", test_share=1.0)
    assert EvaluationConfig(windows=9) == EvaluationConfig()  # kfold uses no windows
    assert EvaluationConfig(split="rolling", windows=4).n_splits == 4


def test_kfold_settings_hash_as_before_the_protocols_existed():
    # A saved analysis written before the protocols has exactly these evaluation keys; the
    # same dictionary means the same digest and stage keys, so it still opens and adopts.
    assert set(AnalysisSettings().to_dict()["evaluation"]) == {
        "folds", "seed", "k", "threshold", "models"
    }  # fmt: skip
    timed = AnalysisSettings(evaluation=EvaluationConfig(split="rolling", windows=2))
    assert timed.to_dict()["evaluation"]["split"] == "rolling"
    assert AnalysisSettings.from_dict(timed.to_dict()) == timed


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    """A toy with timestamps big enough to train on: the sample's first 120 users."""
    ratings = pd.read_csv(SAMPLE_DIR / "ratings.csv", dtype={"user_id": str, "item_id": str})
    users = sorted(ratings["user_id"].unique())[:120]
    path = tmp_path_factory.mktemp("timed") / "ratings.csv"
    ratings[ratings["user_id"].isin(users)].to_csv(path, index=False)
    return path


def test_temporal_evaluation_predicts_exactly_the_test_part(toy_file):
    data = load_dataset(toy_file)
    result = evaluate(data, SMALL, EvaluationConfig(split="temporal", models=("SVD", "Popularity")))
    (split,) = make_splits(data.ratings, "temporal")
    svd = result.predictions[result.predictions["model"] == "SVD"]
    assert len(svd) == int(split.test.sum()) and set(svd["fold"]) == {0}
    row = result.splits.iloc[0].drop(["test_start", "test_end", "train_latest"]).astype(int)
    assert int(svd["was_impossible"].sum()) == row.n_cold_ratings > 0
    assert set(result.fold_metrics["fold"]) == {0}
    assert result.protocol.startswith(f"Temporal split: trained on the {row.n_train:,} ratings")
    assert f"Cold start: {row.n_cold_users:,} test users" in result.protocol
    ranked = result.user_ranking[result.user_ranking["model"] == "SVD"]["user_id"]
    cold = set(svd.loc[svd["reason"].str.startswith("user"), "user_id"])
    assert cold and not cold & set(ranked)  # cold users have no list


def test_the_audit_report_and_saved_analysis_work_on_a_temporal_split(toy_file, tmp_path):
    data = load_dataset(toy_file)
    settings = AnalysisSettings(
        model=SMALL,
        evaluation=EvaluationConfig(split="rolling", windows=2, models=("SVD", "Popularity")),
        audit=FAST_AUDIT,
    )
    analysis = Analysis(data, settings)
    assert len(analysis.audit().metrics)
    report = analysis.report()
    evaluation = report.model["evaluation"]
    assert evaluation["split"] == "rolling" and evaluation["folds"] == 2
    assert evaluation["protocol"].startswith("Rolling origin over 2 windows")
    assert evaluation["cold_start"]["ratings"] == int(
        analysis.evaluation().splits["n_cold_ratings"].sum()
    )
    html = render_html(report)
    assert "<p>Evaluation: Rolling origin over 2 windows" in html
    schema = json.loads((ROOT / "engine" / "report" / "report.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate(json.loads(render_json(report)))
    back = open_analysis(save_analysis(analysis, tmp_path / "saved"))
    assert back.settings == settings
    assert "evaluation" in back.computed()
    pd.testing.assert_frame_equal(back.evaluation().splits, analysis.evaluation().splits)


def test_cli_evaluate_temporal_prints_the_protocol_and_counts(toy_file, capsys):
    code = main(["evaluate", str(toy_file), "--split", "temporal", "--test-share", "0.3",
                 "--models", "SVD,Popularity"])  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["split"] == "temporal" and out["test_share"] == 0.3 and out["folds"] == 1
    assert out["protocol"].startswith("Temporal split: trained on the")
    (split,) = out["splits"]
    assert split["n_cold_ratings"] == split["n_cold_ratings"] >= 0
    assert "last 30% of the time span" in out["protocol"]


def test_cli_refuses_bad_protocol_combinations_with_exit_2(toy_file, tmp_path, capsys):
    untimed = tmp_path / "untimed.csv"
    pd.read_csv(toy_file).drop(columns="timestamp").to_csv(untimed, index=False)
    assert main(["evaluate", str(untimed), "--split", "temporal"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a time for each rating" in err and "kfold" in err
    assert main(["evaluate", str(toy_file), "--split", "temporal", "--windows", "3"]) == 2
    assert "--windows applies to --split rolling only" in capsys.readouterr().err
    assert main(["evaluate", str(toy_file), "--split", "last-n", "--folds", "3"]) == 2
    assert "--folds applies to --split kfold only" in capsys.readouterr().err


def test_cli_audit_writes_a_report_stating_the_protocol(toy_file, tmp_path, capsys):
    out = tmp_path / "report"
    options = ["--format", "json", "--bootstrap", "0", "--models", "SVD,Popularity"]
    code = main(["audit", str(toy_file), "--out", str(out), *options, "--split", "last-n",
                 "--last-n", "2"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    evaluation = json.loads((out / "report.json").read_text("utf-8"))["model"]["evaluation"]
    assert (evaluation["split"], evaluation["last_n"], evaluation["folds"]) == ("last-n", 2, 1)
    assert evaluation["protocol"].startswith("Leave-last-2 per user")
    untimed = tmp_path / "untimed.csv"
    pd.read_csv(toy_file).drop(columns="timestamp").to_csv(untimed, index=False)
    assert main(["audit", str(untimed), "--out", str(tmp_path / "no"), "--split", "rolling"]) == 2
    assert "needs a time for each rating" in capsys.readouterr().err
