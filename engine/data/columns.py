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
from engine.data.timestamps import timestamp_problem
from engine.data.types import ColumnMapping
from engine.data.validate import COMMON_SCALES
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
_PAIR_SAMPLE = 50_000


def _numeric_share(values: pd.Series) -> float:
    values = values.dropna().astype(str).str.strip()
    values = values[values != ""]
    if values.empty:
        return 0.0
    return float(pd.to_numeric(values, errors="coerce").notna().mean())


def _on_a_rating_scale(values: pd.Series) -> bool:
    """At least 99% of the numbers lie on one of ``COMMON_SCALES``, in whole or half steps."""
    numbers = pd.to_numeric(values.dropna().astype(str).str.strip(), errors="coerce").dropna()
    if numbers.empty or not (numbers * 2 == (numbers * 2).round()).all():
        return False
    return any(numbers.between(lo, hi).mean() >= 0.99 for lo, hi in COMMON_SCALES)


def _repeated_pairs(frame: pd.DataFrame, user: str, item: str) -> float:
    """Share of rows whose (user, item) pair occurred earlier, in [0, 1]."""
    pairs = frame[[user, item]].astype("str")
    return float(pairs.duplicated().mean()) if len(pairs) else 0.0


def _rating_by_content(
    frame: pd.DataFrame, columns: dict[str, str], free: list[str], file_name: str
) -> tuple[str, str]:
    """Pick the rating column among unnamed numeric columns; return ``(column, why)``.

    Candidates are the numeric columns, narrowed to those on a common rating scale when
    any is. With several, each reading (this column the rating, the first two others user
    and item) is scored by its share of repeated (user, item) pairs: ids make pairs nearly
    unique, a rating taken for an id repeats them. The best reading must beat the next by
    at least ``max(0.02, its own share)``; otherwise the readings are equally plausible.

    Raises
    ------
    DataError
        Two readings are equally plausible.
    """
    sample = frame.head(_SAMPLE)
    numeric = [c for c in free if _numeric_share(sample[c]) >= 0.5]
    on_scale = [c for c in numeric if _on_a_rating_scale(sample[c])]
    pool = on_scale or numeric
    if len(pool) == 1:
        kind = (
            "the only numeric column on a rating scale" if on_scale else "the only numeric column"
        )
        return pool[0], kind
    rows = frame.head(_PAIR_SAMPLE)
    scores: dict[str, float] = {}
    for candidate in pool:
        others = [c for c in free if c != candidate]
        user = columns.get("user") or others.pop(0)
        item = columns.get("item") or others.pop(0)
        scores[candidate] = _repeated_pairs(rows, user, item)
    ranked = sorted(pool, key=lambda c: (scores[c], pool.index(c)))
    best, second = ranked[0], ranked[1]
    gap = scores[second] - scores[best]
    if gap < max(0.02, scores[best]):
        raise DataError(
            f"{file_name} has no recognisable column names, and columns {best} and {second} "
            f"could each be the rating (both hold numbers on a rating scale; the readings leave "
            f"{scores[best]:.1%} and {scores[second]:.1%} repeated user-item pairs): add a "
            "header row (user,item,rating) or map the columns (CLI: --columns "
            "user=...,item=...,rating=...)."
        )
    why = (
        f"it leaves {scores[best]:.1%} repeated user-item pairs, against {scores[second]:.1%} "
        f"if {second} were the rating"
    )
    return best, why


def detect_columns(
    frame: pd.DataFrame,
    mapping: ColumnMapping | None,
    file_name: str,
    notes: list[str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Map each canonical field to a column of ``frame``.

    Parameters
    ----------
    notes
        Sentences for the load report are appended here: every guess made from content
        (with how sure it is) and every named column passed over.

    Returns
    -------
    columns, detection
        ``{field: column}`` for the fields found (timestamp may be absent) and
        ``{field: "given" | "name" | "content"}`` saying how each was found.

    Raises
    ------
    DataError
        A mapped column does not exist or is mapped to two fields, user, item or rating
        cannot be found, or two readings of an unnamed table are equally plausible.
    """
    notes = notes if notes is not None else []
    available = [str(c) for c in frame.columns]
    columns: dict[str, str] = {}
    detection: dict[str, str] = {}
    given = mapping.given() if mapping else {}
    for fld, col in given.items():
        if col not in available:
            raise DataError(
                f"{file_name} has no column {col!r} for the {fld} field: choose one of "
                f"{', '.join(available)}."
            )
        twice = [f for f, c in given.items() if c == col and f != fld]
        if twice:
            raise DataError(
                f"The column mapping for {file_name} gives column {col!r} to both {fld} and "
                f"{twice[0]}: each field needs its own column."
            )
        columns[fld], detection[fld] = col, "given"

    def free() -> list[str]:
        return [c for c in available if c not in columns.values()]

    sample = frame.head(_SAMPLE)
    for fld in ("rating", "timestamp", "user", "item"):
        if fld in columns:
            continue
        exact = [c for c in free() if normalise_name(c) in ALIASES[fld]]
        partial = [c for c in free() if any(w in normalise_name(c) for w in _CONTAINS[fld])]
        for col in exact + [c for c in partial if c not in exact]:
            # an exact name needs half its values to be times; a partial name, nine in ten
            share = 0.5 if col in exact else 0.9
            problem = timestamp_problem(sample[col], share) if fld == "timestamp" else None
            if problem:
                notes.append(
                    f"Column {col} of {file_name} was not used as the timestamp: {problem} "
                    "(map it explicitly if it is one)."
                )
                continue
            columns[fld], detection[fld] = col, "name"
            if fld == "timestamp" and col not in exact:
                notes.append(f"Timestamps of {file_name} were taken from column {col}.")
            break

    if "timestamp" not in columns:
        stamps = [c for c in free() if timestamp_problem(sample[c]) is None]
        if stamps and len(free()) >= 4 - len(columns.keys() & set(REQUIRED)):
            columns["timestamp"], detection["timestamp"] = stamps[-1], "content"
            notes.append(
                f"Column {stamps[-1]} of {file_name} was taken as the timestamp: its values "
                "are dates or epoch times."
            )
    guessed: dict[str, str] = {}
    room = len(free()) >= 3 - len(columns.keys() & {"user", "item"})
    if "rating" not in columns and room and any(_numeric_share(sample[c]) >= 0.5 for c in free()):
        columns["rating"], guessed["rating"] = _rating_by_content(frame, columns, free(), file_name)
        detection["rating"] = "content"
    for fld in ("user", "item"):
        if fld not in columns and free():
            columns[fld], detection[fld] = free()[0], "content"
            guessed[fld] = "the order user, item, rating"

    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise DataError(
            f"{file_name} has no recognisable {' and '.join(missing)} column among "
            f"{', '.join(available)}: a rating file needs user, item and rating columns; "
            "name them (e.g. user_id, item_id, rating) or map them explicitly."
        )
    if guessed:
        parts = [f"{fld} = {columns[fld]} ({why})" for fld, why in guessed.items()]
        notes.append(
            f"Columns of {file_name} were guessed from their content: {'; '.join(parts)}. "
            "Map them explicitly if a guess is wrong."
        )
    return columns, detection


def find_id_column(frame: pd.DataFrame, kind: str) -> str:
    """Return the id column of an attribute table: a ``kind`` alias or ``id``, else the first."""
    for col in frame.columns:
        name = normalise_name(col)
        if name in ALIASES[kind] or name == "id":
            return str(col)
    return str(frame.columns[0])
