"""A run kept in Spark updated with a batch: the same model as ``update_model`` in memory.

The source is the hostile sample's model written as a kept run without Spark, by the writer
``engine.spark.user_side`` feeds (as in ``tests/test_kept_compare.py``), in 5 ratings parts.
The batch holds new pairs of known users, pairs already rated (some with the same rating,
some changed), new users whose ids fall before, between and after the run's, and new items.
``update_kept`` reads and writes one part at a time; its arrays, ratings, counts and record
must equal ``engine.update.update_model``'s on the whole data, with and without the item
refresh.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from engine import DataFile, load_dataset
from engine.cli import main
from engine.errors import DataError
from engine.report import render
from engine.report.build import report_parts
from engine.report.formats import render_json
from engine.report.update_section import KEPT_SUMMARY_LEAD
from engine.saved.errors import SavedAnalysisError
from engine.saved.kept import open_kept, save_kept
from engine.saved.kept_update import merged_fingerprint, update_kept
from engine.text import literal_markdown
from engine.update import update_model
from tests.conftest import REPORT_CREATED, write_side
from tests.test_kept_compare import _zip

#: Ratings per part: the hostile sample's 98,533 ratings fall into 5 parts.
PER_PART = 20_000
SCHEMA = json.loads(Path("engine/report/report.schema.json").read_text(encoding="utf-8"))


def _batch_rows(data) -> list[tuple]:
    """200 new pairs of known users, 40 replaced pairs (20 changed), 3 new users, 2 new items."""
    rng = np.random.default_rng(11)
    ratings = data.ratings
    rated = set(zip(ratings["user_id"], ratings["item_id"], strict=True))
    users, items = ratings["user_id"].unique(), ratings["item_id"].unique()
    start = int(ratings["timestamp"].max()) + 1
    rows = []
    while len(rows) < 200:
        pair = (rng.choice(users), rng.choice(items))
        if pair not in rated and pair not in {r[:2] for r in rows}:
            rows.append((*pair, int(rng.integers(1, 6)), start + len(rows)))
    again = ratings.sample(40, random_state=3)
    for n, (u, i, r) in enumerate(again[["user_id", "item_id", "rating"]].itertuples(index=False)):
        rows.append((u, i, r if n < 20 else (r % 5) + 1, start + 300 + n))
    first, middle = sorted(users)[0], sorted(users)[len(users) // 2]
    strangers = ["0" + first, middle + "-new", "zz-new-user"]  # before, between, after
    for n, user in enumerate(strangers):
        rows += [(user, items[n], 4, start + 400 + n), (user, items[n + 1], 2, None)]
    rows += [(users[0], "zz-new-item", 5, start + 500), (users[1], "0-new-item", 1, start + 501)]
    return rows


def _csv(rows: list[tuple], name: str) -> DataFile:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return DataFile(name, frame.to_csv(index=False).encode())


def _window(data) -> bytes:
    """40 users' later ratings, one each (a window after the batch)."""
    later = int(data.ratings["timestamp"].max()) + 10_000
    users = data.ratings["user_id"].unique()[:40]
    items = data.ratings["item_id"].unique()
    rows = [(u, items[(n * 7) % len(items)], 1 + n % 5, later + n) for n, u in enumerate(users)]
    return _csv(rows, "window.csv").content


@pytest.fixture(scope="module")
def source(hostile_report, tmp_path_factory):
    """``(kept folder A, batch file, data, model, evaluation, result)``."""
    data, model, evaluation, result, _ = hostile_report
    folder = tmp_path_factory.mktemp("kept-update")
    parts = report_parts(data, model, evaluation, result, datetime.fromisoformat(REPORT_CREATED))
    save_kept(folder / "A", parts, result, "elsewhere", write_side(folder / "A", data, model,
                                                                     PER_PART))  # fmt: skip
    (folder / "batch.csv").write_bytes(_csv(_batch_rows(data), "batch.csv").content)
    return folder / "A", folder / "batch.csv", data, model


