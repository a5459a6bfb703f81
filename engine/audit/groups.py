"""Who belongs to which group: user groupings (one label per user), item groupings (membership).

User groupings:

* any user attribute; numeric ages become bands ``AGE_BANDS`` (MovieLens 1M's bands);
  other numeric attributes with more than 12 values are split at the quartiles of their
  finite values; ``inf`` and ``-inf`` form their own groups ``"inf"`` / ``"-inf"``;
  missing values form their own ``"unknown"`` group; beyond ``max_groups`` values, the
  smallest are merged into ``"other"``; unless chosen by name, an attribute with more than
  1,000 values, or a text one with more values than half the users, is left out with a
  note (an identifier such as a zip code, whose groups would all be too small to test);
* ``activity``: the 5% of users with the most ratings (``active``) vs the rest (Li et al.,
  "User-oriented fairness in recommendation", WWW 2021);
* ``popularity propensity``: users ranked by the mean popularity of the items they rated,
  bottom 20% ``niche``, middle 60% ``diverse``, top 20% ``blockbuster`` (Abdollahpouri et al.,
  "The unfairness of popularity bias in recommendation", 2019).

Item groupings are boolean membership tables (items x groups), so multi-valued attributes
such as genres are explicit: an item belongs to every genre it has. Derived:
``item popularity``: the short head (most-rated items holding 80% of ratings) vs the long
tail.

Nothing is dropped silently: an attribute without two values, one with more than 1,000
values (unless chosen by name), a missing table, values merged into ``"other"``, non-finite
numbers and an attribute renamed because a derived grouping (or another attribute) has its
name (``grouping_name``: ``"activity (user attribute)"``) each get a note.
"""

from __future__ import annotations

from collections.abc import Collection

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
#: Names of the derived groupings; an attribute of the same name is renamed (``grouping_name``).
DERIVED = (ACTIVITY, PROPENSITY, ITEM_POPULARITY)
#: The derived groupings in words, for a reader of the report (the module docstring's).
DERIVED_DEFINITIONS: dict[str, str] = {
    ACTIVITY: "active: the 5% of users with the most ratings; inactive: the rest (Li et al., "
    "WWW 2021)",
    PROPENSITY: "users ranked by the mean popularity (ratings per item) of the items they "
    "rated: niche the bottom 20%, diverse the middle 60%, blockbuster the top 20% "
    "(Abdollahpouri et al., 2019)",
    ITEM_POPULARITY: "short head: the most-rated items that together hold 80% of the ratings; "
    "long tail: the other items",
}
#: Numeric attributes with more distinct values than this are banded.
MAX_RAW_NUMBERS = 12
#: Attributes not chosen by name are left out (with a note) beyond this many values.
MAX_AUTO_VALUES = 1000
#: Text attributes not chosen by name are left out (with a note) when they have more
#: distinct values than this share of the users (items) with a value: nearly one value per
#: user, like an identifier (MovieLens 100K's zip_code: 795 values for 943 users), so
#: every group but the merged "other" would be too small to test.
MAX_AUTO_VALUE_SHARE = 0.5


def merged_name(kept: Collection[object]) -> str:
    """Return the name of the group the smaller values merge into: ``"other"``, unless kept.

    A kept value ``"other"`` (MovieLens 100K's occupations have one) keeps its own group;
    the merged values then form ``"other (merged)"`` (or a name further suffixed), so the
    two are never mixed.
    """
    taken = {str(value) for value in kept}
    name = OTHER
    while name in taken:
        name = f"{name} (merged)"
    return name


def merged_note(name: str) -> str:
    """`` The data's own 'other' is a group apart.``, where the merged group had to be renamed.

    Said next to ``merged_name``'s group, so a reader does not take "other" and "other
    (merged)" for one group shown twice; empty where the merged group is ``"other"``.
    """
    if name == OTHER:
        return ""
    return f" The data's own {name.removesuffix(' (merged)')!r} is a group apart."


#: A note on merged values names them all up to this many, else this many and a count.
NAMED_VALUES = 8


def named_values(values: Collection[object]) -> str:
    """Return ``values`` as a list a reader can check.

    "a, b and c"; beyond ``NAMED_VALUES``, the first ``NAMED_VALUES`` and "and N more".
    """
    names = [str(v) for v in values]
    if len(names) <= NAMED_VALUES:
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
    return f"{', '.join(names[:NAMED_VALUES])} and {len(names) - NAMED_VALUES:,} more"


