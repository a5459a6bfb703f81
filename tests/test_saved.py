"""Saved analyses: an exact round trip, and one sentence for each way a saved one is refused.

Most refusals below are planted with the SHA-256 and size in ``manifest.json`` recomputed,
so only the validation behind the checksums can catch them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import shutil
import tracemalloc
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import engine
from engine.analysis import Analysis, AnalysisSettings
from engine.audit import AuditConfig
from engine.report import render
from engine.saved import (
    SCHEMA_VERSION,
    SavedAnalysisError,
    open_analysis,
    read_saved,
    save_analysis,
    zip_analysis,
)
from engine.saved.tables import decode_table, encode_table
from tests.conftest import SAMPLE_DIR, zip_bytes

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TRIPPED: list[bool] = []


def _trip() -> str:
    TRIPPED.append(True)
    return "unpickled"


class Tripwire:
    """Records in ``TRIPPED`` if it is ever unpickled."""

    def __reduce__(self):
        return (_trip, ())


@pytest.fixture(scope="module")
def analysis() -> Analysis:
    data = engine.load_dataset(SAMPLE_DIR)
    done = Analysis(data, AnalysisSettings(audit=AuditConfig(bootstrap=20, permutations=50)))
    assert len(done.lists)  # the model, then the lists
    done.audit()  # the evaluation, then the audit
    return done


@pytest.fixture(scope="module")
def report_files(analysis) -> dict[str, bytes]:
    return render(analysis.report(created=CREATED), ("json", "csv"))


@pytest.fixture(scope="module")
def saved(analysis, report_files, tmp_path_factory) -> Path:
    return save_analysis(
        analysis, tmp_path_factory.mktemp("saved") / "sample", report_files=report_files
    )


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "sample"))


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text("utf-8"))


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2), "utf-8")


def entry(manifest: dict, path: str) -> dict:
    return manifest["stages"][path.split("/")[0]]["files"][path]


def plant(folder: Path, path: str, content: bytes, record: dict | None = None) -> None:
    """Write ``content`` to ``path`` and recompute its SHA-256 and size in the manifest."""
    (folder / path).write_bytes(content)
    manifest = read_manifest(folder)
    described = entry(manifest, path)
    described.update(sha256=hashlib.sha256(content).hexdigest(), bytes=len(content))
    if record is not None:
        described["table"] = record
    write_manifest(folder, manifest)


def edit_table(folder: Path, path: str, change: Callable[[pd.DataFrame], None]) -> None:
    """Apply ``change`` to a saved table and plant it back with recomputed checksums."""
    record = entry(read_manifest(folder), path)["table"]
    frame = decode_table((folder / path).read_bytes(), record, path, 1 << 30)
    change(frame)
    plant(folder, path, *encode_table(frame, path))


def refused(path: Path) -> str:
    with pytest.raises(SavedAnalysisError) as caught:
        open_analysis(path)
    message = str(caught.value)
    assert "\n" not in message and message.endswith(".")
    return message


# -- round trip ------------------------------------------------------------------------
def test_round_trip_gives_every_stage_back_exactly(analysis, saved, report_files):
    opened = read_saved(saved)
    back = opened.analysis
    assert back.computed() == ["model", "evaluation", "lists", "audit"]
    assert opened.notes == [] and opened.report_files == report_files
    assert back.settings == analysis.settings
    for stage in ("data", "model", "evaluation", "lists", "audit"):
        assert back.key(stage) == analysis.key(stage)

    data, got = analysis.data, back.data
    for name in ("ratings", "users", "items"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(data, name), check_exact=True)
    assert isinstance(got.items["genres"].iloc[0], tuple)
    assert (got.scale, got.fingerprint, got.report, got.name, got.synthetic) == (
        data.scale, data.fingerprint, data.report, data.name, data.synthetic
    )  # fmt: skip

    model, got_model = analysis.model, back.model
    for name in ("bu", "bi", "P", "Q"):
        np.testing.assert_array_equal(getattr(got_model, name), getattr(model, name))
    for name in ("user_ids", "item_ids", "indptr", "items", "ratings"):
        np.testing.assert_array_equal(
            getattr(got_model.interactions, name), getattr(model.interactions, name)
        )
    assert (got_model.mu, got_model.scale, got_model.config, got_model.fingerprint) == (
        model.mu, model.scale, model.config, model.fingerprint
    )  # fmt: skip

    pd.testing.assert_frame_equal(back.lists, analysis.lists, check_exact=True)
    for stage in ("evaluation", "audit"):
        original, restored = getattr(analysis, stage)(), getattr(back, stage)()
        for field in dataclasses.fields(original):
            want, have = getattr(original, field.name), getattr(restored, field.name)
            if isinstance(want, pd.DataFrame):
                pd.testing.assert_frame_equal(have, want, check_exact=True)
            else:
                assert have == want, f"{stage}.{field.name}"
    assert back.audit().lists is back.lists  # equal to the lists stage: stored once

    assert render(back.report(created=CREATED), ("json",)) == render(
        analysis.report(created=CREATED), ("json",)
    )


def test_manifest_records_versions_settings_and_every_file(analysis, saved):
    manifest = read_manifest(saved)
    assert manifest["schema_version"] == SCHEMA_VERSION == "2"
    assert manifest["derived_from"] is None
    assert set(manifest["versions"]) == {"python", "numpy", "pandas", "pyarrow", "scikit-surprise"}
    assert manifest["tool"]["name"] and manifest["tool"]["version"]
    assert manifest["settings"] == analysis.settings.to_dict()
    assert manifest["settings_digest"] == analysis.settings.digest()
    assert datetime.fromisoformat(manifest["created"]).tzinfo is not None
    stages = manifest["stages"]
    assert list(stages) == ["data", "model", "evaluation", "lists", "audit", "report"]
    assert stages["audit"]["rests_on"] == {
        up: analysis.key(up) for up in ("data", "model", "evaluation", "lists")
    }
    on_disk = {p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file()}
    listed = {path for stage in stages.values() for path in stage["files"]}
    assert on_disk == listed | {"manifest.json"}
    for path in listed:
        content = (saved / path).read_bytes()
        assert entry(manifest, path)["sha256"] == hashlib.sha256(content).hexdigest()


def test_zip_of_a_saved_analysis_opens_the_same(analysis, saved, tmp_path):
    archive = tmp_path / "sample.zip"
    archive.write_bytes(zip_analysis(saved))
    back = open_analysis(archive)
    assert back.computed() == ["model", "evaluation", "lists", "audit"]
    pd.testing.assert_frame_equal(back.lists, analysis.lists)


def test_only_computed_stages_are_saved(analysis, tmp_path):
    partial = Analysis(analysis.data, analysis.settings)
    partial.adopt("model", analysis.model, analysis.key("model"))
    folder = save_analysis(partial, tmp_path / "partial")
    back = open_analysis(folder)
    assert back.computed() == ["model"]
    assert back.result("evaluation") is None and back.result("lists") is None
    assert sorted(p.name for p in folder.iterdir()) == ["data", "manifest.json", "model"]


def test_saving_again_replaces_the_old_save_completely(analysis, copy):
    partial = Analysis(analysis.data, analysis.settings)
    save_analysis(partial, copy)
    assert sorted(p.name for p in copy.iterdir()) == ["data", "manifest.json"]
    assert [p.name for p in copy.parent.iterdir()] == ["sample"]  # no temporary folder left
    assert open_analysis(copy).computed() == []


def test_saving_into_a_folder_that_is_not_a_saved_analysis_is_refused(analysis, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(SavedAnalysisError, match="exists and is not a saved analysis"):
        save_analysis(analysis, folder)
    assert [p.name for p in folder.iterdir()] == ["holiday.jpg"]


# -- schema versions and code versions ---------------------------------------------------
def test_an_older_schema_is_migrated(copy):
    manifest = read_manifest(copy)
    del manifest["settings_digest"]
    write_manifest(copy, {**manifest, "schema_version": "0"})
    opened = read_saved(copy)
    assert opened.analysis.computed() == ["model", "evaluation", "lists", "audit"]
    assert opened.notes == [
        "The analysis was saved with schema version 0; it was migrated to version 2 on opening."
    ]


def test_a_newer_schema_is_refused(copy):
    write_manifest(copy, {**read_manifest(copy), "schema_version": "3"})
    message = refused(copy)
    assert (
        "manifest.json was written with schema version 3, newer than this tool reads (2)" in message
    )
    assert message.endswith("update the tool to open it.")


def test_stages_of_another_code_version_are_computed_again_not_refused(copy):
    manifest = read_manifest(copy)
    manifest["tool"]["code_version"] = "0"
    write_manifest(copy, manifest)
    opened = read_saved(copy)
    assert opened.analysis.computed() == [] and opened.report_files == {}
    assert "saved by engine code version 0" in opened.notes[0]
    assert "model, evaluation, lists, audit, report will be computed again" in opened.notes[0]


# -- refusals ---------------------------------------------------------------------------
def test_a_missing_manifest_is_refused(copy):
    (copy / "manifest.json").unlink()
    assert refused(copy) == (
        f"{copy} is not a saved analysis: it has no manifest.json: choose a folder that "
        "python -m engine run or update wrote, or a .zip of it."
    )


def test_a_tampered_byte_fails_the_checksum(copy):
    path = copy / "evaluation" / "predictions.parquet"
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    path.write_bytes(bytes(content))
    assert "predictions.parquet does not match its SHA-256 in manifest.json" in refused(copy)


def test_a_nan_prediction_is_refused(copy):
    def nan(frame):
        frame.loc[3, "prediction"] = np.nan

    edit_table(copy, "lists/lists.parquet", nan)
    assert "lists.parquet holds 1 NaN or infinite value(s) in prediction" in refused(copy)


def test_an_unknown_user_id_is_refused(copy):
    def stranger(frame):
        frame.loc[0, "user_id"] = "nobody"

    edit_table(copy, "evaluation/predictions.parquet", stranger)
    message = refused(copy)
    assert "predictions.parquet names the user id 'nobody' in user_id" in message
    assert "not in the dataset (1 such row(s))" in message


def test_a_rank_of_zero_is_refused(copy):
    def zero(frame):
        frame.loc[0, "rank"] = 0

    edit_table(copy, "lists/lists.parquet", zero)
    assert "lists.parquet holds rank = 0 outside 1..10" in refused(copy)


def test_folds_and_ranks_saved_as_int64_read_back_narrowed(analysis, copy):
    # analyses saved before folds and ranks were kept small hold them as int64
    def widen(frame):
        for column in ("fold", "rank"):
            if column in frame:
                frame[column] = frame[column].astype("int64")

    for name in ("predictions", "user_ranking", "top_lists"):
        edit_table(copy, f"evaluation/{name}.parquet", widen)
    opened = open_analysis(copy).evaluation()
    for name in ("predictions", "user_ranking", "top_lists"):
        read, kept = getattr(opened, name), getattr(analysis.evaluation(), name)
        assert read["fold"].dtype == np.int8, name
        pd.testing.assert_frame_equal(read, kept)


def test_a_fold_beyond_a_small_type_is_refused_not_wrapped(copy):
    def far(frame):
        frame["fold"] = frame["fold"].astype("int64")
        frame.loc[0, "fold"] = 300  # as int8 it would wrap to 44

    edit_table(copy, "evaluation/predictions.parquet", far)
    assert "predictions.parquet holds fold = 300 outside 0..4" in refused(copy)


def test_a_fold_that_is_not_an_integer_is_refused(copy):
    def floating(frame):
        frame["fold"] = frame["fold"].astype("float64")

    edit_table(copy, "evaluation/top_lists.parquet", floating)
    message = refused(copy)
    expected = "where one of int8, int16, int32, int64 is expected"
    assert f"top_lists.parquet holds fold as float64, {expected}" in message


def test_an_edited_rating_fails_the_fingerprint(copy):
    def edit(frame):
        frame.loc[0, "rating"] = 5.0 if frame.loc[0, "rating"] != 5.0 else 1.0

    edit_table(copy, "data/ratings.parquet", edit)
    assert "the saved tables give" in refused(copy)


def test_an_audit_resting_on_another_model_is_refused(copy):
    manifest = read_manifest(copy)
    other = "0" * 64
    manifest["stages"]["audit"]["rests_on"]["model"] = other
    write_manifest(copy, manifest)
    saved_model = manifest["stages"]["model"]["key"][:12]
    assert (
        f"says the audit rests on the model {other[:12]}, but the saved model is {saved_model}: "
        "the stages do not belong together"
    ) in refused(copy)


def test_an_edited_stage_key_is_refused(copy):
    manifest = read_manifest(copy)
    manifest["stages"]["lists"]["key"] = "f" * 64
    manifest["stages"]["audit"]["rests_on"]["lists"] = "f" * 64
    write_manifest(copy, manifest)
    assert "gives the lists the key ffffffffffff" in refused(copy)


def test_a_pickle_planted_in_the_model_is_refused_unopened(copy):
    npz = copy / "model" / "model.npz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(npz) as old, zipfile.ZipFile(buffer, "w") as new:
        for info in old.infolist():
            content = old.read(info)
            if info.filename == "user_ids.npy":
                planted = io.BytesIO()
                np.save(planted, np.array([Tripwire()], dtype=object), allow_pickle=True)
                content = planted.getvalue()
            new.writestr(info.filename, content)
    meta = json.loads((copy / "model" / "model.json").read_text("utf-8"))
    meta["npz_sha256"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    plant(copy, "model/model.npz", buffer.getvalue())
    plant(copy, "model/model.json", json.dumps(meta).encode())
    message = refused(copy)
    assert f"{copy}/model/model.npz holds user_ids as an object array" in message
    assert "never unpickles" in message and not TRIPPED


def test_a_truncated_zip_is_refused(saved, tmp_path):
    content = zip_analysis(saved)
    archive = tmp_path / "cut.zip"
    archive.write_bytes(content[: len(content) // 2])
    assert "is not a readable zip archive" in refused(archive)


def test_a_zip_reaching_outside_its_root_is_refused(saved, tmp_path):
    archive = tmp_path / "evil.zip"
    manifest = (saved / "manifest.json").read_bytes()
    archive.write_bytes(zip_bytes({"manifest.json": manifest, "../escape.txt": "x"}))
    assert "'../escape.txt', whose path points outside the archive" in refused(archive)


def test_a_file_no_stage_holds_is_refused(copy):
    plant_listed = read_manifest(copy)
    plant_listed["stages"]["model"]["files"]["model/extra.bin"] = {"sha256": "0" * 64, "bytes": 1}
    write_manifest(copy, plant_listed)
    assert "lists the file model/extra.bin, which a saved model never holds" in refused(copy)


def test_an_analysis_over_the_size_limit_is_refused(saved):
    with pytest.raises(SavedAnalysisError, match=r"over the limit of 1,000,000 \(open_analysis"):
        open_analysis(saved, max_bytes=1_000_000)


def test_movielens_data_round_trip_is_exact(ml100k, tmp_path):
    data = engine.load_dataset(ml100k)
    back = open_analysis(save_analysis(Analysis(data), tmp_path / "ml100k")).data
    for name in ("ratings", "users", "items"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(data, name), check_exact=True)
    assert (back.fingerprint, back.report, back.scale, back.name) == (
        data.fingerprint, data.report, data.scale, data.name
    )  # fmt: skip


def test_a_model_trained_with_other_settings_is_refused(copy):
    meta = json.loads((copy / "model" / "model.json").read_text("utf-8"))
    meta["config"]["n_epochs"] += 1
    plant(copy, "model/model.json", json.dumps(meta).encode())
    assert refused(copy).startswith(
        f"{copy}/model/model.json does not belong with the saved data and settings: the "
        "model's settings differ: open the original data"
    )


def _every_kind() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Int64": pd.array([1, None], dtype="Int64"),
            "float": [np.nan, -np.inf],
            "str": pd.array(["x", None], dtype="str"),
            "tuples": pd.Series([("a", "b"), ()], dtype=object).to_numpy(),
            "boolean": pd.array([True, None], dtype="boolean"),
            "string": pd.array(["s", None], dtype="string"),
            "lists": pd.Series([["a"], []], dtype=object).to_numpy(),
            "uint8": np.array([1, 2], dtype=np.uint8),
            "Float64": pd.array([1.5, None], dtype="Float64"),
        },
        index=pd.Index([5, 7], name="key"),
    )


def test_tables_keep_every_supported_dtype_exactly():
    frame = _every_kind()
    content, record = encode_table(frame, "odd")
    back = decode_table(content, record, "odd", 1 << 20)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    assert back.loc[5, "tuples"] == ("a", "b") and back.loc[5, "lists"] == ["a"]
    back.loc[5, "float"] = 1.0  # an opened table is writable like any other


@pytest.mark.parametrize("rows", [0, 5])
def test_tables_written_in_row_groups_read_back_whole(monkeypatch, rows):
    # a large table is converted and written ROWS_PER_GROUP rows at a time: here 2, so five
    # rows make three row groups (the last one short), and the table comes back whole
    monkeypatch.setattr("engine.saved.tables.ROWS_PER_GROUP", 2)
    frame = pd.concat([_every_kind()] * 3).iloc[:rows]
    frame.index = pd.Index(range(10, 10 + rows), name="key")
    content, record = encode_table(frame, "grouped")
    parquet = pq.ParquetFile(io.BytesIO(content))
    assert [parquet.metadata.row_group(g).num_rows for g in range(parquet.num_row_groups)] == (
        [2, 2, 1] if rows else [0]
    )
    back = decode_table(content, record, "grouped", 1 << 20)
    pd.testing.assert_frame_equal(back, frame, check_exact=True)


def test_saving_writes_tables_to_their_files_not_through_memory(analysis, tmp_path):
    # each table goes to its file a row group at a time and is hashed from the file: the
    # Python heap never holds a table's file (it held it twice: the buffer and its copy)
    evaluated = Analysis(analysis.data, analysis.settings)
    evaluated.adopt("evaluation", analysis.evaluation(), analysis.key("evaluation"))
    tracemalloc.start()
    try:
        folder = save_analysis(evaluated, tmp_path / "traced")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    largest = (folder / "evaluation" / "predictions.parquet").stat().st_size
    assert largest == max(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert peak < largest
    content, record = encode_table(analysis.evaluation().predictions, "the same table")
    assert entry(read_manifest(folder), "evaluation/predictions.parquet")["table"] == record
    assert content == (folder / "evaluation" / "predictions.parquet").read_bytes()


def test_a_column_that_cannot_be_stored_exactly_is_refused_on_save():
    frame = pd.DataFrame({"when": pd.to_datetime(["2024-01-01"])})
    with pytest.raises(SavedAnalysisError, match="column 'when' has dtype datetime64"):
        encode_table(frame, "The audit table audit/x.parquet")
