"""What-if edits: the change summary is exact, nothing is dropped silently, ranks are honest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.model.config import ModelConfig
from engine.model.svd import train_svd
from engine.recommend import recommend_for_vector
from engine.whatif import (
    DUPLICATE,
    INCOMPLETE,
    MOVED_DOWN,
    NOW_RATED,
    UNKNOWN_ITEM,
    before_vector,
    compare_rankings,
    compare_ratings,
    full_ranking,
    known_items,
    with_previous_rank,
)
from tests.conftest import synth_ratings

BEFORE = pd.DataFrame({"item_id": ["a", "b", "c"], "rating": [4.0, 2.0, 5.0]})


def ranking(*item_ids: str) -> pd.DataFrame:
    """A full ranking table, best first."""
    return pd.DataFrame({"item_id": list(item_ids), "rank": range(1, len(item_ids) + 1)})


@pytest.fixture(scope="module")
def model():
    return train_svd(synth_ratings(60, 40, 1500, seed=3), (1, 5))


def test_unedited_table_is_not_an_edit():
    change = compare_ratings(BEFORE, BEFORE.copy())
    assert not change.edited and change.describe().startswith("What-if: 0 added, 0 changed")
    assert change.not_used.empty


def test_added_changed_removed_duplicates_and_incomplete_rows_are_counted():
    after = pd.DataFrame(
        {
            "item_id": ["a", "b", "d", "d", None, "e", " "],
            "rating": [4.0, 3.0, 1.0, 2.0, 5.0, np.nan, 4.0],
        }
    )
    change = compare_ratings(BEFORE, after)
    assert change.added == ["d"] and change.removed == ["c"] and change.changed == ["b"]
    assert change.duplicates == ["d"] and change.incomplete_rows == 3
    assert dict(zip(change.item_ids, change.ratings, strict=True)) == {"a": 4.0, "b": 3.0,
                                                                      "d": 2.0}  # fmt: skip
    assert change.not_used[["row", "reason"]].values.tolist() == [
        [2, DUPLICATE], [4, INCOMPLETE], [5, INCOMPLETE], [6, INCOMPLETE]
    ]  # fmt: skip
    assert change.describe() == (
        "What-if: 1 added, 1 changed, 1 removed (3 ratings used). Entered twice, last row "
        "used: d. 3 rows without an item or a rating were ignored."
    )


def test_a_rating_of_an_unknown_item_is_not_used_and_not_counted_as_added():
    after = pd.DataFrame(
        {"item_id": ["a", "b", "c", "zz", "d"], "rating": [4.0, 2.0, 5.0, 5.0, 3.0]}
    )
    change = compare_ratings(BEFORE, after, known_items=["a", "b", "c", "d"])
    assert change.added == ["d"] and change.unknown_items == ["zz"]
    assert change.not_used.to_dict("records") == [
        {"row": 3, "item_id": "zz", "rating": 5.0, "reason": UNKNOWN_ITEM}
    ]
    assert list(change.item_ids) == ["a", "b", "c", "d"]
    assert "Not known to the model, not used: zz." in change.describe()
    only_unknown = compare_ratings(BEFORE, after.drop(index=4), known_items=["a", "b", "c"])
    assert not only_unknown.edited and only_unknown.added == []  # nothing the fit can use


def test_a_rating_outside_the_scale_is_not_used():
    after = pd.DataFrame({"item_id": ["a", "b", "c"], "rating": [4.0, 9.0, 5.0]})
    change = compare_ratings(BEFORE, after, scale=(1.0, 5.0))
    assert change.removed == ["b"] and change.not_used["reason"].tolist() == [
        "rating outside the scale 1 to 5"
    ]


def test_known_items_are_those_with_training_ratings(model):
    known = known_items(model)
    assert len(known) == int((model.interactions.counts_per_item() > 0).sum())
    unknown = compare_ratings(BEFORE.iloc[:0], pd.DataFrame({"item_id": ["nope"], "rating": [3.0]}),
                              known_items=known)  # fmt: skip
    assert unknown.unknown_items == ["nope"] and len(unknown.item_ids) == 0


def test_rank_before_comes_from_the_full_ranking_before_the_edit():
    # Before: x1..x5 ranked (top-2 = x1, x2). The edit rates x1; x4 climbs from rank 4.
    before = ranking("x1", "x2", "x3", "x4", "x5")
    after = ranking("x4", "x2", "x3", "x5")
    change = compare_rankings(before, after, n=2)
    assert change.top["item_id"].tolist() == ["x4", "x2"]
    assert change.top["rank_before"].tolist() == [4, 2]  # not <NA>: x4 was ranked, 4th
    (dropped,) = change.dropped.to_dict("records")
    assert dropped == {"item_id": "x1", "rank_before": 1, "rank_after": None, "reason": NOW_RATED}


def test_items_that_left_the_top_n_are_named_with_where_they_went():
    before = ranking("x1", "x2", "x3", "x4")
    after = ranking("x3", "x4", "x1", "x2")
    change = compare_rankings(before, after, n=2)
    assert change.dropped.values.tolist() == [["x1", 1, 3, MOVED_DOWN], ["x2", 2, 4, MOVED_DOWN]]
    unchanged = compare_rankings(before, before, n=2)
    assert unchanged.dropped.empty and unchanged.top["rank_before"].tolist() == [1, 2]


def test_rank_before_is_missing_only_for_an_item_rated_before_the_edit():
    before = ranking("x2", "x3")  # x1 was rated
    after = ranking("x1", "x2", "x3")  # its rating was removed
    top = with_previous_rank(after, before)
    assert top["rank_before"].tolist() == [pd.NA, 1, 2]


def test_every_item_ranked_before_an_edit_gets_its_rank_on_a_real_model(model):
    vector = before_vector(model, 0)
    ids = model.interactions.item_ids[vector.items]
    before = full_ranking(model, vector, "u")
    # Lower the two highest ratings: items from beyond the top-5 move in.
    ratings = vector.ratings.copy()
    ratings[np.argsort(-ratings, kind="stable")[:2]] = 1.0
    edited = model.fold_in(ids, ratings)
    change = compare_rankings(before, full_ranking(model, edited, "u"), n=5)
    assert change.top["rank_before"].notna().all()
    assert (change.top["rank_before"] > 5).any()  # an item climbed from beyond the list
    assert set(change.dropped["item_id"]) == set(before["item_id"][:5]) - set(change.top["item_id"])
    assert (change.dropped["reason"] == MOVED_DOWN).all()


def test_before_vector_is_the_trained_vector_with_the_refit_and_a_fold_in_without_it():
    ratings = synth_ratings(40, 30, 800, seed=5)
    refit = train_svd(ratings, (1, 5))
    np.testing.assert_allclose(before_vector(refit, 3).pu, refit.user_vector(3).pu, atol=1e-12)
    sgd = train_svd(ratings, (1, 5), ModelConfig(refit_users=False))
    items, values = sgd.interactions.history(3)
    expected = sgd.fold_in(sgd.interactions.item_ids[items], values)
    np.testing.assert_allclose(before_vector(sgd, 3).pu, expected.pu)
    assert not np.allclose(sgd.user_vector(3).pu, expected.pu)  # why it must not be mixed


def test_editing_back_to_the_trained_list_gives_the_trained_recommendations(model):
    vector = model.user_vector(0)
    ids = model.interactions.item_ids[vector.items]
    before = pd.DataFrame({"item_id": ids, "rating": vector.ratings})
    lowered = before.assign(rating=np.where(before.index == 0, 1.0, before["rating"]))
    change = compare_ratings(before, lowered, known_items(model))
    assert change.changed == [str(ids[0])] and change.edited
    edited = model.fold_in(change.item_ids, change.ratings)
    original = recommend_for_vector(model, vector, 5)
    after = compare_rankings(full_ranking(model, vector, "u"), full_ranking(model, edited, "u"), 5)
    ranks = dict(zip(full_ranking(model, vector, "u")["item_id"], range(1, 10_000), strict=False))
    assert all(ranks[i] == r for i, r in zip(after.top["item_id"], after.top["rank_before"],
                                             strict=True))  # fmt: skip
    same = compare_ratings(before, before)
    refolded = model.fold_in(same.item_ids, same.ratings)
    pd.testing.assert_frame_equal(recommend_for_vector(model, refolded, 5), original)
