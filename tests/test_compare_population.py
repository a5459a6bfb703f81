"""The comparison's population: users and items a version does not know, by its fallback.

Known answers on a hand-built toy (``engine.compare.measures``, ``engine.compare.groups``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.audit import AuditConfig
from engine.cli import main
from engine.compare import KNOWN_TO, NEW_TO_A, compare_models, fallback_sentence
from engine.model import ModelConfig
from engine.model.interactions import Interactions
from engine.model.svd import TrainedModel
from tests.test_compare import T0, _ratings, _row

KNOWN = [f"k{u:02d}" for u in range(10)]  # in A's and B's training data
NEW = [f"n{u:02d}" for u in range(10)]  # in B's only (folded in by an update)
ITEMS = np.array(["i0", "i1", "i2", "i3"], dtype=object)
BI = np.array([0.0, 0.5, -0.5, 0.0])
CONFIG = AuditConfig(k=2, min_group_size=5, permutations=999, bootstrap=100, seed=7)


def _model(users: list[str], bu: dict[str, float]) -> TrainedModel:
    """``3 + b_u + b_i`` (no factors); ``users`` rated i0, catalogue user ``zz`` every item."""
    history = pd.DataFrame(
        {
            "user_id": users + ["zz"] * len(ITEMS),
            "item_id": ["i0"] * len(users) + list(ITEMS),
            "rating": 3.0,
        }
    )
    inter = Interactions.from_frame(history, ITEMS)
    biases = np.array([bu.get(u, 0.0) for u in inter.user_ids])
    zeros = np.zeros((inter.n_users, 1)), np.zeros((len(ITEMS), 1))
    return TrainedModel(ModelConfig(), 3.0, biases, BI.copy(), zeros[0], zeros[1], inter,
                        (1.0, 5.0))  # fmt: skip


@pytest.fixture(scope="module")
def toy():
    """A knows the k users (b_u = 0.2); B = A plus the n users (b_u = 1), b_i as ``BI``.

    Window: every user rates i1 and i2 with 4; k00 rates i9 (an item neither knows) with 3,
    n00 rates i9 with 2, and n00 rates i0 again (a pair of B's training data: excluded).
    A predicts an n user by its fallback ``mu + b_i`` (i1 3.5, i2 2.5, i9 3), B by its model
    (i1 4.5, i2 3.5) or, for i9, by ``mu + b_u`` = 4; k00's i9 is ``mu + b_u`` = 3.2 in both.
    """
    a = _model(KNOWN, {u: 0.2 for u in KNOWN})
    b = _model(KNOWN + NEW, {**{u: 0.2 for u in KNOWN}, **{u: 1.0 for u in NEW}})
    rows = [(u, i, 4.0) for u in KNOWN + NEW for i in ("i1", "i2")]
    rows += [("k00", "i9", 3.0), ("n00", "i9", 2.0), ("n00", "i0", 5.0)]
    window = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    users = pd.DataFrame({"region": ["north"] * 5 + ["south"] * 5 + ["north"] * 5 + ["south"] * 5},
                         index=pd.Index(KNOWN + NEW, name="user_id"))  # fmt: skip
    return a, b, window, users


#: Hand-computed summed squared errors per user under A and B, and window ratings used.
K_AB = (3.7 - 4) ** 2 + (2.7 - 4) ** 2  # 0.09 + 1.69: model, the same in A and B
SE = {
    "k00": (K_AB + (3.2 - 3) ** 2, K_AB + (3.2 - 3) ** 2, 3),
    **{u: (K_AB, K_AB, 2) for u in KNOWN[1:]},
    "n00": ((3.5 - 4) ** 2 + (2.5 - 4) ** 2 + (3 - 2) ** 2,
            (4.5 - 4) ** 2 + (3.5 - 4) ** 2 + (4 - 2) ** 2, 3),
    **{u: ((3.5 - 4) ** 2 + (2.5 - 4) ** 2, (4.5 - 4) ** 2 + (3.5 - 4) ** 2, 2) for u in NEW[1:]},
}  # fmt: skip


def _rmse(users: list[str]) -> tuple[float, float]:
    n = sum(SE[u][2] for u in users)
    return (np.sqrt(sum(SE[u][0] for u in users) / n), np.sqrt(sum(SE[u][1] for u in users) / n))


def test_every_window_rating_is_scored_with_the_fallback_where_unknown(toy):
    a, b, window, users = toy
    result = compare_models(a, b, window, CONFIG, users=users)
    table = result.users
    assert set(table.index) == set(KNOWN + NEW)
    for user, (se_a, se_b, n) in SE.items():
        assert (table.loc[user, "se_a"], table.loc[user, "se_b"]) == pytest.approx((se_a, se_b))
        assert table.loc[user, "n_pairs"] == n
    assert table["new_to_a"].sum() == 10 and not table["new_to_b"].any()
    assert table.loc["n00", "fallback_a"] == 3 and table.loc["n00", "fallback_b"] == 1
    counts = result.counts
    assert (counts["window_ratings"], counts["pairs_used"]) == (43, 42)
    assert counts["pairs_excluded"] == {"not after the training data": 0,
                                        "pair in a version's training data": 1}  # fmt: skip
    # A: 20 ratings of n users on known items, k00's i9, n00's i9; B: the two i9 ratings
    assert (result.n_fallback_a, result.n_fallback_b) == (22, 2)
    assert counts["fallback_a"] == {"user not seen": 20, "item not seen": 1,
                                    "user and item not seen": 1}  # fmt: skip
    assert counts["fallback_b"] == {"user not seen": 0, "item not seen": 2,
                                    "user and item not seen": 0}  # fmt: skip
    assert result.sentences[0] == (
        "A predicted 22 of 42 window ratings by its fallback (20 of users it had not seen, "
        "1 of items it had not seen, 1 of both user and item unseen); B 2 (2 of items it had "
        "not seen)."
    )
    assert fallback_sentence(counts) == result.sentences[0]
    overall = _row(result.rows, "RMSE", "all users", "all users")
    a_all, b_all = _rmse(KNOWN + NEW)  # sqrt(43.84 / 42) -> sqrt(26.84 / 42)
    assert (overall["value_a"], overall["value_b"]) == pytest.approx((a_all, b_all))
    assert overall["difference"] == pytest.approx(np.sqrt(26.84 / 42) - np.sqrt(43.84 / 42))
    assert (overall["n_users"], overall["n_pairs"]) == (20, 42)


def test_new_users_are_grouped_by_attributes_and_as_new_to_a(toy):
    a, b, window, users = toy
    rows = compare_models(a, b, window, CONFIG, users=users).rows
    north = _row(rows, "RMSE", "region", "north")  # k00-k04 and n00-n04
    assert north["n_users"] == 10
    assert (north["value_a"], north["value_b"]) == pytest.approx(_rmse(KNOWN[:5] + NEW[:5]))
    for grouping in ("activity", "popularity propensity"):
        new = _row(rows, "RMSE", grouping, NEW_TO_A)
        assert new["n_users"] == 10 and new["n_pairs"] == 21
        assert (new["value_a"], new["value_b"]) == pytest.approx(_rmse(NEW))
        assert new["verdict"] == "improved"  # 9 of 10 users gain 2.5 - 0.5 = 2
        assert NEW_TO_A not in set(rows.loc[rows["grouping"] == grouping, "group"]) - {NEW_TO_A}
    known = rows[(rows["metric"] == "RMSE") & (rows["grouping"] == "activity")
                 & (rows["group"] != NEW_TO_A)]  # fmt: skip
    assert known["n_users"].sum() == 10 and (known["difference"] == 0).all()
    # which versions know the user: the n users are B's only (folded in), the k users both's
    known_to = rows[(rows["metric"] == "RMSE") & (rows["grouping"] == KNOWN_TO)]
    assert set(known_to["group"]) == {"A and B", "B only"}
    both, b_only = _row(rows, "RMSE", KNOWN_TO, "A and B"), _row(rows, "RMSE", KNOWN_TO, "B only")
    assert (both["n_users"], both["difference"], both["verdict"]) == (
        10,
        0.0,
        "no significant change",
    )
    assert (b_only["value_a"], b_only["value_b"]) == pytest.approx(_rmse(NEW))
    assert b_only["verdict"] == "improved"
    # the catalogue share's items: A's and the window's i9 (the union, said in a note)
    result = compare_models(a, b, window, CONFIG, users=users)
    n_items = len(ITEMS) + 1
    assert any(n.startswith(f"A catalogue share is the share of the {n_items} items A, B or "
                            "the window have") for n in result.notes)  # fmt: skip
    # i9: no training rating in A -> item popularity's "new to A"; 2 raters (< 5)
    item = _row(rows, "RMSE", "item popularity", NEW_TO_A)
    assert (item["n_users"], item["n_pairs"], item["verdict"]) == (2, 2, "insufficient data")
    assert (item["value_a"], item["value_b"]) == pytest.approx(
        (np.sqrt(((3.2 - 3) ** 2 + 1) / 2), np.sqrt(((3.2 - 3) ** 2 + 4) / 2))
    )


def test_a_user_a_does_not_know_gets_its_fallback_list(toy):
    """A's fallback list is its 2 most-rated items, i0 (11 ratings) then i1 (tie by id).

    R_u = {i1, i2} (rated 4 >= 4). n user: A's list i0, i1 -> DCG 1/log2(3);
    B's own list (i0 rated) i1 (b_i 0.5), i3 (0) -> DCG 1; IDCG = 1 + 1/log2(3).
    """
    a, b, window, users = toy
    result = compare_models(a, b, window, CONFIG, users=users)
    idcg = 1 + 1 / np.log2(3)
    table = result.users
    assert table.loc["n03", "ndcg_a"] == pytest.approx(1 / np.log2(3) / idcg)
    assert table.loc["n03", "ndcg_b"] == pytest.approx(1 / idcg)
    assert table.loc["k03", "ndcg_a"] == pytest.approx(1 / idcg) == table.loc["k03", "ndcg_b"]
    counts = result.counts
    assert (counts["users_ndcg"], counts["users_ndcg_fallback_a"]) == (20, 10)
    assert counts["users_ndcg_fallback_b"] == 0 and counts["users_exposure"] == 20
    ndcg = _row(result.rows, "NDCG@2", "all users", "all users")
    assert ndcg["difference"] == pytest.approx(10 * (1 - 1 / np.log2(3)) / idcg / 20)


def test_a_version_compared_with_itself_changes_nothing(toy):
    a, _, window, users = toy
    result = compare_models(a, a, window, CONFIG, users=users)
    # n00's i0 is no training pair of A: kept (43 ratings), by A's fallback mu + b_i = 3
    assert result.counts["pairs_used"] == 43
    assert (result.n_fallback_a, result.n_fallback_b) == (23, 23)
    assert (result.rows["difference"].dropna() == 0).all()
    tested = result.rows[result.rows["verdict"] != "insufficient data"]
    assert len(tested) and (tested["verdict"] == "no significant change").all()
    assert (tested["p_value"] == 1.0).all()
    overall = _row(result.rows, "RMSE", "all users", "all users")
    assert overall["value_a"] == pytest.approx(np.sqrt((43.84 + (3 - 5) ** 2) / 43))
    neither = _row(result.rows, "RMSE", KNOWN_TO, "neither")  # the n users: both fallbacks
    assert (neither["n_users"], neither["difference"]) == (10, 0.0)


def test_cli_counts_the_fallback_ratings_of_users_new_to_a(tmp_path, capsys):
    """A: users u00-u29; the batch adds u30-u39; the window: later ratings of all 40."""
    from engine.analysis import Analysis, AnalysisSettings
    from engine.data import load_dataset
    from engine.saved import save_analysis

    rng = np.random.default_rng(3)
    cells = [(f"u{u:02d}", f"i{i:02d}") for u in range(40) for i in range(12)]
    ratings = [(*cells[c], int(rng.integers(1, 6))) for c in rng.permutation(len(cells))]
    old = [r for r in ratings if r[0] < "u30"][:300]
    rest = [r for r in ratings if r not in old]
    batch = [r for r in rest if r[0] >= "u30"][:60]
    later = [r for r in rest if r not in batch]
    stamped = [[(*r, T0 + start + t) for t, r in enumerate(part)]
               for part, start in ((old, 0), (batch, 5000), (later, 9000))]  # fmt: skip
    settings = AnalysisSettings(model=ModelConfig(n_factors=2, n_epochs=10, seed=1))
    analysis = Analysis(load_dataset(_ratings(stamped[0], "old.csv")), settings)
    assert set(analysis.model.interactions.item_ids) == {f"i{i:02d}" for i in range(12)}
    save_analysis(analysis, tmp_path / "A")
    (tmp_path / "batch.csv").write_bytes(_ratings(stamped[1], "batch.csv").content)
    (tmp_path / "window.csv").write_bytes(_ratings(stamped[2], "window.csv").content)
    assert main(["update", str(tmp_path / "A"), "--ratings", str(tmp_path / "batch.csv"),
                 "--out", str(tmp_path / "B")]) == 0  # fmt: skip
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--window",
                 str(tmp_path / "window.csv"), "--out", str(out), "--permutations", "200",
                 "--min-group-size", "5"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    new_to_a = sum(1 for r in later if r[0] >= "u30")
    counts = printed["counts"]
    assert counts["pairs_used"] == len(later)
    assert (counts["n_fallback_a"], counts["n_fallback_b"]) == (new_to_a, 0)
    assert counts["fallback_a"]["user not seen"] == new_to_a
    assert counts["users_new_to_a"] == 10
    assert printed["sentences"][0].startswith(
        f"A predicted {new_to_a} of {len(later)} window ratings by its fallback"
    )
    document = json.loads((out / "comparison.json").read_text("utf-8"))
    assert document["counts"]["n_fallback_a"] == new_to_a
    html = (out / "comparison.html").read_text("utf-8")
    assert f"A predicted {new_to_a} of {len(later)} window ratings by its fallback" in html
    rows = pd.read_csv(out / "comparison.csv")
    new = rows[(rows["metric"] == "RMSE") & (rows["grouping"] == "activity")
               & (rows["group"] == NEW_TO_A)]  # fmt: skip
    assert new["n_users"].tolist() == [10] and new["n_pairs"].tolist() == [new_to_a]
