"""Runs kept in Spark compared on a window: equal to the comparison of the whole models.

A is a kept run of the hostile sample and B the same model updated with a batch of later
ratings (``engine.update.update_model``), kept too; each is written without Spark, by the
writer ``engine.spark.user_side`` feeds (as in ``tests/test_user_side.py``). A kept version's
model holds the window's users' ratings only, read from its parts, so every row, count and
sentence must equal ``compare_models`` of the two in-memory models.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from engine import AuditConfig, DataFile, load_dataset
from engine.cli import main
from engine.compare import compare_models, compare_versions
from engine.compare.versions import kept_version, open_version_source, version_of
from engine.report.build import report_parts
from engine.saved.errors import SavedAnalysisError
from engine.saved.kept import open_kept, save_kept
from engine.update import update_model
from tests.conftest import REPORT_CREATED, write_side

#: Ratings per part: the hostile sample's 98,533 ratings fall into 5 parts.
PER_PART = 20_000
CONFIG = AuditConfig(bootstrap=50, permutations=200, min_group_size=10)


def _csv(rows: list[tuple], name: str) -> DataFile:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return DataFile(name, frame.to_csv(index=False).encode())


def _kept(folder, data, model, evaluation, result):
    parts = report_parts(data, model, evaluation, result, datetime.fromisoformat(REPORT_CREATED))
    save_kept(folder, parts, result, "elsewhere", write_side(folder, data, model, PER_PART))
    return folder


@pytest.fixture(scope="module")
def versions(hostile_report, tmp_path_factory):
    """``(folder A, folder B, window file, expected Comparison, B's merged data)``.

    The batch and the window: 300 users' unrated items after the data's last rating (half
    each), and in the window a user and an item neither version knows (their fallbacks).
    """
    data, model, evaluation, result, _ = hostile_report
    rng = np.random.default_rng(5)
    rated = set(zip(data.ratings["user_id"], data.ratings["item_id"], strict=True))
    users = rng.choice(data.ratings["user_id"].unique(), 300, replace=False)
    items = data.ratings["item_id"].unique()
    fresh = [(u, i) for u in users for i in rng.choice(items, 10, replace=False)
             if (u, i) not in rated]  # fmt: skip
    start = int(data.ratings["timestamp"].max()) + 1
    rows = [(u, i, int(rng.integers(1, 6)), start + t) for t, (u, i) in enumerate(fresh)]
    half = len(rows) // 2
    later = start + len(rows)
    strangers = [("zz-new-user", items[0], 4, later), (users[0], "zz-new-item", 2, later + 1)]
    folder = tmp_path_factory.mktemp("kept-compare")
    (folder / "window.csv").write_bytes(_csv(rows[half:] + strangers, "window.csv").content)
    batch = load_dataset(_csv(rows[:half], "batch.csv"), batch=True)
    updated = update_model(model, data, batch)
    window = load_dataset(folder / "window.csv", batch=True)
    expected = compare_models(model, updated.model, window, CONFIG, users=data.users,
                              items=data.items, trained_until=start + half - 1)  # fmt: skip
    a = _kept(folder / "A", data, model, evaluation, result)
    b = _kept(folder / "B", updated.data, updated.model, evaluation, result)
    return a, b, folder / "window.csv", expected, updated.data


def _zip(folder) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"run/{path.relative_to(folder)}")
    return buffer.getvalue()


def test_kept_versions_compare_as_the_whole_models(versions):
    """Every row, count, note and sentence equals the in-memory comparison (exactly), and
    each kept model holds its window users' ratings only, as the whole model has them."""
    a, b, window_file, expected, merged = versions
    window = load_dataset(window_file, batch=True)
    found = [version_of(open_version_source(path), name, window.ratings["user_id"])
             for path, name in ((a, "A"), (b, "B"))]  # fmt: skip
    got = compare_versions(*found, window, CONFIG)
    pd.testing.assert_frame_equal(got.rows, expected.rows)
    pd.testing.assert_frame_equal(got.users, expected.users)
    assert got.counts == expected.counts and got.counts["users_new_to_a"] == 1
    assert sum(got.counts["fallback_a"].values()) == 2  # the new user's and the new item's
    assert got.sentences == expected.sentences and got.notes == expected.notes
    b_version = found[1]
    inter = b_version.model.interactions
    listed = inter.user_index(window.ratings["user_id"].unique())
    assert set(np.flatnonzero(np.diff(inter.indptr))) == set(listed[listed >= 0])
    whole = merged.ratings.groupby("user_id").size()
    np.testing.assert_array_equal(inter.counts_per_user(), whole.reindex(inter.user_ids))
    assert b_version.n_ratings == merged.n_ratings
    assert b_version.last_timestamp == merged.time_span()[1]


def test_cli_compares_two_kept_runs_and_refuses_one_without_user_side(
    versions, hostile_report, tmp_path, capsys
):
    a, b, window, expected, _ = versions
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["compare", str(a), str(b), "--window", str(window), "--out", str(out),
                 "--bootstrap", "50", "--permutations", "200", "--min-group-size", "10",
                 "--format", "json,csv"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["sentences"] == expected.sentences
    assert printed["counts"]["pairs_used"] == expected.counts["pairs_used"]
    written = json.loads((out / "comparison.json").read_text("utf-8"))
    assert [written["compared"][v]["name"] for v in "ab"] == [str(a), str(b)]
    assert written["compared"]["b"]["ratings"] > written["compared"]["a"]["ratings"]
    csv = pd.read_csv(out / "comparison.csv")
    assert len(csv) == len(expected.rows)

    data, model, evaluation, result, _ = hostile_report
    bare = tmp_path / "bare"
    parts = report_parts(data, model, evaluation, result, datetime.fromisoformat(REPORT_CREATED))
    save_kept(bare, parts, result, "elsewhere")  # --no-user-side: no user vectors
    assert main(["compare", str(bare), str(b), "--window", str(window)]) == 2
    err = capsys.readouterr().err
    assert "saved without its user side" in err and err.count("\n") == 1
    with pytest.raises(SavedAnalysisError, match="without --no-user-side"):
        kept_version(open_kept(bare), "A", pd.Series(["u1"]))


def test_the_compare_page_of_a_kept_run_compares_it_with_an_uploaded_kept_run(
    versions, started_on, sessions_dir
):
    a, b, window, expected, _ = versions
    at = started_on(a)
    at.switch_page("views/compare.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Compare versions"
    places = at.radio(key="compare_this")
    assert places.options == ["This kept run is A", "This kept run is B", "Upload both"]
    assert places.value == "This kept run is A"  # not an updated run: the usual A
    assert not at.get("file_uploader") or all(
        u.proto.label != "Version A (.zip)" for u in at.get("file_uploader"))  # fmt: skip
    at.file_uploader(key="compare_b").set_value(("B.zip", _zip(b), "application/zip"))
    at.file_uploader(key="compare_window").set_value(("window.csv", window.read_bytes(),
                                                      "text/csv"))  # fmt: skip
    at.number_input(key="compare_boot").set_value(50)
    at.number_input(key="compare_perm").set_value(200)
    at.number_input(key="compare_min").set_value(10)
    at.run()
    at.button(key="run_compare").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    result = at.session_state["compare_result"]
    pd.testing.assert_frame_equal(result.rows, expected.rows)
    compared = next(f.value for f in at.dataframe if "dates" in getattr(f.value, "columns", ()))
    assert list(compared["name"]) == ["This kept run", "B.zip", "window.csv"]
    summary = [m.value for m in at.markdown if m.value.startswith("- ")]
    assert len(summary) == len(expected.sentences)
