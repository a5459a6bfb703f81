"""Build the ``shap.Explanation`` of an additive view, including one with no terms.

``shap.Explanation`` indexes the first row of ``data`` on construction, so an empty
``data`` array raises ``IndexError`` inside shap. A view with no terms (a KNN estimate
with no positively similar neighbour, a user with no rating) is still a valid
explanation: the prediction is the base value. ``additive_view`` passes ``data=None``
in that case; ``view_to_dict`` and the charts accept it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # shap takes ~2 s to import: loaded where first used
    import shap


def additive_view(
    values: np.ndarray,
    base_value: float,
    data: np.ndarray | None,
    feature_names: Sequence[str],
) -> shap.Explanation:
    """Return ``shap.Explanation(values, base_values, data, feature_names)``.

    ``base_value + values.sum()`` is the prediction the view explains; with no terms it
    is ``base_value`` alone, and ``data`` is ``None``.
    """
    import shap

    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return shap.Explanation(
            values=np.zeros(0), base_values=float(base_value), data=None, feature_names=[]
        )
    return shap.Explanation(
        values=values,
        base_values=float(base_value),
        data=None if data is None else np.asarray(data, dtype=float),
        feature_names=list(feature_names),
    )
