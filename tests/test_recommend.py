"""Top-N lists: unrated items only, deterministic ties, clipped and raw scores, fallbacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.model import ModelConfig, train_svd
from engine.recommend import (
    SOURCE_FALLBACK,
    SOURCE_MODEL,
    UnknownUserError,
    recommend,
    recommend_all,
    recommend_for_vector,
    top_k_indices,
)
from tests.conftest import synth_ratings

SCALE = (1.0, 5.0)


@pytest.fixture(scope="module")
def model():
    data = synth_ratings(80, 150, 3000, 11)
    return train_svd(data, SCALE, ModelConfig(n_factors=8, n_epochs=15))


def test_top_k_breaks_ties_by_lower_index_and_skips_excluded():
    scores = np.array([[1.0, 3.0, 3.0, -np.inf, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0]])
    assert top_k_indices(scores, 3).tolist() == [[1, 2, 4], [0, 1, 2]]
    assert top_k_indices(scores, 4).tolist() == [[1, 2, 4, 5], [0, 1, 2, 3]]
    assert top_k_indices(np.array([[-np.inf, 1.0, -np.inf]]), 2).tolist() == [[1, 0]]


def test_recommend_all_equals_a_brute_force_ranking(model):
    recs = recommend_all(model, 5)
    scores = model.score_block(np.arange(model.interactions.n_users))
    for user in (0, 13, 79):
        items, _ = model.interactions.history(user)
        candidates = [i for i in range(model.interactions.n_items) if i not in set(items)]
        ranked = sorted(
            candidates, key=lambda i: (-scores[user, i], model.interactions.item_ids[i])
        )
        expected = model.interactions.item_ids[ranked[:5]].tolist()
        mine = recs[recs["user_id"] == model.interactions.user_ids[user]]
        assert mine["item_id"].tolist() == expected
        assert mine["rank"].tolist() == [1, 2, 3, 4, 5]
        rated = set(model.interactions.item_ids[items])
        assert not rated & set(mine["item_id"])


def test_predictions_are_clipped_raw_values_are_not(model):
    recs = recommend_all(model, 20)
    assert recs["prediction"].between(*SCALE).all()
    assert (recs["prediction"] == recs["raw_prediction"].clip(*SCALE)).all()
    assert set(recs["source"]) == {SOURCE_MODEL}


def test_chunked_scoring_gives_the_same_lists(model):
    whole = recommend_all(model, 10)
    chunked = recommend_all(model, 10, max_block_bytes=model.interactions.n_items * 8 * 7)
    pd.testing.assert_frame_equal(whole, chunked)


def test_single_user_matches_all_users(model):
    user = model.interactions.user_ids[4]
    one = recommend(model, user, 10).reset_index(drop=True)
    everyone = recommend_all(model, 10)
    pd.testing.assert_frame_equal(one, everyone[everyone["user_id"] == user].reset_index(drop=True))


def test_unknown_user_is_a_clear_error(model):
    with pytest.raises(UnknownUserError, match="User 'ghost' is not in the training data"):
        recommend(model, "ghost")


def test_fold_in_user_without_usable_history_gets_labelled_popular_items(model):
    vector = model.fold_in(["not-an-item"], np.array([4.0]))
    recs = recommend_for_vector(model, vector, 5, user_id="new")
    counts = model.interactions.counts_per_item()
    top = model.interactions.item_ids[np.argsort(-counts, kind="stable")[:5]].tolist()
    assert recs["item_id"].tolist() == top
    assert set(recs["source"]) == {SOURCE_FALLBACK}
    assert (recs["user_id"] == "new").all()


def test_fold_in_recommendations_equal_the_trained_users(model):
    user = 9
    items, ratings = model.interactions.history(user)
    vector = model.fold_in(model.interactions.item_ids[items], ratings)
    folded = recommend_for_vector(model, vector, 10, user_id=model.interactions.user_ids[user])
    trained = recommend(model, model.interactions.user_ids[user], 10)
    assert folded["item_id"].tolist() == trained["item_id"].tolist()
    np.testing.assert_allclose(folded["raw_prediction"], trained["raw_prediction"], atol=1e-12)


def test_first_unrated_takes_each_users_first_unrated_items_of_the_order():
    """Hand-worked: order [2, 0, 3, 1] (item 4 not in it); k = 2."""
    from engine.model.interactions import Interactions
    from engine.recommend import first_unrated

    frame = pd.DataFrame(
        {"user_id": ["a", "a", "b", "b", "b", "b", "c"],
         "item_id": ["i2", "i3", "i0", "i1", "i2", "i3", "i4"], "rating": 1.0}
    )  # fmt: skip
    inter = Interactions.from_frame(frame, np.array(["i0", "i1", "i2", "i3", "i4"], object))
    top, valid = first_unrated(inter, np.array([0, 1, 2]), np.array([2, 0, 3, 1]), 2)
    assert top[valid].tolist() == [0, 1, 2, 0]  # a: 0 then 1; b: none left; c: 2 then 0
    assert valid.tolist() == [[True, True], [False, False], [True, True]]
    top, valid = first_unrated(inter, np.array([0]), np.array([2, 0, 3, 1]), 3)
    assert top[valid].tolist() == [0, 1] and valid.tolist() == [[True, True, False]]


def _dense_only(monkeypatch):
    """Make every ranking score all items (the path of models without one item order)."""
    import importlib

    for name in ("engine.evaluate", "engine.recommend"):
        monkeypatch.setattr(importlib.import_module(name), "ranking_order", lambda model: None)


@pytest.mark.parametrize("name", ["BaselineOnly", "Popularity"])
def test_one_order_rankings_equal_scoring_every_item(name, monkeypatch):
    """BaselineOnly and Popularity rank the items alike for every user, so their lists are
    each user's first unrated items of one order: equal to scoring every item, with rated
    and untrained items excluded, users with fewer unrated items than k, and ties."""
    from engine.evaluate import held_out_ranking
    from engine.model.comparators import train_baseline, train_popularity
    from engine.recommend import ranking_order

    ratings = synth_ratings(60, 40, 1500, 5)  # dense: some users rate nearly every item
    test = ratings.sample(frac=0.2, random_state=1)
    train = ratings.drop(test.index)
    catalogue = np.array(sorted({*ratings["item_id"], "zz-unrated-1", "zz-unrated-2"}), object)
    trainer = {"BaselineOnly": train_baseline, "Popularity": train_popularity}[name]
    fitted = trainer(train, SCALE, catalogue)
    assert ranking_order(fitted) is not None  # the one-order path is the one tested
    assert (fitted.interactions.counts_per_item() == 0).sum() >= 2  # untrained items
    k = 30  # more than some users have left
    fast = held_out_ranking(fitted, test, k, 4.0, 2**20)
    fast_lists = recommend_all(fitted, k)
    left = fitted.interactions.n_items - fitted.interactions.counts_per_user()
    assert (left < k).any()
    with monkeypatch.context() as patch:
        _dense_only(patch)
        dense = held_out_ranking(fitted, test, k, 4.0, 2**20)
        dense_lists = recommend_all(fitted, k)
    pd.testing.assert_frame_equal(fast[0], dense[0])
    pd.testing.assert_frame_equal(fast[1], dense[1])
    assert fast[2] == dense[2]
    pd.testing.assert_frame_equal(fast_lists, dense_lists)
    assert len(fast_lists) < k * fitted.interactions.n_users  # short lists were kept short


def test_knn_baseline_ranks_each_user_by_their_own_order():
    from engine.model.comparators import train_knn_baseline
    from engine.recommend import ranking_order

    ratings = synth_ratings(30, 25, 650, 2)
    assert ranking_order(train_knn_baseline(ratings, SCALE)) is None


def test_a_list_beyond_the_scale_says_how_many_are_clipped_and_what_the_vector_rests_on():
    from engine.recommend import clipping_note

    recs = pd.DataFrame({"prediction": [5.0, 5.0, 4.2], "raw_prediction": [6.28, 5.1, 4.2]})
    note = clipping_note(recs, (1.0, 5.0), 20)
    assert note.startswith("Of these 3 predictions, 2 above the top of the scale (raw up to "
                           "6.28) are shown clipped to the scale 1-5")  # fmt: skip
    assert "rests on 20 ratings" in note
    low = pd.DataFrame({"prediction": [1.0], "raw_prediction": [0.4]})
    assert "1 below its bottom (raw down to 0.40) is shown" in clipping_note(low, (1, 5), 1)
    assert clipping_note(recs.iloc[2:], (1.0, 5.0), 20) is None  # within the scale: no note