@pytest.mark.parametrize("refresh", [False, True], ids=["items-kept", "items-refreshed"])
def test_kept_update_equals_the_update_of_the_whole_model(source, tmp_path, refresh):
    """Every array, rating, count and record field equals ``update_model``'s, exactly."""
    folder, batch_file, data, model = source
    batch = load_dataset(batch_file, batch=True)
    expected = update_model(model, data, batch, refresh_items=refresh)
    run, record = update_kept(folder, batch, tmp_path / "B", refresh_items=refresh)
    side, want = run.users, expected.model
    inter = want.interactions
    np.testing.assert_array_equal(side.user_ids, inter.user_ids)
    np.testing.assert_array_equal(side.item_ids, inter.item_ids)
    for name in ("bu", "bi", "P", "Q"):
        np.testing.assert_array_equal(getattr(side, name), getattr(want, name), err_msg=name)
    np.testing.assert_array_equal(side.item_counts, inter.counts_per_item())
    parts = pd.concat([side.part(n) for n in range(len(side.bounds))], ignore_index=True)
    assert len(side.bounds) == 5  # new users joined the parts whose range holds them
    np.testing.assert_array_equal(parts["u"], inter.rows())
    np.testing.assert_array_equal(parts["i"], inter.items)
    np.testing.assert_array_equal(parts["rating"], inter.ratings)
    pd.testing.assert_series_equal(parts["timestamp"], expected.data.ratings["timestamp"],
                                   check_names=False)  # fmt: skip
    got, wanted = record.to_dict(), expected.record.to_dict()
    assert got.pop("fingerprint") == merged_fingerprint(data.fingerprint, batch.fingerprint)
    wanted.pop("fingerprint")
    assert {k: v for k, v in got.items() if k != "seconds"} == {
        k: v for k, v in wanted.items() if k != "seconds"}  # fmt: skip
    assert (record.ratings_replaced, record.ratings_replaced_changed, record.new_users,
            record.new_items) == (40, 20, 3, 2)  # fmt: skip
    after = run.derived_from["after"]
    first, last = expected.data.time_span()
    assert (after["ratings"], after["users"], after["items"]) == (
        expected.data.n_ratings, expected.data.n_users, expected.data.n_items)  # fmt: skip
    assert (after["first_timestamp"], after["last_timestamp"]) == (first, last)
    # one user's model on demand is the updated model's, with the merged history
    user = "0" + sorted(data.ratings["user_id"].unique())[0]
    one = side.model_for(user)
    u = inter.user_index([user])[0]
    # the arrays are equal; the product's summation order follows their memory layout
    np.testing.assert_allclose(one.score_block([u]), want.score_block([u]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(one.interactions.history(u)[0], inter.history(u)[0])


def test_updated_kept_report_says_what_its_figures_are_of(source, tmp_path):
    """The report keeps the source run's audit and says so; the JSON fits its schema."""
    folder, batch_file, data, _ = source
    run, record = update_kept(folder, load_dataset(batch_file, batch=True), tmp_path / "B")
    report = run.report()
    original = open_kept(folder).report()
    assert report.update["evaluated"] == "source"
    assert report.update["after"]["ratings"] == data.n_ratings + record.ratings_added
    assert report.update["users_refit"] == record.users_refit
    known = record.users_refit - record.new_users
    refreshed = update_kept(folder, load_dataset(batch_file, batch=True), tmp_path / "R",
                            refresh_items=True)[0].report().update  # fmt: skip
    assert refreshed["users_refit_for_items"] > 0 and refreshed["reading"][-2].endswith(
        f"(the {refreshed['users_refit_for_items']:,} users refit for refreshed items are not "
        "measured).")  # fmt: skip
    assert (f"For each of the {known:,} refit users the model knew before, the largest change "
            f"of a prediction over the items it knew before: at most "
            f"{record.max_abs_change:.3f} stars; the median of these {known:,} largest changes "
            f"is {record.median_abs_change:.3f}.") in report.update["reading"]  # fmt: skip
    assert any("those of the run kept in Spark that it was updated from" in s
               for s in report.update["reading"])  # fmt: skip
    document = json.loads(render_json(report))
    before = json.loads(render_json(original))
    differ = {k for k in document.keys() | before.keys() if document.get(k) != before.get(k)}
    assert differ == {"update"}  # the rest is the source run's
    html = render(report, ["html"])["report.html"].decode()
    assert "<p>This run's model was brought up to date with new ratings" in html
    assert KEPT_SUMMARY_LEAD[:80] in html and KEPT_SUMMARY_LEAD[:80] not in render(
        original, ["html"])["report.html"].decode()  # fmt: skip
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    assert document["update"]["evaluated"] == "source"
    assert open_kept(folder).report().update is None  # the source is unchanged


def test_kept_update_refusals(source, hostile_report, tmp_path):
    """One sentence each: the run itself as --out, no user side, off-scale, foreign ids."""
    folder, batch_file, data, model = source
    batch = load_dataset(batch_file, batch=True)
    with pytest.raises(SavedAnalysisError, match="is the run being updated"):
        update_kept(folder, batch, folder)
    _, _, evaluation, result, _ = hostile_report
    bare = tmp_path / "bare"
    save_kept(bare, report_parts(data, model, evaluation, result), result, "elsewhere")
    with pytest.raises(SavedAnalysisError, match="without its user side"):
        update_kept(bare, batch, tmp_path / "out")
    foreign = load_dataset(_csv([("u1", "i1", 4, 1)], "foreign.csv"), batch=True)
    with pytest.raises(DataError, match=r"None of the 1 users and 1 items of foreign\.csv"):
        update_kept(folder, foreign, tmp_path / "out")
    user = data.ratings["user_id"].iat[0]
    high = load_dataset(_csv([(user, "x", 9, 1)], "high.csv"), batch=True)
    with pytest.raises(DataError, match="outside the saved scale 1-5"):
        update_kept(folder, high, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was written
    # a folder holding anything a kept run does not write is not written into
    mine = tmp_path / "mine"
    (mine / "user_side").mkdir(parents=True)
    (mine / "notes.txt").write_text("the analyst's")
    with pytest.raises(SavedAnalysisError, match=r"holds 1 file\(s\) .* \(first: 'notes\.txt'\)"):
        update_kept(folder, batch, mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "user_side"]
    (mine / "notes.txt").unlink()  # an interrupted kept run's entries only: written into
    update_kept(folder, batch, mine)
    assert open_kept(mine).derived_from is not None
    # a kept run at --out is replaced, and its report and record go with it
    update_kept(folder, batch, tmp_path / "B")
    (tmp_path / "B" / "report").mkdir()
    (tmp_path / "B" / "report" / "report.html").write_text("an earlier update's")
    (tmp_path / "B" / "update.json").write_text("{}")
    update_kept(folder, batch, tmp_path / "B")
    assert not (tmp_path / "B" / "report").exists()
    assert not (tmp_path / "B" / "update.json").exists()
    update_kept(folder, batch, tmp_path / "B")
    manifest = json.loads((tmp_path / "B" / "manifest.json").read_text())
    manifest["derived_from"] = {"by": "update", "data": "x", "model": "y"}  # no record, after
    (tmp_path / "B" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SavedAnalysisError, match="derived_from entry that is not null"):
        open_kept(tmp_path / "B")


def test_cli_updates_a_kept_run_and_compare_names_the_relation(source, tmp_path, capsys):
    folder, batch_file, data, _ = source
    out = tmp_path / "B"
    capsys.readouterr()
    assert main(["update", str(folder), "--ratings", str(batch_file), "--out", str(out),
                 "--format", "json"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    # run --keep-in-spark and update refuse such a folder before any work, one sentence each
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "thesis.tex").write_text("kept")
    for argv in (["update", str(folder), "--ratings", str(batch_file)],
                 ["run", str(batch_file), "--engine", "spark", "--keep-in-spark"]):  # fmt: skip
        assert main([*argv, "--out", str(taken)]) == 2
        said = capsys.readouterr().err
        assert "holds 1 file(s) or folder(s) a kept run does not write" in said
        assert "Traceback" not in said and said.count("\n") == 1
    assert [p.name for p in taken.iterdir()] == ["thesis.tex"]
    assert printed["users_refit"] == json.loads((out / "update.json").read_text())["users_refit"]
    assert printed["kept_run"] == str(out)
    written = json.loads((out / "report" / "report.json").read_text())
    assert written["update"]["evaluated"] == "source"
    window = tmp_path / "window.csv"
    window.write_bytes(_window(data))
    assert main(["compare", str(folder), str(out), "--window", str(window), "--out",
                 str(tmp_path / "cmp"), "--bootstrap", "20", "--permutations", "50",
                 "--format", "json"]) == 0  # fmt: skip
    compared = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["compared"]
    assert compared["relation"] == "B is A's model updated (not retrained) with batch.csv."
    assert compared["b"]["ratings"] == printed["ratings_added"] + data.n_ratings
    assert compared["b"]["fingerprint"].startswith("update:")
    # the other order, and two updates of one run: each relation is said, also when printed
    assert main(["update", str(folder), "--ratings", str(batch_file), "--out",
                 str(tmp_path / "R"), "--refresh-items"]) == 0  # fmt: skip
    for first, second, said in (
        (out, folder, "A is B's model updated (not retrained) with batch.csv: B is the older "
         "version, so B - A reads the update backwards (swap A and B to read what the update "
         "did)."),
        (out, tmp_path / "R", "A and B are both updates of the same model: A with batch.csv, "
         "B with batch.csv."),
    ):  # fmt: skip
        capsys.readouterr()
        assert main(["compare", str(first), str(second), "--window", str(window),
                     "--bootstrap", "0", "--permutations", "0"]) == 0  # fmt: skip
        assert json.loads(capsys.readouterr().out)["relation"] == said


def test_dashboard_on_an_updated_kept_run_says_which_pages_show_what(
    source, tmp_path, started_on, sessions_dir
):
    """The pages say the run was updated and which model each shows; the User profile finds
    a user new in the batch, with their two ratings and the updated model's top-10."""
    folder, batch_file, data, model = source
    batch = load_dataset(batch_file, batch=True)
    _, record = update_kept(folder, batch, tmp_path / "B")
    expected = update_model(model, data, batch)
    at = started_on(tmp_path / "B")
    assert not at.exception and not at.error
    (notice,) = [w.value for w in at.warning if "Updated, not retrained" in w.value]
    assert f"{record.ratings_added:,} ratings added, 40 replaced; " in notice
    assert f"{record.users_refit:,} users refit, 3 of them new, item side as trained" in notice
    merged = expected.data
    assert f"fit to {merged.n_ratings:,} ratings of {merged.n_users:,} users" in notice
    assert f"on its {data.n_ratings:,} ratings before the batch" in notice
    assert "**User profile, Recommendations, Over time and Compare versions** use" in notice
    (caption,) = [c.value for c in at.caption if c.value.startswith("**Updated model**")]
    name = literal_markdown(f"{data.name} + batch.csv")
    assert (f"Dataset {name} · {merged.n_users:,} users · {merged.n_items:,} items · "
            f"{merged.n_ratings:,} ratings") in caption  # fmt: skip
    assert "**Before the update** (Data, Model, Bias audit, Report): Dataset " in caption
    shown = {m.label: m.value for m in at.metric}
    assert shown["Ratings"] == f"{data.n_ratings:,}"  # the Data page is the source run's
    at.switch_page("views/kept_audit.py").run()
    assert any(i.value == KEPT_SUMMARY_LEAD for i in at.info)  # the report's first sentence
    at.switch_page("views/report.py").run()
    assert not at.exception and not at.error
    (said,) = [i.value for i in at.info if "Model update" in i.value]
    assert said.startswith("The model was updated with new ratings by `python -m engine "
                           "update`, not retrained")  # fmt: skip
    assert "its profile, accuracy and audit are those of the run before the batch" in said
    assert "it is the model of the run kept in Spark of the data" in said
    assert any(c.value.startswith("This is the report of the run it was updated from")
               for c in at.caption)  # fmt: skip
    user = "zz-new-user"
    at.switch_page("views/user.py").run()
    at.selectbox(key="profile_user").set_value(user).run()
    assert not at.exception and not at.error, at.error
    assert {m.label: m.value for m in at.metric}["Ratings"] == "2"
    at.switch_page("views/recommendations.py").run()
    assert not at.exception and not at.error, at.error
    recs = next(f.value for f in at.dataframe if "raw_prediction" in f.value.columns)
    want = expected.model
    u = want.interactions.user_index([user])[0]
    scores = want.score_block([u])[0]
    scores[want.interactions.history(u)[0]] = -np.inf
    top = want.interactions.item_ids[np.argsort(-scores, kind="stable")[: len(recs)]]
    assert recs["item_id"].tolist() == top.tolist()
    # Compare versions: the updated run is B by default, the run it came from is uploaded as A
    at.switch_page("views/compare.py").run()
    assert at.radio(key="compare_this").value == "This kept run is B"
    window = _window(data)
    at.file_uploader(key="compare_a").set_value(("A.zip", _zip(folder), "application/zip"))
    at.file_uploader(key="compare_window").set_value(("window.csv", window, "text/csv"))
    for key, value in (("compare_boot", 20), ("compare_perm", 50), ("compare_min", 10)):
        at.number_input(key=key).set_value(value)
    at.run()
    at.button(key="run_compare").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    compared = at.session_state["compare_compared"]
    assert (compared["a"]["name"], compared["b"]["name"]) == ("A.zip", "This kept run")
    assert compared["relation"] == "B is A's model updated (not retrained) with batch.csv."
