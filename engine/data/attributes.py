"""User and item attribute tables: typing, multi-valued genres, years, id coverage.

Conventions
-----------
* The table is indexed by the id as a string (same rule as ratings: exact text).
* A column whose non-empty values are at least 95% numbers becomes numeric
  (``Int64`` when whole), unless a value has a leading zero (codes such as zip
  codes stay text); every other column is text.
* Items: ``genres`` is a tuple of strings, split on ``|`` (else ``;``, else ``,``);
  ``"(no genres listed)"`` gives an empty tuple. A list-valued column (Parquet or JSON
  lists, e.g. ``["Action", "Comedy"]``) is multi-valued as it stands: a tuple of strings,
  for ``genres`` and for any other item column. A list-valued *user* column cannot split
  users into groups and is left out with a warning. ``year`` comes from a year
  column, else a release-date column, else a ``(1995)`` suffix of the title.
* Repeated ids keep their first row; the count is reported, never dropped silently.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from engine.data.columns import find_id_column
from engine.data.tables import normalise_name
from engine.data.validate import ids_as_strings
from engine.errors import DataError

TITLE_NAMES = ("title", "name", "movietitle", "itemname", "booktitle", "producttitle")
GENRE_NAMES = ("genres", "genre", "categories", "category")
YEAR_NAMES = ("year", "releaseyear", "yearofpublication")
DATE_NAMES = ("releasedate", "released", "date")
NO_GENRES = {"(no genres listed)", ""}
_TITLE_YEAR = re.compile(r"\((\d{4})\)\s*$")
_YEAR = re.compile(r"(\d{4})")


def _typed(values: pd.Series) -> pd.Series:
    """Numeric when at least 95% of the non-empty values are numbers, else stripped text."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        numbers = values
    else:
        text = values.astype("str").str.strip().mask(values.isna())
        text = text.mask(text == "")
        present = text.dropna()
        numbers = pd.to_numeric(present, errors="coerce")
        leading_zero = present.str.match(r"^0\d").any()
        if present.empty or numbers.notna().mean() < 0.95 or leading_zero:
            return text.astype("str")
        numbers = pd.to_numeric(text, errors="coerce")
    finite = numbers.dropna()
    if ((finite % 1) == 0).all():
        return numbers.astype("Int64")
    return numbers.astype("float64")


def is_list_valued(values: pd.Series) -> bool:
    """Return True when the column's non-missing cells are lists, tuples or arrays."""
    present = values.dropna()
    return bool(len(present)) and bool(
        present.head(1000).map(lambda v: isinstance(v, (list, tuple, np.ndarray))).all()
    )


def as_tuples(values: pd.Series) -> pd.Series:
    """Turn list-valued cells into tuples of stripped, non-empty strings (missing -> ``()``)."""

    def convert(cell: object) -> tuple[str, ...]:
        if not isinstance(cell, (list, tuple, np.ndarray)):
            return ()
        items = (str(v).strip() for v in cell if v is not None and not pd.isna(v))
        return tuple(v for v in items if v and v not in NO_GENRES)

    return values.map(convert).astype(object)


def split_genres(values: pd.Series) -> pd.Series:
    """Split a multi-valued genre column into tuples of stripped, non-empty strings.

    List-valued cells (Parquet or JSON lists) are taken as they are.
    """
    if is_list_valued(values):
        return as_tuples(values)
    text = values.astype("str").fillna("")
    sample = " ".join(text.head(1000))
    sep = "|" if "|" in sample else ";" if ";" in sample else ","

    def split(cell: str) -> tuple[str, ...]:
        if cell.strip() in NO_GENRES or cell == "nan":
            return ()
        return tuple(g.strip() for g in cell.split(sep) if g.strip())

    return text.map(split).astype(object)


def year_from(values: pd.Series, pattern: re.Pattern[str]) -> pd.Series:
    """Extract a four-digit year with ``pattern`` (years outside 1800-2100 become NA)."""
    years = pd.to_numeric(values.astype("str").str.extract(pattern, expand=False), errors="coerce")
    return years.where(years.between(1800, 2100)).astype("Int64")


