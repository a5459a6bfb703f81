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
