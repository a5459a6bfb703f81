r"""RMSE per item group: the window's errors on a group's items, paired per user.

For an item group :math:`g` (a column of an item grouping's membership table; an item may
belong to several groups), user :math:`u` contributes the summed squared errors of the
clipped predictions on their used window pairs of :math:`g`'s items under each version,
:math:`a^A_{u,g} = \sum_{i \in g} (\hat r^A_{ui} - r_{ui})^2` and :math:`a^B_{u,g}`, and
their number :math:`n_{u,g}` (``engine.compare.measures``: the same pairs for A and B).
The group's RMSE under version :math:`V` is the ratio of sums over its raters,
:math:`\sqrt{\sum_u a^V_{u,g} / \sum_u n_{u,g}}` (range ``[0, high - low]``, lower is
better), the difference is B - A, and the user is the unit of the paired bootstrap and
of the sign-flip test (``engine.compare.paired``), as for user groups.

The raters of :math:`g` (users with :math:`n_{u,g} > 0`) are the group's ``n_users``:
fewer than ``min_group_size`` is "insufficient data". The groups of one item grouping
are one Holm family (``engine.compare.rows.holm_family``). Rows are named
``metric = "RMSE"``, ``grouping = "item <grouping>"`` (``item_grouping_name``), so an
item grouping never shares a name, or a Holm family, with a user grouping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.audit.config import AuditConfig
from engine.compare.rows import group_rows, holm_family


def item_grouping_name(grouping: str) -> str:
    """``"genre" -> "item genre"``; a name starting with "item " is kept."""
    return grouping if grouping.startswith("item ") else f"item {grouping}"


def item_group_errors(
    used: pd.DataFrame, membership: pd.DataFrame
) -> dict[str, tuple[pd.Series, pd.Series, pd.Series]]:
    """Per item group: ``(se_a, se_b, n_pairs)`` of each of its raters (index ``user_id``).

    ``used``: ``WindowPairs.used`` (``user_id, item_id, rating, prediction_a,
    prediction_b``); ``membership``: boolean items x groups (index ``item_id``). A group
    no window pair reaches is left out.
    """
    se_a = (used["prediction_a"].to_numpy(float) - used["rating"].to_numpy(float)) ** 2
    se_b = (used["prediction_b"].to_numpy(float) - used["rating"].to_numpy(float)) ** 2
    member = membership.reindex(used["item_id"].to_numpy()).fillna(False).to_numpy(bool)
    users = used["user_id"].to_numpy()
    out = {}
    for column, group in enumerate(membership.columns):
        chosen = member[:, column]
        if not chosen.any():
            continue
        frame = pd.DataFrame({"user_id": users[chosen], "se_a": se_a[chosen],
                              "se_b": se_b[chosen], "n": 1.0})  # fmt: skip
        sums = frame.groupby("user_id", sort=True)[["se_a", "se_b", "n"]].sum()
        sums.index = sums.index.astype(object)
        out[str(group)] = (sums["se_a"], sums["se_b"], sums["n"])
    return out


def item_rmse_rows(
    used: pd.DataFrame, item_groupings: dict[str, pd.DataFrame], config: AuditConfig
) -> list[dict[str, Any]]:
    """RMSE rows per item group of every item grouping (module docstring)."""
    rows: list[dict[str, Any]] = []
    for grouping, membership in item_groupings.items():
        name = item_grouping_name(grouping)
        block: list[dict[str, Any]] = []
        for group, parts in item_group_errors(used, membership).items():
            labels = pd.Series(group, index=parts[2].index)
            block += group_rows("RMSE", name, labels, parts, np.sqrt, "lower", config,
                                parts[2], seed_key=f"\x00{group}")  # fmt: skip
        rows += holm_family(block, config.alpha)
    return rows
