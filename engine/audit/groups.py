"""Who belongs to which group: user groupings (one label per user), item groupings (membership).

User groupings:

* any user attribute; numeric ages become bands ``AGE_BANDS`` (MovieLens 1M's bands);
  other numeric attributes are split at their quartiles; missing values form their own
  ``"unknown"`` group; beyond ``max_groups`` values, the smallest are merged into ``"other"``;
* ``activity``: the 5% of users with the most ratings (``active``) vs the rest (Li et al.,
  "User-oriented fairness in recommendation", WWW 2021);
* ``popularity propensity``: users ranked by the mean popularity of the items they rated,
  bottom 20% ``niche``, middle 60% ``diverse``, top 20% ``blockbuster`` (Abdollahpouri et al.,
  "The unfairness of popularity bias in recommendation", 2019).

Item groupings are boolean membership tables (items x groups), so multi-valued attributes
such as genres are explicit: an item belongs to every genre it has. Derived:
``popularity``: the short head (most-rated items holding 80% of ratings) vs the long tail.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.data.profile import short_head_size

UNKNOWN = "unknown"
OTHER = "other"
AGE_BANDS = [(0, 18, "Under 18"), (18, 25, "18-24"), (25, 35, "25-34"), (35, 45, "35-44"),
             (45, 50, "45-49"), (50, 56, "50-55"), (56, 200, "56+")]  # fmt: skip
ACTIVITY = "activity"
PROPENSITY = "popularity propensity"
ITEM_POPULARITY = "item popularity"
SHORT_HEAD, LONG_TAIL = "short head", "long tail"


def cap_groups(labels: pd.Series, max_groups: int) -> tuple[pd.Series, list[str]]:
    """Merge all but the ``max_groups - 1`` largest values into ``"other"``; return notes."""
    counts = labels.value_counts()
    if len(counts) <= max_groups:
        return labels, []
    keep = set(counts.index[: max_groups - 1])
    merged = labels.where(labels.isin(keep), OTHER)
    return merged, [
        f"{labels.name}: {len(counts)} values; the {max_groups - 1} largest are shown, the other "
        f"{len(counts) - max_groups + 1} ({int(counts.iloc[max_groups - 1 :].sum()):,} users or "
        "items) are merged into 'other'."
    ]


def _banded(values: pd.Series, is_age: bool) -> pd.Series:
    numbers = values.astype("float64")
    if is_age:
        bins = [low for low, _, _ in AGE_BANDS] + [AGE_BANDS[-1][1]]
        labels = [label for _, _, label in AGE_BANDS]
        out = pd.cut(numbers, bins=bins, right=False, labels=labels).astype("object")
    else:
        edges = np.unique(np.nanquantile(numbers, [0, 0.25, 0.5, 0.75, 1]))
        if len(edges) < 3:
            return numbers.map(lambda v: UNKNOWN if pd.isna(v) else f"{v:g}")
        out = pd.cut(numbers, bins=edges, include_lowest=True).astype("str").astype("object")
    return out.where(numbers.notna(), UNKNOWN)


def _decades(values: pd.Series) -> pd.Series:
    decade = values.astype("float64") // 10 * 10
    return decade.map(lambda v: UNKNOWN if pd.isna(v) else f"{int(v)}s")


def _chosen(
    table: pd.DataFrame,
    attributes: list[str] | None,
    kind: str,
    notes: list[str],
    exclude: tuple[str, ...] = (),
) -> list[str]:
    """Return the attribute columns to group by: all but ``exclude``, or the chosen ones."""
    if attributes is None:
        return [c for c in table.columns if c not in exclude]
    missing = [a for a in attributes if a not in table.columns]
    notes += [f"{kind.capitalize()} attribute {a!r} does not exist; choose from "
              f"{', '.join(map(str, table.columns))}." for a in missing]  # fmt: skip
    return [a for a in attributes if a in table.columns]


def _attribute_labels(
    values: pd.Series,
    name: str,
    kind: str,
    auto: bool,
    max_groups: int,
    notes: list[str],
) -> pd.Series | None:
    """Return one group label per user or item, or ``None`` (with a note) without groups.

    Numbers are banded (user ages in ``AGE_BANDS``, other user numbers in quartiles, item
    numbers such as years by decade); missing values are ``unknown``; groups beyond
    ``max_groups`` are capped.
    """
    distinct = values.nunique(dropna=True)
    if auto and not 2 <= distinct <= 1000:
        return None
    if distinct < 2:
        notes.append(f"{kind.capitalize()} attribute {name!r} has a single value; there is "
                     "nothing to compare.")  # fmt: skip
        return None
    is_age = kind == "user" and name.lower().replace("_", "") == "age"
    if pd.api.types.is_numeric_dtype(values) and (is_age or distinct > 12):
        labels = _banded(values, is_age) if kind == "user" else _decades(values)
    else:
        labels = values.astype("object").where(values.notna(), UNKNOWN).astype(str)
    labels.name = name
    missing = int(values.isna().sum())
    if missing:
        notes.append(f"{name}: {missing:,} {kind}s have no value and form the group 'unknown'.")
    labels, capped = cap_groups(labels, max_groups)
    notes += capped
    return labels


def user_attribute_groups(
    users: pd.DataFrame | None,
    user_ids: np.ndarray,
    attributes: list[str] | None,
    max_groups: int,
) -> tuple[dict[str, pd.Series], list[str]]:
    """One label Series (index ``user_id``) per chosen user attribute, and notes.

    ``attributes=None`` takes every attribute column with 2 to 1,000 distinct values.
    """
    notes: list[str] = []
    if users is None:
        if attributes:
            notes.append("No user attribute table was loaded; only derived groups are audited.")
        return {}, notes
    out = {}
    for name in _chosen(users, attributes, "user", notes):
        values = users[name].reindex(pd.Index(user_ids, dtype="str"))
        labels = _attribute_labels(values, name, "user", attributes is None, max_groups, notes)
        if labels is not None:
            out[name] = labels
    return out, notes


def activity_groups(profile_sizes: pd.Series, share: float = 0.05) -> pd.Series:
    """``active`` for the ``share`` of users with most ratings (ties by id), else ``inactive``."""
    ranked = profile_sizes.sort_index().sort_values(ascending=False, kind="stable")
    n_active = max(1, round(share * len(ranked)))
    labels = pd.Series("inactive", index=ranked.index, name=ACTIVITY, dtype=object)
    labels.iloc[:n_active] = "active"
    return labels.sort_index()


def propensity_groups(mean_popularity: pd.Series) -> pd.Series:
    """``niche`` (bottom 20%), ``diverse`` (middle 60%), ``blockbuster`` (top 20%) by rank."""
    ranked = mean_popularity.sort_index().sort_values(kind="stable")
    n = len(ranked)
    labels = np.full(n, "diverse", dtype=object)
    tail = round(0.2 * n)
    labels[:tail] = "niche"
    labels[n - tail :] = "blockbuster"
    return pd.Series(labels, index=ranked.index, name=PROPENSITY).sort_index()


def item_popularity_groups(counts: pd.Series) -> pd.DataFrame:
    """Membership table ``short head`` / ``long tail`` (short head holds 80% of ratings)."""
    head = short_head_size(counts)
    ranked = counts.sort_index().sort_values(ascending=False, kind="stable")
    in_head = pd.Series(False, index=ranked.index)
    in_head.iloc[:head] = True
    in_head = in_head.sort_index()
    return pd.DataFrame({SHORT_HEAD: in_head, LONG_TAIL: ~in_head})


def item_attribute_groups(
    items: pd.DataFrame | None,
    item_ids: np.ndarray,
    attributes: list[str] | None,
    max_groups: int,
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Membership tables (index ``item_id``, one boolean column per group) per item attribute.

    ``genres`` (tuples) give one column per genre; numeric ``year`` becomes decades; other
    categorical columns one column per value. ``attributes=None`` takes ``genres``,
    ``year`` and categorical columns with 2 to 1,000 values (titles excluded).
    """
    notes: list[str] = []
    if items is None:
        return {}, notes
    table = items.reindex(pd.Index(item_ids, dtype="str"))
    out = {}
    for name in _chosen(table, attributes, "item", notes, exclude=("title",)):
        values = table[name]
        if name == "genres":
            genres = values.map(lambda g: g if isinstance(g, tuple) else ())
            names = sorted({g for gs in genres for g in gs})
            frame = pd.DataFrame({g: genres.map(lambda gs, g=g: g in gs) for g in names})
            frame[UNKNOWN] = genres.map(len) == 0
            frame = frame.loc[:, frame.any()]
        else:
            labels = _attribute_labels(values, name, "item", attributes is None, max_groups, notes)
            if labels is None:
                continue
            frame = pd.get_dummies(labels).astype(bool)
        if frame.shape[1] > max_groups:
            sizes = frame.sum().sort_values(ascending=False)
            kept = list(sizes.index[: max_groups - 1])
            notes.append(
                f"{name}: {frame.shape[1]} groups; the {max_groups - 1} largest are shown, the "
                "rest merged into 'other'."
            )
            frame = frame[kept].assign(**{OTHER: frame.drop(columns=kept).any(axis=1)})
        frame.index.name = "item_id"
        out[name] = frame
    return out, notes
