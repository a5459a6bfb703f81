r"""Roll the exact history split up by item attribute ("your 140 comedies add +0.12").

The contributions :math:`c_j` of the exact split (``engine.explain.reading``) add up to
the history effect :math:`\sum_j c_j`; grouping them by an attribute of the rated item
keeps that sum exactly, so a reader can act on groups rather than on single ratings:

.. math::

    C_g = \sum_j s_{jg}\, c_j, \qquad \sum_g s_{jg} = 1 \text{ for every } j
    \;\Rightarrow\; \sum_g C_g = \sum_j c_j.

Conventions:

- ``genre`` (from the ``genres`` column): an item in :math:`m \ge 1` genres gives each
  genre the share :math:`s_{jg} = 1/m` of its contribution (split equally; ``ratings``
  counts the item once in each of its genres, ``weighted_ratings`` adds up the shares).
- ``decade`` (from ``year``): ``1990s`` for 1990-1999.
- any other categorical item column (``provider``, ...): the value itself.
- an item without the attribute (no attribute table, not in it, missing value, no genre)
  goes to the ``UNKNOWN`` bucket, so the rollup still sums to the history effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

#: The bucket of items without the attribute.
UNKNOWN = "unknown/none"
#: Derived attributes and the item column each comes from.
DERIVED = {"genre": "genres", "decade": "year"}
ROLLUP_COLUMNS = ["value", "ratings", "weighted_ratings", "contribution"]


def rollup_attributes(items: pd.DataFrame | None) -> list[str]:
    """Return the attributes ``attribute_rollup`` can group by for this item table.

    ``genre`` when there is a ``genres`` column, ``decade`` when there is ``year``, then
    every other non-numeric column except ``title``.
    """
    if items is None:
        return []
    names = [name for name, column in DERIVED.items() if column in items.columns]
    skip = {"title", *DERIVED.values()}
    return names + [
        str(c) for c in items.columns if c not in skip and not is_numeric_dtype(items[c])
    ]


def _values(items: pd.DataFrame | None, item_ids: pd.Index, attribute: str) -> list[tuple]:
    """Per rated item, the tuple of its attribute values (empty = unknown)."""
    column = DERIVED.get(attribute, attribute)
    if items is None or column not in items.columns:
        return [()] * len(item_ids)
    raw = items[column].reindex(item_ids)
    out: list[tuple] = []
    for value in raw:
        if attribute == "genre":
            genres = value if isinstance(value, (tuple, list)) else ()
            out.append(tuple(dict.fromkeys(str(g) for g in genres if str(g).strip())))
        elif value is None or pd.isna(value):
            out.append(())
        elif attribute == "decade":
            out.append((f"{int(value) // 10 * 10}s",))
        else:
            out.append((str(value),))
    return out


def attribute_rollup(
    item_ids: np.ndarray | list[str],
    contributions: np.ndarray,
    items: pd.DataFrame | None,
    attribute: str,
) -> pd.DataFrame:
    """Sum the contributions of the rated items by ``attribute`` (see the module docstring).

    Parameters
    ----------
    item_ids, contributions
        The rated items and their exact-split contributions, aligned.
    items
        The item attribute table (``RatingData.items``, indexed by item id) or ``None``.
    attribute
        One of ``rollup_attributes(items)`` (any other name puts every item in
        ``UNKNOWN``).

    Returns
    -------
    pandas.DataFrame
        Columns ``value`` (str; ``UNKNOWN`` for items without it), ``ratings`` (rated items
        in the group), ``weighted_ratings`` (sum of their shares) and ``contribution``
        (:math:`C_g`), by decreasing ``|contribution|``. ``contribution`` sums to
        ``contributions.sum()`` (up to rounding, ~1e-15).
    """
    contributions = np.asarray(contributions, float)
    ids = pd.Index(np.asarray(item_ids).astype(str))
    rows: dict[str, list[float]] = {}
    for values, c in zip(_values(items, ids, attribute), contributions, strict=True):
        values = values or (UNKNOWN,)
        share = 1.0 / len(values)
        for value in values:
            row = rows.setdefault(value, [0, 0.0, 0.0])
            row[0] += 1
            row[1] += share
            row[2] += share * c
    frame = pd.DataFrame(
        [(value, int(n), w, c) for value, (n, w, c) in rows.items()], columns=ROLLUP_COLUMNS
    )
    order = np.argsort(-frame["contribution"].abs().to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def describe_group(row: pd.Series, attribute: str) -> str:
    """E.g. ``your 140 ratings with genre Comedy add +0.120``."""
    n = int(row["ratings"])
    what = "without a " + attribute if row["value"] == UNKNOWN else f"{attribute} {row['value']}"
    return f"your {n:,} rating{'s' * (n != 1)} with {what} add {row['contribution']:+.3f}"
