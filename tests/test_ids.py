"""``engine.ids.object_ids``: the same id strings as ``object`` columns, one object per id."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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
    assert object_ids(plain) is plain  # already objects: not copied


def test_a_frame_whose_ids_are_objects_shares_their_arrays():
    frame = object_ids(pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["a", "a"]}))
    again = object_ids(frame)
    assert np.shares_memory(again["user_id"].to_numpy(), frame["user_id"].to_numpy())


@pytest.mark.parametrize("storage", ["one chunk", "three chunks", "object", "category"])
def test_arrow_strings_are_the_values_in_one_array(storage):
    import pyarrow as pa

    from engine.ids import arrow_strings

    texts = ["u1", "ü2", "", "日本", "u1"]
    if storage == "three chunks":  # as a concatenation leaves a str column
        chunks = pa.chunked_array([texts[:2], texts[2:3], texts[3:]], pa.large_string())
        values = pd.Series(pd.arrays.ArrowStringArray(chunks))
    else:
        dtype = {"one chunk": "str", "object": object, "category": "category"}[storage]
        values = pd.Series(texts, dtype=dtype)
    for large, kind in ((False, pa.string()), (True, pa.large_string())):
        out = arrow_strings(values, large=large)
        assert isinstance(out, pa.Array) and out.type == kind and out.to_pylist() == texts
    assert arrow_strings(pd.Index(texts)).to_pylist() == texts
