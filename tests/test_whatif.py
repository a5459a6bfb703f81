"""What-if edits: the change summary is exact and the folded-in list is what was entered."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.model.svd import train_svd
from engine.recommend import recommend_for_vector
from engine.whatif import compare_ratings, with_previous_rank
from tests.conftest import synth_ratings

BEFORE = pd.DataFrame({"item_id": ["a", "b", "c"], "rating": [4.0, 2.0, 5.0]})


def test_unedited_table_is_not_an_edit():
    change = compare_ratings(BEFORE, BEFORE.copy())
    assert not change.edited and change.describe().startswith("What-if: 0 added, 0 changed")


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
    assert change.describe() == (
        "What-if: 1 added, 1 changed, 1 removed (3 ratings). Entered twice, last row used: d. "
        "3 rows without an item or a rating were ignored."
    )


def test_editing_back_to_the_trained_list_gives_the_trained_recommendations():
    model = train_svd(synth_ratings(60, 40, 1500, seed=3), (1, 5))
    vector = model.user_vector(0)
    ids = model.interactions.item_ids[vector.items]
    before = pd.DataFrame({"item_id": ids, "rating": vector.ratings})
    lowered = before.assign(rating=np.where(before.index == 0, 1.0, before["rating"]))
    change = compare_ratings(before, lowered)
    assert change.changed == [str(ids[0])] and change.edited
    edited = model.fold_in(change.item_ids, change.ratings)
    original = recommend_for_vector(model, vector, 5)
    after = with_previous_rank(recommend_for_vector(model, edited, 5), original)
    kept = after.dropna(subset=["rank_before"])
    assert set(kept["item_id"]) <= set(original["item_id"])
    ranks = dict(zip(original["item_id"], original["rank"], strict=True))
    assert all(ranks[i] == r for i, r in zip(kept["item_id"], kept["rank_before"], strict=True))
    same = compare_ratings(before, before)
    refolded = model.fold_in(same.item_ids, same.ratings)
    pd.testing.assert_frame_equal(recommend_for_vector(model, refolded, 5), original)
