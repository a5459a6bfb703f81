"""``WindowCounts``: the per-window data table from chunks equals the whole frame's, by hand.

Three windows (0, 1, 2); ``of = -1`` is a rating without a time. Users a-g; items x, y, z:

    a: x w0 (5), y w1 (3)         -> new in w0
    b: x w1 (4), z w1 (2)         -> new in w1
    c: y w0 (1), z untimed (4)    -> never new (a rating without a time: first window -1)
    d: z w2 (3)                   -> new in w2
    e, f, g: x w0 (5)             -> new in w0

Per window: ratings 5, 3, 1; active users 5 {a, c, e, f, g}, 2 {a, b}, 1 {d}; new users
4, 1, 1; new items: x and y in w0, z never (an untimed rating) -> 2, 0, 0; rating means
21 / 5 = 4.2, 3, 3. Item counts w0 {x 4, y 1}: Gini ((2*1 - 3) * 1 + (2*2 - 3) * 4) /
(2 * 5) = 0.3, short head 1 of 2 items (x holds 4 of 5 ratings, 80%); w1 {x, y, z 1 each}:
Gini 0, short head 3 of 3; w2 {z 1}: 0, 1 of 1. Rating values: w0 5 -> 0.8, 1 -> 0.2.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.monitor_data import WindowCounts, data_table, distribution

USERS = ["a", "a", "b", "b", "c", "c", "d", "e", "f", "g"]
ITEMS = ["x", "y", "x", "z", "y", "z", "z", "x", "x", "x"]
VALUES = [5.0, 3.0, 4.0, 2.0, 1.0, 4.0, 3.0, 5.0, 5.0, 5.0]
OF = np.array([0, 1, 1, 1, 0, -1, 2, 0, 0, 0])
WINDOWS = pd.DataFrame({"window": [0, 1, 2], "label": ["w0", "w1", "w2"]})


def _codes(ids: list[str]) -> np.ndarray:
    return pd.factorize(pd.Series(ids), sort=True)[0]


def test_the_table_is_the_hand_computed_one():
    ratings = pd.DataFrame({"user_id": USERS, "item_id": ITEMS, "rating": VALUES})
    table = data_table(ratings, WINDOWS, OF)
    assert table["n_ratings"].tolist() == [5, 3, 1]
    assert table["n_users"].tolist() == [5, 2, 1]
    assert table["new_users"].tolist() == [4, 1, 1]
    assert table["new_items"].tolist() == [2, 0, 0]
    assert table["rating_mean"].tolist() == pytest.approx([4.2, 3.0, 3.0])
    assert table["gini"].tolist() == pytest.approx([0.3, 0.0, 0.0])
    assert table["short_head_share"].tolist() == pytest.approx([0.5, 1.0, 1.0])
    shares = distribution(ratings, WINDOWS, OF).set_index(["window", "rating"])["share"]
    assert shares[(0, 5.0)] == pytest.approx(0.8) and shares[(0, 1.0)] == pytest.approx(0.2)
    assert shares[(0, 4.0)] == 0.0 and shares[(2, 3.0)] == 1.0
    assert shares[(1, 4.0)] == pytest.approx(1 / 3)
    assert len(shares) == 3 * 5  # every window with ratings, every value rated with a time


def test_chunks_of_whole_users_give_the_whole_frames_counts():
    """Users a, b in one chunk and c-g in another, as a kept run's parts are read."""
    users, items = _codes(USERS), _codes(ITEMS)
    whole = WindowCounts(3, 3)  # 3 windows, 3 items
    whole.add(users, items, VALUES, OF)
    chunked = WindowCounts(3, 3)
    for rows in (slice(0, 4), slice(4, 10)):
        chunked.add(users[rows], items[rows], np.array(VALUES)[rows], OF[rows])
    pd.testing.assert_frame_equal(chunked.table(WINDOWS), whole.table(WINDOWS))
    pd.testing.assert_frame_equal(chunked.distribution(WINDOWS), whole.distribution(WINDOWS))
