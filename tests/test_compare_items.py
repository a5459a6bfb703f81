"""RMSE per item group in a version comparison (``engine.compare.items``), known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.audit import AuditConfig
from engine.compare import compare_models
from engine.compare.items import item_group_errors, item_grouping_name
from tests.test_compare import ITEMS, USERS, _model, _row

CONFIG = AuditConfig(k=2, min_group_size=5, permutations=999, bootstrap=200, seed=4)
GENRES = pd.DataFrame(
    {"genres": [("other",), ("drama",), ("drama",), ("comedy",), ("comedy", "drama"),
                ("rare",)]},
    index=pd.Index(ITEMS, name="item_id"),
)  # fmt: skip


@pytest.fixture(scope="module")
def toy():
    """A predicts 3 everywhere; B predicts 4 for i1 and 2.5 for i4 (``3 + b_i``), 3 elsewhere.

    Window: all 40 users rate i1 and i4 with 4; user x00 also rates i2 with 5; users x00-x02
    rate i5 with 4. Squared errors: A 1 on every 4, 4 on x00's i2; B 0 on i1, 2.25 on i4,
    4 on i2, 1 on i5. i4 is drama and comedy (multi-valued: in both groups).
    """
    a = _model(np.zeros(len(USERS)), np.zeros(len(ITEMS)))
    b = _model(np.zeros(len(USERS)), [0, 1.0, 0, 0, -0.5, 0])
    rows = [(u, i, 4.0) for u in USERS for i in ("i1", "i4")]
    rows += [("x00", "i2", 5.0)] + [(u, "i5", 4.0) for u in USERS[:3]]
    window = pd.DataFrame(rows, columns=["user_id", "item_id", "rating"])
    return a, b, window


def test_item_group_rmse_is_the_ratio_of_sums_over_its_raters(toy):
    a, b, window = toy
    rows = compare_models(a, b, window, CONFIG, items=GENRES).rows
    name = item_grouping_name("genres")
    assert name == "item genres" and item_grouping_name("item popularity") == "item popularity"
    # drama: i1 (40 pairs), i2 (x00), i4 (40 pairs, also comedy): per-user sums then ratio
    drama = _row(rows, "RMSE", name, "drama")
    a_drama = np.sqrt((40 * 1 + 4 + 40 * 1) / 81)
    b_drama = np.sqrt((40 * 0 + 4 + 40 * 2.25) / 81)
    assert (drama["value_a"], drama["value_b"]) == pytest.approx((a_drama, b_drama))
    assert drama["difference"] == pytest.approx(b_drama - a_drama)
    assert (drama["n_users"], drama["n_pairs"]) == (40, 81)
    comedy = _row(rows, "RMSE", name, "comedy")  # i4 only: 1 -> 1.5
    assert (comedy["value_a"], comedy["value_b"], comedy["difference"]) == pytest.approx(
        (1.0, 1.5, 0.5)
    )
    assert comedy["verdict"] == "worsened" and comedy["better"] == "lower"
    # every user's i4 error rises by the same 1.25: only the 2 all-same flips reach |d|
    assert comedy["p_value"] == pytest.approx(1 / 1000) and comedy["p_is_bound"]
    assert comedy["ci_low"] == pytest.approx(0.5) and comedy["ci_high"] == pytest.approx(0.5)
    rare = _row(rows, "RMSE", name, "rare")  # 3 raters < min_group_size 5
    assert (rare["n_users"], rare["verdict"]) == (3, "insufficient data")
    assert np.isnan(rare["p_value"]) and np.isnan(rare["ci_low"])
    assert (rare["value_a"], rare["value_b"]) == pytest.approx((1.0, 1.0))
    # Holm within (RMSE, item genres): drama and comedy are tested, rare is not
    family = rows[(rows["metric"] == "RMSE") & (rows["grouping"] == name)]
    assert set(family["group"]) == {"drama", "comedy", "rare"}  # "other": no window pair
    tested = family[family["p_value"].notna()]
    assert len(tested) == 2
    # each user's drama error sum also rises by 0.25 (x00: 6 -> 6.25, the rest 2 -> 2.25):
    # both p-values sit at the floor 1/1000, so Holm over the 2 gives 2 x 1/1000 each
    assert tested["p_value"].tolist() == pytest.approx([1 / 1000] * 2)
    assert tested["p_adjusted"].tolist() == pytest.approx([2 / 1000] * 2)
    assert drama["verdict"] == "worsened"


def test_per_user_errors_of_each_item_group(toy):
    a, b, window = toy
    from engine.compare.measures import pair_window

    used = pair_window(a, b, window, threshold=4.0).used
    membership = pd.DataFrame({"drama": [False, True, True, False, True, False],
                               "comedy": [False, False, False, True, True, False],
                               "none": False}, index=pd.Index(ITEMS, dtype=object))  # fmt: skip
    errors = item_group_errors(used, membership)
    assert set(errors) == {"drama", "comedy"}
    se_a, se_b, n = errors["drama"]
    assert (se_a["x00"], se_b["x00"], n["x00"]) == (6.0, 6.25, 3.0)  # 1+4+1, 0+4+2.25
    assert (se_a["y05"], se_b["y05"], n["y05"]) == (2.0, 2.25, 2.0)
    assert len(n) == 40


def test_a_model_compared_with_itself_changes_no_item_group(toy):
    a, _, window = toy
    rows = compare_models(a, a, window, CONFIG, items=GENRES).rows
    items = rows[rows["grouping"] == "item genres"]
    assert len(items) == 3
    assert (items["difference"] == 0).all()
    tested = items[items["verdict"] != "insufficient data"]
    assert len(tested) == 2 and (tested["verdict"] == "no significant change").all()
    assert (tested["p_value"] == 1.0).all()
    assert (rows.loc[rows["verdict"] != "insufficient data", "verdict"]
            == "no significant change").all()  # fmt: skip
