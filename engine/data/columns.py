"""Find which columns of a rating file hold the user, item, rating and timestamp.

Order of precedence: an explicit ``ColumnMapping``; then column names (exact
aliases after normalisation, e.g. ``User-ID`` -> ``userid``; then names that
contain ``rating``/``user``/``item``/``time``/``date``); then content: the
timestamp is a column of epoch-sized integers or ISO dates, the rating the
numeric column with the fewest distinct values, and the first two remaining
columns are user then item (the order of MovieLens and most exports).
"""

from __future__ import annotations

import pandas as pd

from engine.data.tables import normalise_name
from engine.data.types import ColumnMapping
from engine.errors import DataError

FIELDS: tuple[str, ...] = ("user", "item", "rating", "timestamp")
REQUIRED: tuple[str, ...] = ("user", "item", "rating")

ALIASES: dict[str, tuple[str, ...]] = {
    "user": (
        "user",
        "userid",
        "uid",
        "users",
        "customer",
        "customerid",
        "reader",
        "readerid",
        "member",
        "memberid",
        "visitor",
        "visitorid",
        "client",
        "clientid",
        "viewer",
        "account",
        "accountid",
        "reviewer",
        "reviewerid",
        "person",
        "personid",
    ),
    "item": (
        "item",
        "itemid",
        "iid",
        "movie",
        "movieid",
        "product",
        "productid",
        "asin",
        "isbn",
        "book",
        "bookid",
        "track",
        "trackid",
        "song",
        "songid",
        "artist",
        "artistid",
        "game",
        "gameid",
        "anime",
        "animeid",
        "recipe",
        "recipeid",
        "business",
        "businessid",
        "video",
        "videoid",
        "article",
        "articleid",
        "content",
        "contentid",
        "sku",
        "film",
        "filmid",
    ),
    "rating": (
        "rating",
        "ratings",
        "score",
        "stars",
        "star",
        "rate",
        "grade",
        "preference",
        "overall",
        "value",
    ),
    "timestamp": (
        "timestamp",
        "time",
        "ts",
        "date",
        "datetime",
        "unixtime",
        "created",
        "createdat",
        "ratedat",
        "reviewtime",
        "unixreviewtime",
    ),
}
_CONTAINS: dict[str, tuple[str, ...]] = {
    "rating": ("rating", "score"),
    "timestamp": ("time", "date"),
    "user": ("user", "customer"),
    "item": ("item", "movie", "product", "book"),
}
KNOWN_NAMES: set[str] = {a for names in ALIASES.values() for a in names}
#: Column names that mark a first row as the header of an attribute table.
ATTRIBUTE_NAMES: set[str] = KNOWN_NAMES | {
    "id",
    "gender",
    "sex",
    "age",
    "ageband",
    "agegroup",
    "occupation",
    "job",
    "region",
    "country",
    "city",
    "state",
    "zip",
    "zipcode",
    "postcode",
    "language",
    "title",
    "name",
    "genres",
    "genre",
    "categories",
    "category",
    "year",
    "releaseyear",
    "releasedate",
    "provider",
    "studio",
    "producer",
    "publisher",
    "author",
    "brand",
    "label",
    "director",
}
_SAMPLE = 2000
_EPOCH_1990 = 631_152_000


def _numeric_share(values: pd.Series) -> float:
    values = values.dropna().astype(str).str.strip()
    values = values[values != ""]
    if values.empty:
        return 0.0
    return float(pd.to_numeric(values, errors="coerce").notna().mean())


def _looks_like_timestamp(values: pd.Series) -> bool:
    values = values.dropna().astype(str).str.strip()
    values = values[values != ""]
    if values.empty:
        return False
    numbers = pd.to_numeric(values, errors="coerce")
    if numbers.notna().mean() >= 0.9:
        return bool((numbers.dropna() >= _EPOCH_1990).mean() >= 0.9)
    if values.str.len().min() < 8:
        return False
    dates = pd.to_datetime(values, errors="coerce", format="ISO8601", utc=True)
    return bool(dates.notna().mean() >= 0.9)


def detect_columns(
    frame: pd.DataFrame, mapping: ColumnMapping | None, file_name: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Map each canonical field to a column of ``frame``.

    Returns
    -------
    columns, detection
        ``{field: column}`` for the fields found (timestamp may be absent) and
        ``{field: "given" | "name" | "content"}`` saying how each was found.

    Raises
    ------
    DataError
        A mapped column does not exist, or user, item or rating cannot be found.
    """
    available = [str(c) for c in frame.columns]
    columns: dict[str, str] = {}
    detection: dict[str, str] = {}
    for fld, col in (mapping.given() if mapping else {}).items():
        if col not in available:
            raise DataError(
                f"{file_name} has no column {col!r} for the {fld} field: choose one of "
                f"{', '.join(available)}."
            )
        columns[fld], detection[fld] = col, "given"

    def free() -> list[str]:
        return [c for c in available if c not in columns.values()]

    for fld in ("rating", "timestamp", "user", "item"):
        if fld in columns:
            continue
        exact = [c for c in free() if normalise_name(c) in ALIASES[fld]]
        partial = [c for c in free() if any(w in normalise_name(c) for w in _CONTAINS[fld])]
        if exact or partial:
            columns[fld], detection[fld] = (exact or partial)[0], "name"

    sample = frame.head(_SAMPLE)
    if "timestamp" not in columns:
        stamps = [c for c in free() if _looks_like_timestamp(sample[c])]
        if stamps and len(free()) >= 4 - len(columns.keys() & set(REQUIRED)):
            columns["timestamp"], detection["timestamp"] = stamps[-1], "content"
    if "rating" not in columns:
        numeric = [c for c in free() if _numeric_share(sample[c]) >= 0.5]
        if len(free()) >= 3 - len(columns.keys() & {"user", "item"}) and numeric:
            best = min(numeric, key=lambda c: (sample[c].nunique(), -available.index(c)))
            columns["rating"], detection["rating"] = best, "content"
    for fld in ("user", "item"):
        if fld not in columns and free():
            columns[fld], detection[fld] = free()[0], "content"

    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise DataError(
            f"{file_name} has no recognisable {' and '.join(missing)} column among "
            f"{', '.join(available)}: a rating file needs user, item and rating columns; "
            "name them (e.g. user_id, item_id, rating) or map them explicitly."
        )
    return columns, detection


def find_id_column(frame: pd.DataFrame, kind: str) -> str:
    """Return the id column of an attribute table: a ``kind`` alias or ``id``, else the first."""
    for col in frame.columns:
        name = normalise_name(col)
        if name in ALIASES[kind] or name == "id":
            return str(col)
    return str(frame.columns[0])