def cap_groups(
    labels: pd.Series, max_groups: int, kind: str = "user"
) -> tuple[pd.Series, list[str]]:
    """Merge all but the ``max_groups - 1`` largest values into one group; return notes.

    The group is ``merged_name`` of the values kept (``"other"`` unless a kept value is);
    the note names the merged values, largest first, and counts their ``kind``s.
    """
    counts = labels.value_counts()
    if len(counts) <= max_groups:
        return labels, []
    keep = set(counts.index[: max_groups - 1])
    name = merged_name(keep)
    merged = labels.where(labels.isin(keep), name)
    rest = counts.iloc[max_groups - 1 :]
    return merged, [
        f"{labels.name}: {len(counts):,} values; the {max_groups - 1} largest are shown, the "
        f"other {len(rest):,} ({named_values(rest.index)}; {int(rest.sum()):,} {kind}s) are merged "
        f"into '{name}'.{merged_note(name)}"
    ]


def grouping_name(column: str, kind: str, reserved: Collection[str] = DERIVED) -> str:
    """Return the name under which attribute ``column`` is audited.

    The column's own name, unless ``reserved`` holds it (by default ``DERIVED``, the
    derived groupings' names): then ``"<column> (<kind> attribute)"``, suffixed again
    until it is free, so an attribute never replaces a derived grouping or another
    attribute of the same name.
    """
    name = column
    while name in reserved:
        name = f"{name} ({kind} attribute)"
    return name


def attribute_names(
    columns: Collection[str], kind: str, reserved: Collection[str] = ()
) -> dict[str, str]:
    """Map each attribute column to its grouping name (``grouping_name``).

    A column is renamed when ``reserved`` (or another column) holds its name, so no two
    groupings share a name and no attribute hides a derived grouping.
    """
    return {
        c: grouping_name(c, kind, {*reserved, *(other for other in columns if other != c)})
        for c in columns
    }


def _quartile_bands(numbers: pd.Series) -> pd.Series:
    """Quartile intervals of finite ``numbers``; each value itself with under 3 edges."""
    edges = np.unique(np.quantile(numbers.to_numpy(float), [0, 0.25, 0.5, 0.75, 1]))
    if len(edges) < 3:
        return numbers.map(lambda v: f"{v:g}").astype(object)
    return pd.cut(numbers, bins=edges, include_lowest=True).astype("str").astype(object)


def _age_bands(numbers: pd.Series) -> pd.Series:
    """``AGE_BANDS`` labels of finite ``numbers``; ``unknown`` outside ``[0, 200)``."""
    bins = [low for low, _, _ in AGE_BANDS] + [AGE_BANDS[-1][1]]
    labels = [label for _, _, label in AGE_BANDS]
    out = pd.cut(numbers, bins=bins, right=False, labels=labels).astype(object)
    return out.where(out.notna(), UNKNOWN)


