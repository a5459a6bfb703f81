"""`python -m engine` prints JSON, and unusable input gives one line on stderr and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from engine.cli import main
from tests.conftest import ROOT, SAMPLE_DIR


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_profile_of_sample_folder_prints_profile_and_report():
    done = run_cli("profile", str(SAMPLE_DIR))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    truth = json.loads((SAMPLE_DIR / "ground_truth.json").read_text())
    assert out["profile"]["synthetic"] is True
    assert out["profile"]["n_ratings"] == truth["counts"]["ratings"]
    assert out["load_report"]["rows_read"] == truth["counts"]["ratings"]
    assert out["load_report"]["attribute_coverage"]["attribute_items_without_ratings"] == (
        truth["counts"]["items"] - truth["counts"]["rated_items"]
    )
    assert len(out["fingerprint"]) == 64


def test_profile_with_explicit_files_mapping_and_scale(tmp_path, capsys):
    ratings = tmp_path / "r.csv"
    ratings.write_text("a,b,c\nu1,i1,4\nu1,i2,9\nu2,i1,2\nu2,i2,3\n")
    users = tmp_path / "u.csv"
    users.write_text("user_id,region\nu1,North\nu2,South\n")
    code = main(
        ["profile", "--ratings", str(ratings), "--users", str(users),
         "--columns", "user=a,item=b,rating=c", "--scale", "1,5"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["load_report"]["rejected"] == {"out_of_scale": 1}
    assert out["profile"]["user_attributes"] == ["region"]
    assert out["load_report"]["files"][0]["detection"]["user"] == "given"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["profile", "does-not-exist.csv"], "does not exist"),
        (["profile"], "No input given"),
        (["profile", "sample_data", "--columns", "who"], "is not FIELD=COLUMN"),
        (["profile", "sample_data", "--scale", "five"], "is not LOW,HIGH"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, fragment):
    done = run_cli(*args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1
    assert fragment in done.stderr
    assert done.stdout == ""


def test_bad_file_exits_2(tmp_path):
    bad = tmp_path / "ratings.csv"
    bad.write_bytes(b"\x00\x01binary")
    done = run_cli("profile", str(bad))
    assert done.returncode == 2
    assert (
        done.stderr == f"error: {bad.name} is binary, not a text table (it contains NUL "
        "bytes): export the ratings as CSV, TSV or Parquet.\n"
    )


def test_synth_writes_the_sample_files(tmp_path):
    assert main(["synth", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "ratings.csv").read_bytes() == (SAMPLE_DIR / "ratings.csv").read_bytes()


def small_ratings(tmp_path):
    from engine.synth import SynthConfig, generate, write_dataset

    write_dataset(generate(SynthConfig(n_users=60, n_items=80, n_ratings=1500, seed=4)), tmp_path)
    return tmp_path


def test_evaluate_prints_paired_metrics_for_every_model(tmp_path, capsys):
    folder = small_ratings(tmp_path)
    assert main(["evaluate", str(folder), "--folds", "3", "-k", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["models"]) == ["SVD", "BaselineOnly", "KNNBaseline", "Popularity"]
    assert len(out["models"]["SVD"]["rmse"]["folds"]) == 3
    assert "rmse" not in out["models"]["Popularity"]
    assert out["model_config"]["preset"] == "default"
    assert out["k"] == 5


def test_run_takes_the_number_of_folds_and_refuses_it_for_a_time_split(tmp_path, capsys):
    """``run --folds 3``: the saved analysis and its report rest on 3 folds, each rating
    held out once; ``--folds`` with ``--split temporal`` exits with code 2."""
    from engine.saved import open_analysis

    folder = small_ratings(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["run", str(folder), "--folds", "3", "--models", "SVD", "--bootstrap", "0",
                 "--out", str(out), "--format", "json"]) == 0  # fmt: skip
    capsys.readouterr()
    evaluated = json.loads((out / "report" / "report.json").read_text())["model"]["evaluation"]
    assert evaluated["folds"] == 3
    analysis = open_analysis(out)
    assert analysis.settings.evaluation.folds == 3
    held_out = analysis.evaluation().predictions
    assert sorted(held_out["fold"].unique()) == [0, 1, 2] and len(held_out) == 1500
    code = main(["run", str(folder), "--split", "temporal", "--folds", "3",
                 "--out", str(tmp_path / "no")])  # fmt: skip
    assert code == 2
    assert "--folds applies to --split kfold only, not temporal" in capsys.readouterr().err


def test_model_options_override_the_preset_and_reach_training(tmp_path, capsys):
    """``--factors/--epochs/--lr/--reg/--refit-lambda`` make a ``custom`` preset, and the
    evaluation is the one those settings give through the library."""
    from engine import load_dataset
    from engine.evaluate import EvaluationConfig, evaluate
    from engine.model import ModelConfig

    folder = small_ratings(tmp_path)
    options = ["--factors", "4", "--epochs", "3", "--lr", "0.01", "--reg", "0.05",
               "--refit-lambda", "0.3"]  # fmt: skip
    assert main(["evaluate", str(folder), "--folds", "2", "--models", "SVD", *options]) == 0
    out = json.loads(capsys.readouterr().out)
    settings = {"n_factors": 4, "n_epochs": 3, "lr_all": 0.01, "reg_all": 0.05,
                "refit_lambda": 0.3}  # fmt: skip
    assert {k: out["model_config"][k] for k in settings} == settings
    assert out["model_config"]["preset"] == "custom"
    config = ModelConfig.from_preset("default", **settings)
    expected = evaluate(load_dataset(folder), config, EvaluationConfig(folds=2, models=("SVD",)))
    folds = expected.fold_metrics.query("metric == 'rmse'")["value"].tolist()
    assert out["models"]["SVD"]["rmse"]["folds"] == pytest.approx(folds, abs=1e-12)
    assert folds != pytest.approx(
        evaluate(load_dataset(folder), ModelConfig(), EvaluationConfig(folds=2, models=("SVD",)))
        .fold_metrics.query("metric == 'rmse'")["value"]
        .tolist(),
        abs=1e-6,
    )  # the settings change the model


def test_recommend_lists_titles_and_excludes_rated_items(tmp_path, capsys):
    folder = small_ratings(tmp_path)
    assert main(["recommend", str(folder), "--user", "u0003", "-n", "4", "--preset", "tuned"]) == 0
    out = json.loads(capsys.readouterr().out)
    recs = out["recommendations"]
    assert [r["rank"] for r in recs] == [1, 2, 3, 4]
    assert all(r["title"].endswith(")") for r in recs)
    ratings = (folder / "ratings.csv").read_text().splitlines()
    rated = {line.split(",")[1] for line in ratings if line.startswith("u0003,")}
    assert not rated & {r["item_id"] for r in recs}
    assert out["model"]["preset"] == "tuned"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (
            ["recommend", "sample_data", "--user", "nobody"],
            "User 'nobody' has no rating in sample_data",
        ),
        (["evaluate", "sample_data", "--models", "SVD,ALS"], "Unknown model(s) ALS"),
        (["evaluate", "sample_data", "--factors", "0"],
         "--factors: 0 is not allowed: use a number >= 1"),
        (["evaluate", "sample_data", "--lr", "1.5"],
         "--lr: 1.5 is not allowed: use a number > 0 and <= 1"),
        (["evaluate", "sample_data", "--refit-lambda", "0"], "use a number > 0 (see"),
        (["evaluate", "sample_data", "--reg", "nan"], "--reg: 'nan' is not a finite number"),
        (["evaluate", "sample_data", "--engine", "spark", "--reg", "0.1"],
         "--reg is a setting of Surprise's SGD, which the Spark engine does not use"),
    ],
)  # fmt: skip
def test_model_commands_bad_input_exit_2(args, fragment):
    done = run_cli(*args)
    assert done.returncode == 2
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr


def test_explain_prints_additive_views(tmp_path, capsys):
    folder = small_ratings(tmp_path)
    args = ["explain", str(folder), "--user", "u0003", "--item", "i0010", "--shapley", "--knn"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    for view in ("factors", "history", "shapley", "knn"):
        block = out[view]
        assert {"base_value", "values", "prediction"} <= set(block) <= {
            "base_value", "values", "prediction", "reason",
        }  # fmt: skip
        assert {"feature", "value"} <= set(block["values"][0])
        total = block["base_value"] + sum(v["value"] for v in block["values"])
        assert total == pytest.approx(block["prediction"], abs=1e-9)
    assert out["factors"]["prediction"] == pytest.approx(out["prediction"])
    assert "counterfactual" in out


def test_explain_unknown_item_exits_2():
    done = run_cli("explain", "sample_data", "--user", "u0001", "--item", "zzz")
    assert done.returncode == 2
    assert "Item 'zzz' is not in the training data" in done.stderr


EUROPEAN = ROOT / "tests" / "data" / "bad" / "european_mixed_decimals.csv"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["recommend", str(EUROPEAN), "--user", "u1", "-n", "0"], "-n: 0 is not allowed"),
        (["recommend", str(EUROPEAN), "--user", "u1", "-n", "-5"], "-n: -5 is not allowed"),
        (["explain", str(EUROPEAN), "--user", "u1", "--item", "i1", "-n", "-5"], "-n: -5"),
        (["recommend", str(EUROPEAN), "--user", "u1", "--seed", "-1"], "--seed: -1 is not"),
        (["recommend", str(EUROPEAN), "--user", "u1", "--seed", str(2**32)], "between 0 and"),
        (
            [
                "explain",
                str(EUROPEAN),
                "--user",
                "u1",
                "--item",
                "i1",
                "--shapley",
                "--permutations",
                "0",
            ],
            "--permutations: 0 is not allowed: use a number >= 1",
        ),
        (["evaluate", str(EUROPEAN), "--folds", "1"], "--folds: 1 is not allowed"),
        (["evaluate", str(EUROPEAN), "--threshold", "inf"], "not a finite number"),
        (["audit", str(EUROPEAN), "--out", "x", "--bootstrap", "-1"], "--bootstrap: -1"),
        (["profile", str(EUROPEAN), "--scale=-inf,inf"], "both finite"),
        (["profile", str(EUROPEAN), "--columns", "user=user,item=user"], "to both user and"),
        (["profile", str(EUROPEAN), "--delimiter", "#"], "--delimiter '#' is not supported"),
        (["profile", str(EUROPEAN), "--decimal", ";"], "--decimal: invalid choice"),
        (["profile", str(EUROPEAN), "--max-rows", "0"], "--max-rows: 0 is not allowed"),
    ],
)
def test_out_of_range_options_are_one_line_and_exit_2(args, fragment, capsys):
    with pytest.raises(SystemExit) as exited:
        code = main(args)
        raise SystemExit(code)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("file", "is an existing file, not a folder"), ("under_a_file", "cannot be written to")],
)
def test_audit_checks_out_before_any_work(tmp_path, kind, fragment, capsys, monkeypatch):
    def no_work(*_args, **_kwargs):
        raise AssertionError("the data was loaded before --out was checked")

    monkeypatch.setattr("engine.cli.load_inputs", no_work)
    blocker = tmp_path / "report"
    blocker.write_text("I am a file")
    out = blocker if kind == "file" else blocker / "sub"  # cannot be created, even as root
    assert main(["audit", str(EUROPEAN), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1, err


def test_decimal_option_reads_comma_halves_and_profile_json_is_strict(capsys):
    assert main(["profile", str(EUROPEAN), "--decimal", ".", "--delimiter", ";"]) == 0
    strict = json.loads(capsys.readouterr().out, parse_constant=_no_constant)
    assert strict["load_report"]["rejected"]["non_numeric_rating"] > 30
    assert main(["profile", str(EUROPEAN), "--decimal", ","]) == 0
    out = json.loads(capsys.readouterr().out, parse_constant=_no_constant)
    assert out["load_report"]["rejected"] == {}
    assert out["load_report"]["relevance_threshold"] == 4.0


def _no_constant(name: str) -> None:
    raise AssertionError(f"invalid JSON constant {name} in the CLI output")


def test_json_safe_turns_non_finite_numbers_into_null():
    from engine.cli import json_safe

    safe = json_safe({"a": float("nan"), "b": [float("-inf"), 1.5], "c": (2, "x")})
    assert json.dumps(safe, allow_nan=False) == '{"a": null, "b": [null, 1.5], "c": [2, "x"]}'


def test_pdf_alone_without_chromium_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REPORT_CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("PATH", str(tmp_path))
    args = ["audit", str(EUROPEAN), "--out", str(tmp_path / "out"), "--format", "pdf",
            "--bootstrap", "0"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Chromium" in err and "Unknown report format" not in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--user-attrs", "shoe_size"], "--user-attrs names 'shoe_size', which the user"),
        (["--item-attrs", "genres"], "none; load item attributes with --items"),
    ],
)
def test_audit_refuses_unknown_attributes_before_training(extra, fragment, tmp_path, capsys,
                                                          monkeypatch):  # fmt: skip
    def no_training(*_args, **_kwargs):
        raise AssertionError("trained before the attributes were checked")

    monkeypatch.setattr("engine.analysis.train", no_training)
    assert main(["audit", str(EUROPEAN), "--out", str(tmp_path), *extra]) == 2
    assert fragment in capsys.readouterr().err


def test_two_rating_files_and_a_field_given_twice_are_refused(capsys):
    assert main(["profile", str(EUROPEAN), "--ratings", str(EUROPEAN)]) == 2
    assert "were given as the rating file" in capsys.readouterr().err
    assert main(["profile", str(EUROPEAN), "--columns", "user=user,user=item"]) == 2
    assert "gives the user field twice" in capsys.readouterr().err
