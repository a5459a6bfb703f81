"""External systems kept in a saved analysis: round trip, re-render, refusals (#16)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from engine.analysis import Analysis, AnalysisSettings
from engine.audit import AuditConfig
from engine.cli import main
from engine.data import load_dataset
from engine.external import (
    compare_systems,
    load_lists,
    load_predictions,
    merge_systems,
    temporal_heldout,
)
from engine.model import ModelConfig
from engine.saved import SavedAnalysisError, read_saved, save_analysis
from engine.saved.systems import SavedSystems, systems_key
from engine.saved.tables import decode_table, encode_table
from engine.synth import SynthConfig, generate, write_dataset

SETTINGS = AnalysisSettings(
    model=ModelConfig(n_factors=6, n_epochs=15),
    audit=AuditConfig(bootstrap=20, permutations=50, min_group_size=20),
)
FIX = "open the original data, compute the analysis and save it again."


def _files(folder, data_ratings) -> tuple:
    """A popularity lists file (user, item, rank) and a predictions file of every rated pair."""
    popular = data_ratings["item_id"].value_counts().index[:10]
    users = sorted(data_ratings["user_id"].unique())
    lists = pd.DataFrame([(u, i, r + 1) for u in users for r, i in enumerate(popular)],
                         columns=["user", "item", "rank"])  # fmt: skip
    lists.to_csv(folder / "pop.csv", index=False)
    pairs = data_ratings[["user_id", "item_id"]]
    pairs.assign(prediction=2.5 + (np.arange(len(pairs)) % 5) * 0.5).to_csv(
        folder / "wavy.csv", index=False
    )
    return folder / "pop.csv", folder / "wavy.csv"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Small synthetic data, two loaded systems, and an analysis saved with them."""
    folder = tmp_path_factory.mktemp("external-saved")
    write_dataset(generate(SynthConfig(n_users=150, n_items=100, n_ratings=5000, seed=3)),
                  folder / "synth")  # fmt: skip
    data = load_dataset(folder / "synth")
    pop, wavy = _files(folder, data.ratings)
    systems = merge_systems(
        load_lists(pop, data, name="pop") + load_predictions(wavy, data, name="wavy")
    )
    analysis = Analysis(data, SETTINGS)
    kept = SavedSystems(tuple(systems), temporal_heldout(data))
    saved = save_analysis(analysis, folder / "saved", systems=kept)
    return data, systems, analysis, saved


def _compare(analysis: Analysis, kept: SavedSystems):
    return compare_systems(kept.heldout, list(kept.systems), model_config=SETTINGS.model,
                           config=SETTINGS.audit)  # fmt: skip


def test_round_trip_gives_the_same_systems_and_the_same_side_by_side(world):
    data, systems, analysis, saved = world
    back = read_saved(saved)
    assert back.systems is not None
    assert [s.name for s in back.systems.systems] == ["pop", "wavy"]
    for before, after in zip(systems, back.systems.systems, strict=True):
        for table in ("lists", "predictions"):
            want, have = getattr(before, table), getattr(after, table)
            if want is None:
                assert have is None
            else:
                pd.testing.assert_frame_equal(have, want, check_exact=True)
        assert after.load_reports == before.load_reports
    original = temporal_heldout(data)
    assert back.systems.heldout.describe() == original.describe()
    pd.testing.assert_frame_equal(back.systems.heldout.ratings, original.ratings)
    assert back.systems.heldout.train.fingerprint == original.train.fingerprint
    first = _compare(analysis, SavedSystems(tuple(systems), original))
    again = _compare(back.analysis, back.systems)
    pd.testing.assert_frame_equal(again.table, first.table, check_exact=True)
    assert list(again.table["system"]) == ["SVD (built-in)", "Popularity (built-in)", "pop", "wavy"]


def test_the_manifest_hashes_and_sizes_every_systems_table(world):
    *_, saved = world
    manifest = json.loads((saved / "manifest.json").read_text())
    entry = manifest["stages"]["systems"]
    assert entry["rests_on"] == {"data": manifest["stages"]["data"]["key"]}
    assert sorted(entry["files"]) == [
        "systems/heldout.parquet", "systems/lists_0.parquet", "systems/predictions_1.parquet",
        "systems/systems.json",
    ]  # fmt: skip
    for path, described in entry["files"].items():
        content = (saved / path).read_bytes()
        assert described["sha256"] == hashlib.sha256(content).hexdigest()
        assert described["bytes"] == len(content)
        assert ("table" in described) == path.endswith(".parquet")


def test_an_analysis_saved_without_systems_still_opens(world, tmp_path):
    _, _, analysis, _ = world
    plain = save_analysis(analysis, tmp_path / "plain")
    assert "systems" not in json.loads((plain / "manifest.json").read_text())["stages"]
    back = read_saved(plain)
    assert back.systems is None and back.analysis.data.fingerprint == analysis.data.fingerprint


def _copy(saved, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(saved, copy)
    return copy


def _refused(folder) -> str:
    with pytest.raises(SavedAnalysisError) as caught:
        read_saved(folder)
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".") and "Traceback" not in message
    return message