def _decades(numbers: pd.Series) -> pd.Series:
    """``"1990s"`` style labels of finite ``numbers``."""
    return (numbers // 10 * 10).map(lambda v: f"{int(v)}s").astype(object)


def _numeric_labels(
    values: pd.Series, name: str, kind: str, is_age: bool, notes: list[str]
) -> pd.Series:
    """Band numeric attribute values, computed on the finite values only.

    User ages fall in ``AGE_BANDS``, other user numbers in quartiles, item numbers (years)
    in decades. Missing values are ``unknown``; ``inf`` and ``-inf`` form their own groups ``"inf"``
    and ``"-inf"`` (a note says how many); ages outside ``[0, 200)`` are ``unknown`` (noted).
    """
    numbers = values.astype("float64")
    finite = np.isfinite(numbers)
    labels = pd.Series(UNKNOWN, index=values.index, dtype=object, name=name)
    if finite.any():
        if kind != "user":
            banded = _decades(numbers[finite])
        elif is_age:
            banded = _age_bands(numbers[finite])
            outside = int((banded == UNKNOWN).sum())
            if outside:
                notes.append(
                    f"{name}: {outside:,} {kind}s have an age outside 0-199 and join the "
                    f"group '{UNKNOWN}'."
                )
        else:
            banded = _quartile_bands(numbers[finite])
        labels[finite] = banded
    labels[numbers == np.inf] = "inf"
    labels[numbers == -np.inf] = "-inf"
    _note_non_finite(numbers, name, kind, int(finite.sum()), True, notes)
    return labels


def _note_non_finite(
    numbers: pd.Series, name: str, kind: str, n_finite: int, banded: bool, notes: list[str]
) -> None:
    counts = {"inf": int((numbers == np.inf).sum()), "-inf": int((numbers == -np.inf).sum())}
    counts = {label: n for label, n in counts.items() if n}
    if not counts:
        return
    total = sum(counts.values())
    groups = " and ".join(f"'{label}'" for label in counts)
    detail = ", ".join(f"{n:,} {label}" for label, n in counts.items())
    bands = f"; the bands use the {n_finite:,} finite values" if banded else ""
    notes.append(
        f"{name}: {total:,} {kind}s have a non-finite value ({detail}); they form the "
        f"group{'s' if len(counts) > 1 else ''} {groups}{bands}."
    )


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
    column: str | None = None,
) -> pd.Series | None:
    """Return one group label per user or item, or ``None`` (with a note) without groups.

    Numbers with more than ``MAX_RAW_NUMBERS`` values (and user ages) are banded (see
    ``_numeric_labels``); missing values are ``unknown``; groups beyond ``max_groups``
    are capped. Left out, each with a note: an attribute without any value, with one
    value, or (``auto``, attributes not chosen by name) with more than ``MAX_AUTO_VALUES``.
    """
    column = name if column is None else column
    what = f"{kind.capitalize()} attribute {column!r}"
    distinct = int(values.nunique(dropna=True))
    missing = int(values.isna().sum())
    if distinct == 0:
        notes.append(f"{what} has no value for any {kind}: nothing to compare, left out.")
        return None
    if distinct == 1:
        only = values.dropna().iloc[0]
        scope = (
            f"all {kind}s" if not missing else f"all {kind}s with a value ({missing:,} have none)"
        )
        notes.append(f"{what} has one value ({only}) for {scope}: nothing to compare, left out.")
        return None
    is_age = kind == "user" and column.lower().replace("_", "") == "age"
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    valued = len(values) - missing
    if auto and distinct > MAX_AUTO_VALUES:
        notes.append(
            f"{what} has {distinct:,} distinct values (more than {MAX_AUTO_VALUES:,}, like an "
            f"identifier): left out; choose it by name to audit its {max_groups - 1} largest "
            "values (numbers in bands)."
        )
        return None
    if auto and not numeric and distinct > MAX_AUTO_VALUE_SHARE * valued:
        notes.append(
            f"{what} has {distinct:,} distinct values for {valued:,} {kind}s (more than "
            f"{MAX_AUTO_VALUE_SHARE:.0%}, like an identifier: its groups would be too small to "
            f"test): left out; choose it by name to audit its {max_groups - 1} largest values."
        )
        return None
    if numeric and (is_age or distinct > MAX_RAW_NUMBERS):
        labels = _numeric_labels(values, name, kind, is_age, notes)
    else:
        labels = values.astype("object").where(values.notna(), UNKNOWN).astype(str)
        if numeric:
            _note_non_finite(values.astype("float64"), name, kind, 0, False, notes)
    labels.name = name
    if missing:
        many = f"{missing:,} {kind}s have" if missing != 1 else f"1 {kind} has"
        forms = "form" if missing != 1 else "forms"
        notes.append(f"{name}: {many} no value and {forms} the group 'unknown'.")
    labels, capped = cap_groups(labels, max_groups, kind)
    notes += capped
    return labels


