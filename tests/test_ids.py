"""``engine.ids.object_ids``: the same id strings as ``object`` columns, one object per id."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.ids import object_ids


def test_id_columns_become_objects_shared_by_their_rows():
    frame = pd.DataFrame(
        {"user_id": pd.array(["u2", "u1", "u2", "u2"], dtype="str"),
         "item_id": pd.array(["i1", "i1", "i9", "i1"], dtype="str"), "rating": [1.0, 2, 3, 4]},
        index=[7, 5, 3, 1],
    )  # fmt: skip
    out = object_ids(frame)
    assert out.dtypes.to_dict() == {"user_id": object, "item_id": object, "rating": np.float64}
    pd.testing.assert_frame_equal(out.astype({"user_id": "str", "item_id": "str"}), frame)
    users = out["user_id"].to_numpy()
    assert users[0] is users[2] is users[3] and users[0] is not users[1]
    assert len({id(v) for v in out["item_id"]}) == 2  # one object per distinct id
    assert frame["user_id"].dtype == "str"  # the input is left as it was


def test_a_series_and_missing_values_keep_their_values():
    series = pd.Series(["a", None, "a"], dtype="str", index=[2, 1, 0], name="user_id")
    out = object_ids(series)
    assert out.dtype == object and out.index.tolist() == [2, 1, 0] and out.name == "user_id"
    assert out.iloc[0] == "a" and pd.isna(out.iloc[1])
    plain = object_ids(pd.Series(["b", "c", "b"], dtype="str"))
    assert plain.tolist() == ["b", "c", "b"] and plain.iloc[0] is plain.iloc[2]