def test_a_tampered_systems_table_is_refused_with_one_sentence(world, tmp_path):
    copy = _copy(world[3], tmp_path)
    table = copy / "systems" / "lists_0.parquet"
    content = bytearray(table.read_bytes())
    content[len(content) // 2] ^= 0xFF
    table.write_bytes(bytes(content))
    assert _refused(copy) == (
        f"{copy}/systems/lists_0.parquet does not match its SHA-256 in manifest.json: it was "
        f"modified or damaged: {FIX}"
    )


def _rewrite(folder, path: str, frame: pd.DataFrame) -> None:
    """Replace a systems table and record its new hash, size, schema and the stage key."""
    content, record = encode_table(frame, path)
    (folder / path).write_bytes(content)
    manifest = json.loads((folder / "manifest.json").read_text())
    entry = manifest["stages"]["systems"]
    entry["files"][path] = {"sha256": hashlib.sha256(content).hexdigest(),
                            "bytes": len(content), "table": record}  # fmt: skip
    entry["key"] = systems_key(entry["files"])
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("path", "change", "problem"),
    [
        ("systems/lists_0.parquet",
         lambda f: f.assign(item_id=f["item_id"].where(f.index > 0, "nope")),
         "names the item id 'nope' in item_id, which is not in the data (1 such row(s))"),
        ("systems/lists_0.parquet", lambda f: f.assign(rank=f["rank"].where(f.index > 0, 7)),
         "has ranks for user_id"),
        ("systems/predictions_1.parquet",
         lambda f: f.assign(prediction=f["prediction"].where(f.index > 0, np.inf)),
         "holds 1 NaN or infinite value(s) in prediction"),
        ("systems/predictions_1.parquet", lambda f: f.drop(columns="prediction"),
         "lacks the column(s) prediction"),
        ("systems/heldout.parquet", lambda f: f.assign(rating=f["rating"].where(f.index > 0, 1.5)),
         "is not the saved data's ratings after the saved cut"),
    ],
)  # fmt: skip
def test_a_systems_table_rewritten_with_its_hashes_is_still_refused(
    world, tmp_path, path, change, problem
):
    copy = _copy(world[3], tmp_path)
    record = json.loads((copy / "manifest.json").read_text())["stages"]["systems"]["files"][path]
    frame = decode_table((copy / path).read_bytes(), record["table"], path, 1 << 30)
    _rewrite(copy, path, change(frame))
    message = _refused(copy)
    assert message.startswith(f"{copy}/{path} ") and problem in message, message
    assert message.endswith(FIX)


def test_a_systems_file_the_manifest_does_not_allow_is_refused(world, tmp_path):
    copy = _copy(world[3], tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["stages"]["systems"]["rests_on"] = {}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert "has a systems entry whose key or upstream keys (data)" in _refused(copy)


def test_run_keeps_the_systems_and_report_renders_them_again_without_the_files(tmp_path, capsys):
    folder = tmp_path / "synth"
    write_dataset(generate(SynthConfig(n_users=150, n_items=100, n_ratings=5000, seed=3)),
                  folder)  # fmt: skip
    pop, wavy = _files(tmp_path, load_dataset(folder).ratings)
    out = tmp_path / "analysis"
    code = main(["run", str(folder), "--recommendations", str(pop), "--system-name", "pop",
                 "--predictions", str(wavy), "--system-name", "wavy", "--out", str(out),
                 "--format", "json", "--bootstrap", "20", "--models", "SVD"])  # fmt: skip
    assert code == 0
    ran = json.loads(capsys.readouterr().out)["systems"]
    pop.unlink(), wavy.unlink()  # the report is made from the saved analysis alone
    again = tmp_path / "again"
    assert main(["report", str(out), "--out", str(again), "--format", "json,csv"]) == 0
    rendered = json.loads(capsys.readouterr().out)["systems"]
    assert rendered["table"] == ran["table"]
    document = json.loads((again / "report.json").read_text())
    table = {r["system"]: r for r in document["systems"]["rows"]}
    assert list(table) == ["SVD (built-in)", "Popularity (built-in)", "pop", "wavy"]
    for row in ran["table"]:
        assert table[row["system"]] == row
    assert (again / "systems.json").is_file()
    metrics = pd.read_csv(again / "metrics.csv", keep_default_na=False)
    assert set(metrics["system"]) == {"", "SVD (built-in)", "Popularity (built-in)", "pop", "wavy"}


def test_systems_without_heldout_ratings_round_trip(world, tmp_path):
    data, systems, _, _ = world
    untimed = tmp_path / "untimed"
    untimed.mkdir()
    data.ratings[["user_id", "item_id", "rating"]].to_csv(untimed / "ratings.csv", index=False)
    plain = load_dataset(untimed / "ratings.csv")
    heldout = temporal_heldout(plain)
    assert heldout.source == "none"
    folder = save_analysis(Analysis(plain, SETTINGS), tmp_path / "saved",
                           systems=SavedSystems((systems[0],), heldout))  # fmt: skip
    back = read_saved(folder).systems
    assert back.heldout.source == "none" and back.heldout.ratings.empty
    assert back.heldout.describe() == heldout.describe()
    pd.testing.assert_frame_equal(back.systems[0].lists, systems[0].lists)
