"""Incremental update from new feedback (``engine.update``, ``python -m engine update``)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from engine.analysis import Analysis, AnalysisSettings
from engine.cli import main
from engine.data import DataFile, LoadOptions, load_dataset
from engine.errors import DataError
from engine.explain import explain_prediction
from engine.explain.history import RESIDUAL_FEATURE
from engine.model import ModelConfig, train
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel
from engine.saved import SavedAnalysisError, open_analysis, read_saved, save_analysis
from engine.update import prediction_changes, update_model

CONFIG = ModelConfig(n_factors=3, n_epochs=30, refit_lambda=0.1, seed=1)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def _old_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = [
        (f"u{u}", f"i{i}", int(rng.integers(1, 6)), 1000 + 10 * u + i)
        for u in range(1, 9)
        for i in range(1, 8)
        if rng.random() < 0.7
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def _batch_frame(old: pd.DataFrame) -> pd.DataFrame:
    rated_u1 = set(old.loc[old.user_id == "u1", "item_id"])
    unrated = sorted({f"i{i}" for i in range(1, 8)} - rated_u1)
    first = sorted(rated_u1)[0]
    before = int(old.loc[(old.user_id == "u1") & (old.item_id == first), "rating"].iloc[0])
    rows = [
        ("u1", unrated[0], 5, 5000),  # a new pair of a known user and item
        ("u1", first, 6 - before if before != 3 else 1, 5001),  # replaces the saved rating
        ("u9", "i1", 4, 5002),  # a new user, known items only
        ("u9", "i2", 2, 5003),
        ("u9", "i3", 5, 5004),
        ("u2", "i99", 4, 5005),  # a new item
        ("u3", "i4", 7, 5006),  # outside the 1-5 scale: rejected
    ]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture(scope="module")
def toy():
    old_frame = _old_frame()
    old = load_dataset(DataFile("old.csv", _csv(old_frame)))
    batch = load_dataset(
        DataFile("new.csv", _csv(_batch_frame(old_frame))),
        options=LoadOptions(scale=(1, 5)),
        batch=True,
    )
    return old, batch, train(old, CONFIG)


def ridge_lstsq(X: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """``argmin |X t - y|^2 + lam n |t|^2`` by least squares on the augmented system."""
    n, d = X.shape
    A = np.vstack([X, np.sqrt(lam * n) * np.eye(d)])
    return np.linalg.lstsq(A, np.concatenate([y, np.zeros(d)]), rcond=None)[0]


def _item_side(model, ids) -> tuple[np.ndarray, np.ndarray]:
    """``(b_j, q_j)`` of raw item ids in ``model``; zeros for items it does not know."""
    idx = model.interactions.item_index(list(ids))
    known = idx >= 0
    b = np.where(known, model.bi[np.maximum(idx, 0)], 0.0)
    q = np.where(known[:, None], model.Q[np.maximum(idx, 0)], 0.0)
    return b, q


def _user_by_hand(model, data, user: str, item_model=None) -> np.ndarray:
    """The ridge solve of ``user``'s merged history on ``item_model``'s item side."""
    item_model = item_model or model
    rows = data.ratings[data.ratings.user_id == user]
    b, q = _item_side(item_model, rows.item_id)
    X = np.column_stack([np.ones(len(rows)), q])
    y = rows.rating.to_numpy() - model.mu - b
    return ridge_lstsq(X, y, CONFIG.refit_lambda)


def _theta(model, user: str) -> np.ndarray:
    u = int(model.interactions.user_index([user])[0])
    return np.concatenate([[model.bu[u]], model.P[u]])


def test_touched_users_are_the_ridge_solve_and_the_others_are_unchanged(toy):
    old, batch, model = toy
    result = update_model(model, old, batch)
    new = result.model
    assert new.fingerprint == result.data.fingerprint
    for user in ("u1", "u2", "u9"):
        np.testing.assert_allclose(
            _theta(new, user), _user_by_hand(model, result.data, user), atol=1e-10
        )
    for user in ("u3", "u4", "u5", "u6", "u7", "u8"):
        assert np.array_equal(_theta(new, user), _theta(model, user))
    # the item side and the global mean are kept as trained; the new item has none
    assert new.mu == model.mu
    b, q = _item_side(model, new.interactions.item_ids)
    assert np.array_equal(new.bi, b) and np.array_equal(new.Q, q)
    i99 = int(new.interactions.item_index(["i99"])[0])
    assert new.bi[i99] == 0 and not new.Q[i99].any()


def test_a_new_user_is_folded_in(toy):
    old, batch, model = toy
    new = update_model(model, old, batch).model
    folded = model.fold_in(["i1", "i2", "i3"], np.array([4.0, 2.0, 5.0]))
    assert not folded.unknown_items
    np.testing.assert_allclose(_theta(new, "u9"), np.r_[folded.bu, folded.pu], atol=1e-12)


def test_refresh_items_is_the_mirror_ridge_solve(toy):
    old, batch, model = toy
    result = update_model(model, old, batch, refresh_items=True)
    new, data = result.model, result.data
    # step 2 by hand: touched users refit on the trained item side, the others as trained
    users = {u: _theta(model, u) for u in model.interactions.user_ids}
    for user in ("u1", "u2", "u9"):
        users[user] = _user_by_hand(model, data, user)
    lam = CONFIG.refit_lambda
    for item in ("i1", "i2", "i3", "i99", *batch.ratings.item_id):
        rows = data.ratings[data.ratings.item_id == item]
        thetas = np.array([users[u] for u in rows.user_id])
        Z = np.column_stack([np.ones(len(rows)), thetas[:, 1:]])
        y = rows.rating.to_numpy() - model.mu - thetas[:, 0]
        i = int(new.interactions.item_index([item])[0])
        np.testing.assert_allclose(np.r_[new.bi[i], new.Q[i]], ridge_lstsq(Z, y, lam), atol=1e-10)
    # untouched items keep their side; every user is the ridge solve on the new item side
    i5 = int(new.interactions.item_index(["i5"])[0])
    if "i5" not in set(batch.ratings.item_id):
        assert np.array_equal(new.Q[i5], model.Q[int(model.interactions.item_index(["i5"])[0])])
    for user in new.interactions.user_ids:
        np.testing.assert_allclose(
            _theta(new, user), _user_by_hand(new, data, user), atol=1e-10, err_msg=user
        )
    record = result.record
    assert record.items_refreshed == record.items_touched == batch.ratings.item_id.nunique()
    assert record.new_items_without_item_side == 0
    assert record.users_refit_for_items > 0


def test_counts_replacements_rejections_and_new_items(toy):
    old, batch, model = toy
    result = update_model(model, old, batch)
    record = result.record
    assert record.ratings_rejected == 1 and record.batch["rejected"] == {"out_of_scale": 1}
    assert (
        f"1 row(s) of {batch.name} were rejected and not added (1 out_of_scale): the "
        "batch's load report (batch.rejected) counts them by reason."
    ) in record.notes
    assert record.ratings_replaced == 1 and record.ratings_replaced_changed == 1
    assert record.ratings_added == 5
    assert record.users_refit == 3 and record.new_users == 1
    assert record.new_items == record.new_items_without_item_side == 1
    assert record.items_refreshed == 0 and record.users_refit_for_items == 0
    assert any(n.startswith("1 new item(s) have no bias") for n in record.notes)
    data = result.data
    assert len(data.ratings) == len(old.ratings) + 5
    report = data.report
    assert report.rows_kept + report.rows_rejected == report.rows_read
    assert report.rejected["duplicate"] == old.report.rejected.get("duplicate", 0) + 1
    # the replaced rating is the batch's
    row = batch.ratings[(batch.ratings.user_id == "u1")].merge(
        old.ratings, on=["user_id", "item_id"]
    )
    merged = data.ratings.set_index(["user_id", "item_id"]).loc[("u1", row.item_id.iloc[0])]
    assert merged.rating == row.rating_x.iloc[0] != row.rating_y.iloc[0]
    # the largest change of each touched existing user is listed, largest first
    changes = [abs(c["change"]) for c in record.largest_changes]
    assert {c["user_id"] for c in record.largest_changes} == {"u1", "u2"}
    assert changes == sorted(changes, reverse=True) and record.max_abs_change == changes[0]


def test_prediction_changes_by_hand():
    """One user, two items, one factor: item i2's bias rises by 1, the user's by 0.2 and
    p_u from 1 to 2. Changes: i1 0.2 + (2 - 1) * 0.5 = 0.7, i2 0.2 + 1 + (2 - 1) * 0.1 = 1.3;
    the largest is i2's, from mu + q = 3.1 to 3 + 0.2 + 1 + 0.2 = 4.4."""
    inter = Interactions(
        np.array(["u1"], dtype=object),
        np.array(["i1", "i2"], dtype=object),
        np.zeros(2, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        np.zeros(0),
    )
    Q = np.array([[0.5], [0.1]])
    old = TrainedModel(
        ModelConfig(n_factors=1),
        3.0,
        np.array([0.0]),
        np.zeros(2),
        np.array([[1.0]]),
        Q,
        inter,
        (1, 5),
    )
    new = replace(old, bu=np.array([0.2]), bi=np.array([0.0, 1.0]), P=np.array([[2.0]]))
    rows, largest = prediction_changes(old, new, np.array([0]))
    (row,) = rows
    assert row["item_id"] == "i2" and largest == pytest.approx([1.3])
    assert (row["before"], row["after"], row["change"]) == pytest.approx((3.1, 4.4, 1.3))


@pytest.mark.parametrize("refresh", [False, True])
def test_prediction_changes_are_the_whole_score_matrices_difference(toy, refresh):
    """Each touched existing user's largest change, item and before/after equal the brute
    force over both models' full score matrices (old items only)."""
    old, batch, model = toy
    result = update_model(model, old, batch, refresh_items=refresh)
    new, inter = result.model, result.model.interactions
    users = inter.user_index(batch.ratings["user_id"].unique())
    before_ids = model.interactions.user_index(inter.user_ids[users])
    users, before_ids = users[before_ids >= 0], before_ids[before_ids >= 0]
    items = inter.item_index(model.interactions.item_ids)
    before = model.score_block(before_ids)
    after = new.score_block(users)[:, items]
    change = after - before
    j = np.abs(change).argmax(axis=1)
    expected = sorted(
        ({"user_id": inter.user_ids[u], "item_id": model.interactions.item_ids[j[n]],
          "before": before[n, j[n]], "after": after[n, j[n]], "change": change[n, j[n]]}
         for n, u in enumerate(users)), key=lambda r: -abs(r["change"]),
    )  # fmt: skip
    got = result.record.largest_changes
    assert [(r["user_id"], r["item_id"]) for r in got] == [
        (r["user_id"], r["item_id"]) for r in expected]  # fmt: skip
    for key in ("before", "after", "change"):
        np.testing.assert_allclose([r[key] for r in got], [r[key] for r in expected], atol=1e-12)
    assert result.record.max_abs_change == pytest.approx(np.abs(change).max(), abs=1e-12)
    assert result.record.median_abs_change == pytest.approx(
        np.median(np.abs(change).max(axis=1)), abs=1e-12)  # fmt: skip


@pytest.mark.parametrize("refresh", [False, True])
def test_explanations_still_add_up_after_an_update(toy, refresh):
    old, batch, model = toy
    new = update_model(model, old, batch, refresh_items=refresh).model
    for user, item in (("u1", "i7"), ("u9", "i5"), ("u2", "i99"), ("u5", "i2")):
        bundle = explain_prediction(new, user, item, counterfactual=False)
        assert bundle.fidelity["history_gap"] < 1e-12
        assert bundle.fidelity["factors_gap"] < 1e-12
        assert RESIDUAL_FEATURE not in list(bundle.history.feature_names)


def test_a_batch_with_ids_of_another_kind_is_refused(toy):
    old, _, model = toy
    other = pd.DataFrame({"user_id": ["x1", "x2"], "item_id": ["m1", "m2"], "rating": [3, 4]})
    batch = load_dataset(DataFile("other.csv", _csv(other)), batch=True)
    with pytest.raises(DataError, match="same kind of ids"):
        update_model(model, old, batch)


# -- command line --------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path, toy):
    old, _, _ = toy
    analysis = Analysis(old, AnalysisSettings(model=CONFIG))
    analysis.model  # noqa: B018  (computes the model stage, which is saved)
    folder = save_analysis(analysis, tmp_path / "A")
    new = tmp_path / "new.csv"
    new.write_bytes(_csv(_batch_frame(_old_frame())))
    return folder, new


def test_cli_update_saves_a_derived_analysis_with_its_record(saved, tmp_path, capsys):
    folder, new = saved
    out = tmp_path / "B"
    assert main(["update", str(folder), "--ratings", str(new), "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    record = json.loads((out / "update.json").read_text("utf-8"))
    for summary in (printed, record):
        assert summary["ratings_added"] == 5 and summary["ratings_replaced"] == 1
        assert summary["ratings_rejected"] == 1 and summary["users_refit"] == 3
        assert summary["new_users"] == 1 and summary["new_items_without_item_side"] == 1
    reopened = read_saved(out)
    assert reopened.analysis.computed() == ["model"]
    assert reopened.manifest["derived_from"]["by"] == "update"
    assert reopened.manifest["derived_from"]["data"] == open_analysis(folder).data.fingerprint
    assert reopened.analysis.data.n_ratings == open_analysis(folder).data.n_ratings + 5
    assert reopened.analysis.model.fingerprint == record["fingerprint"]
    assert main(["update", str(out), "--ratings", str(new), "--out", str(tmp_path / "C"),
                 "--refresh-items"]) == 0  # fmt: skip
    again = json.loads(capsys.readouterr().out)
    assert again["ratings_replaced"] == 6 and again["ratings_added"] == 0


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("missing", "does not exist"),
        ("not saved", "manifest"),
        ("other ids", "same kind of ids"),
        ("same out", "the analysis being updated"),
        ("scale", "differs from the saved analysis's scale"),
    ],
)
def test_cli_update_bad_input_exits_2_with_one_sentence(saved, tmp_path, capsys, case, fragment):
    folder, new = saved
    args = ["update", str(folder), "--ratings", str(new), "--out", str(tmp_path / "B")]
    if case == "missing":
        args[3] = str(tmp_path / "absent.csv")
    elif case == "not saved":
        args[1] = str(tmp_path)
    elif case == "other ids":
        other = tmp_path / "other.csv"
        other.write_text("user_id,item_id,rating\nx1,m1,3\nx2,m2,4\n", encoding="utf-8")
        args[3] = str(other)
    elif case == "same out":
        args[5] = str(folder)
    else:
        args += ["--scale", "1,10"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "B").exists()


def test_a_schema_1_analysis_still_opens_and_a_bad_derivation_is_refused(saved):
    folder, _ = saved
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text("utf-8"))
    assert manifest["schema_version"] == "2" and manifest["derived_from"] is None
    del manifest["derived_from"]
    path.write_text(json.dumps({**manifest, "schema_version": "1"}), encoding="utf-8")
    opened = read_saved(folder)
    assert opened.analysis.computed() == ["model"] and opened.manifest["derived_from"] is None
    assert opened.notes == [
        "The analysis was saved with schema version 1; it was migrated to version 2 on opening."
    ]
    bad = {**manifest, "derived_from": {"by": "magic", "data": "0" * 64, "model": "0" * 64}}
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(SavedAnalysisError, match="derived_from"):
        read_saved(folder)


def test_a_batch_of_one_rating_is_enough(toy):
    old, _, model = toy
    one = load_dataset(DataFile("one.csv", b"user_id,item_id,rating\nu4,i99,5\n"), batch=True)
    record = update_model(model, old, one).record
    assert record.ratings_added == 1 and record.users_refit == 1 and record.new_items == 1
    with pytest.raises(DataError, match="same value"):
        load_dataset(DataFile("one.csv", b"user_id,item_id,rating\nu4,i99,5\n"))