def user_attribute_groups(
    users: pd.DataFrame | None,
    user_ids: np.ndarray,
    attributes: list[str] | None,
    max_groups: int,
    reserved: Collection[str] = (),
) -> tuple[dict[str, pd.Series], list[str]]:
    """One label Series (index ``user_id``) per chosen user attribute, and notes.

    ``attributes=None`` takes every attribute column with 2 to 1,000 distinct values;
    every attribute left out gets a note. The result is keyed by grouping name: the
    column's, or ``grouping_name(column, "user", reserved)`` when ``reserved`` holds it
    (with a note).
    """
    notes: list[str] = []
    if users is None:
        if attributes:
            notes.append("No user attribute table was loaded; only derived groups are audited.")
        return {}, notes
    out = {}
    names = attribute_names(list(users.columns), "user", reserved)
    for column in _chosen(users, attributes, "user", notes):
        name = names[column]
        values = users[column].reindex(pd.Index(user_ids, dtype="str"))
        labels = _attribute_labels(
            values, name, "user", attributes is None, max_groups, notes, column
        )
        if labels is not None:
            _note_renamed(column, name, "User", notes)
            out[name] = labels
    return out, notes


def _note_renamed(column: str, name: str, kind: str, notes: list[str]) -> None:
    if name != column:
        clash = "a derived grouping" if column in DERIVED else "another attribute or grouping"
        notes.append(
            f"{kind} attribute {column!r} is audited as {name!r}: {clash} has the name "
            f"{column!r}, and both are kept."
        )


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
    reserved: Collection[str] = (),
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Membership tables (index ``item_id``, one boolean column per group) per item attribute.

    ``genres`` and any other multi-valued (tuple) column give one column per value;
    numeric ``year`` becomes decades; other categorical columns one column per value.
    ``attributes=None`` takes ``genres``, ``year`` and categorical columns with 2 to 1,000
    values (titles excluded). Every attribute left out gets a note; names in ``reserved``
    are renamed as in
    ``user_attribute_groups``.
    """
    notes: list[str] = []
    if items is None:
        if attributes:
            notes.append("No item attribute table was loaded; only item popularity is audited.")
        return {}, notes
    table = items.reindex(pd.Index(item_ids, dtype="str"))
    out = {}
    names = attribute_names(list(table.columns), "item", reserved)
    for column in _chosen(table, attributes, "item", notes, exclude=("title",)):
        name = names[column]
        values = table[column]
        if column == "genres" or is_multi_valued(values):
            frame = _membership(values, column, notes)
            if frame is None:
                continue
        else:
            labels = _attribute_labels(
                values, name, "item", attributes is None, max_groups, notes, column
            )
            if labels is None:
                continue
            frame = pd.get_dummies(labels).astype(bool)
        if frame.shape[1] > max_groups:
            sizes = frame.sum().sort_values(ascending=False, kind="stable")  # ties: by name
            kept = list(sizes.index[: max_groups - 1])
            rest = merged_name(kept)
            others = sizes.index[max_groups - 1 :]
            notes.append(
                f"{name}: {frame.shape[1]} groups; the {max_groups - 1} largest are shown, the "
                f"other {len(others)} ({named_values(others)}) merged into '{rest}'."
                f"{merged_note(rest)}"
            )
            frame = frame[kept].assign(**{rest: frame.drop(columns=kept).any(axis=1)})
        frame.index.name = "item_id"
        _note_renamed(column, name, "Item", notes)
        out[name] = frame
    return out, notes


def is_multi_valued(values: pd.Series) -> bool:
    """Return True when every present value is a tuple (``genres``, list columns of Parquet)."""
    present = values.dropna()
    return bool(len(present)) and bool(present.map(lambda v: isinstance(v, tuple)).all())


def _membership(values: pd.Series, column: str, notes: list[str]) -> pd.DataFrame | None:
    """Return one column per value of a multi-valued attribute (and ``unknown`` for none).

    An item belongs to every value it has (an Action|Comedy film is in both groups).
    ``None``, with a note, when fewer than two groups remain.
    """
    genres = values.map(lambda g: g if isinstance(g, tuple) else ())
    names = sorted({g for gs in genres for g in gs})
    frame = pd.DataFrame(
        {g: genres.map(lambda gs, g=g: g in gs) for g in names}, index=values.index
    )
    frame[UNKNOWN] = genres.map(len) == 0
    frame = frame.loc[:, frame.any()]
    if not names:
        notes.append(f"Item attribute {column!r} has no value for any item: nothing to "
                     "compare, left out.")  # fmt: skip
        return None
    if frame.shape[1] < 2:
        notes.append(f"Item attribute {column!r} has one value ({names[0]}) for all items: "
                     "nothing to compare, left out.")  # fmt: skip
        return None
    return frame