def _dedupe(frame: pd.DataFrame, ids: pd.Series, name: str, warnings: list[str]) -> pd.DataFrame:
    missing = ids.isna()
    if missing.any():
        warnings.append(f"{int(missing.sum()):,} rows of {name} have no id and were skipped.")
    frame, ids = frame[~missing], ids[~missing]
    repeated = ids.duplicated()
    if repeated.any():
        warnings.append(
            f"{int(repeated.sum()):,} rows of {name} repeat an id already seen; the first "
            "row of each id was kept."
        )
    frame = frame[~repeated.to_numpy()].copy()
    frame.index = pd.Index(ids[~repeated].to_numpy(), dtype="str", name=frame.index.name)
    return frame


def user_attributes(
    frame: pd.DataFrame, name: str, warnings: list[str], id_column: str | None = None
) -> pd.DataFrame:
    """Return the user table indexed by ``user_id``, every other column typed."""
    id_column = id_column or find_id_column(frame, "user")
    ids = ids_as_strings(frame[id_column])
    table = frame.drop(columns=[id_column])
    lists = [c for c in table.columns if is_list_valued(table[c])]
    if lists:
        warnings.append(
            f"Columns {', '.join(map(str, lists))} of {name} hold lists (several values per "
            "user); user groups need one value per user, so they were left out."
        )
        table = table.drop(columns=lists)
    table = pd.DataFrame({str(c): _typed(table[c]) for c in table.columns}, index=frame.index)
    table = _dedupe(table, ids, name, warnings)
    table.index.name = "user_id"
    return table


def item_attributes(
    frame: pd.DataFrame, name: str, warnings: list[str], id_column: str | None = None
) -> pd.DataFrame:
    """Return the item table indexed by ``item_id`` with ``title``, ``genres`` and ``year``.

    The known columns are found by name (see module docstring); all others are typed
    and kept.
    """
    id_column = id_column or find_id_column(frame, "item")
    ids = ids_as_strings(frame[id_column])
    names = {normalise_name(c): str(c) for c in frame.columns if c != id_column}

    def pick(candidates: tuple[str, ...]) -> str | None:
        return next((names[c] for c in candidates if c in names), None)

    title, genres, year, date = (
        pick(TITLE_NAMES),
        pick(GENRE_NAMES),
        pick(YEAR_NAMES),
        pick(DATE_NAMES),
    )
    out: dict[str, pd.Series] = {}
    if title:
        out["title"] = frame[title].astype("str").str.strip()
    if genres:
        out["genres"] = split_genres(frame[genres])
    source = year or date
    if source:
        out["year"] = year_from(frame[source], _YEAR)
        given = frame[source].astype("str").str.strip().mask(frame[source].isna(), "")
        lost = (given != "") & (given != "nan") & out["year"].isna()
        if lost.any():
            examples = ", ".join(repr(v) for v in dict.fromkeys(given[lost].head(20)))
            warnings.append(
                f"{int(lost.sum()):,} values of column {source} in {name} hold no year between "
                f"1800 and 2100 (e.g. {examples[:120]}) and were left missing."
            )
    elif title:
        out["year"] = year_from(frame[title], _TITLE_YEAR)
    used = {id_column, title, genres, year, date}
    for col in frame.columns:
        if col not in used:
            values = frame[col]
            out[str(col)] = as_tuples(values) if is_list_valued(values) else _typed(values)
    table = _dedupe(pd.DataFrame(out, index=frame.index), ids, name, warnings)
    table.index.name = "item_id"
    return table


def attribute_coverage(
    rated: pd.Series, table: pd.DataFrame, kind: str, name: str
) -> dict[str, int]:
    """Count ids in the ratings without attributes and attribute ids without ratings.

    Raises
    ------
    DataError
        Not one id of the attribute table matches the ratings: the wrong id column
        or the wrong file.
    """
    rated_ids = pd.Index(rated.unique())
    overlap = rated_ids.isin(table.index)
    if not overlap.any():
        examples = ", ".join(map(repr, table.index[:3]))
        rated_examples = ", ".join(map(repr, rated_ids[:3]))
        raise DataError(
            f"None of the {len(table):,} ids in {name} (e.g. {examples}) matches a {kind} id in "
            f"the ratings (e.g. {rated_examples}): check that the first column, or the column "
            f"named {kind}_id, holds the same ids as the ratings file."
        )
    return {
        f"{kind}s_without_attributes": int((~overlap).sum()),
        f"attribute_{kind}s_without_ratings": int((~table.index.isin(rated_ids)).sum()),
    }
