"""Find which columns of an external file hold the user, item, rank/score or prediction.

Order of precedence, as for ratings (``engine.data.columns``): an explicit mapping; then
column names (exact aliases after ``normalise_name``; user and item use the rating file's
aliases); then content: of the remaining numeric columns, a lists file's whole-number
column whose smallest value per user is 1 is the rank and another numeric one the score;
a predictions file's first numeric column is the prediction; user and item are then the
first two remaining columns (the order of most exports).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.data.columns import ALIASES
from engine.data.tables import normalise_name
from engine.data.validate import ids_as_strings, ratings_as_numbers
from engine.errors import DataError
from engine.external.types import OutputKind

#: Aliases of the fields of external files (user and item: ``engine.data.columns.ALIASES``).
EXTERNAL_ALIASES: dict[str, tuple[str, ...]] = {
    "user": ALIASES["user"],
    "item": ALIASES["item"],
    "rank": ("rank", "position", "pos", "rnk", "ranking", "order", "slot"),
    "score": ("score", "scores", "relevance", "weight", "est", "estimate", "prediction",
              "predicted", "pred", "value", "probability", "prob"),
    "prediction": ("prediction", "predicted", "pred", "predictedrating", "est", "estimate",
                   "score", "rating", "ratinghat", "yhat"),
    "system": ("system", "model", "algorithm", "algo", "recommender", "variant", "method",
               "systemname", "modelname"),
}  # fmt: skip
#: The fields each kind of file may hold, in the order they are matched by name.
FIELDS: dict[str, tuple[str, ...]] = {
    "lists": ("user", "item", "rank", "score", "system"),
    "predictions": ("user", "item", "prediction", "system"),
}
KNOWN_NAMES: set[str] = {a for names in EXTERNAL_ALIASES.values() for a in names}
_SAMPLE = 5000


def _numeric(values: pd.Series) -> bool:
    numbers = ratings_as_numbers(values.head(_SAMPLE))
    filled = values.head(_SAMPLE).astype("str").str.strip().ne("").sum()
    return bool(filled) and numbers.notna().sum() >= 0.9 * filled


def _looks_like_rank(frame: pd.DataFrame, column: str, user: str | None) -> bool:
    numbers = ratings_as_numbers(frame[column].head(_SAMPLE))
    finite = numbers.dropna()
    if finite.empty or (finite != np.floor(finite)).any() or finite.min() < 1:
        return False
    if user is None:
        return bool(finite.min() == 1)
    users = ids_as_strings(frame[user].head(_SAMPLE))
    return bool((numbers.groupby(users.to_numpy()).min() == 1).all())


def detect_external_columns(
    frame: pd.DataFrame,
    kind: OutputKind,
    mapping: dict[str, str] | None,
    file_name: str,
    notes: list[str],
) -> tuple[dict[str, str], dict[str, str]]:
    """Map each field of ``FIELDS[kind]`` to a column of ``frame``.

    Returns ``({field: column}, {field: "given" | "name" | "content"})``; ``system`` is
    absent when the file has none, and so is ``rank`` or ``score`` (not both) for lists.

    Raises
    ------
    DataError
        A mapped column does not exist, an unknown field is mapped, or a required field
        (user, item and rank or score; user, item and prediction) cannot be found.
    """
    available = [str(c) for c in frame.columns]
    fields = FIELDS[kind]
    columns: dict[str, str] = {}
    detection: dict[str, str] = {}
    for fld, col in (mapping or {}).items():
        if fld not in fields:
            raise DataError(
                f"The column mapping of {file_name} names the field {fld!r}: a {kind} file has "
                f"the fields {', '.join(fields)}."
            )
        if col not in available:
            raise DataError(
                f"{file_name} has no column {col!r} for the {fld} field: choose one of "
                f"{', '.join(available)}."
            )
        columns[fld], detection[fld] = col, "given"

    def free() -> list[str]:
        return [c for c in available if c not in columns.values()]

    for fld in fields:
        if fld in columns:
            continue
        exact = [c for c in free() if normalise_name(c) in EXTERNAL_ALIASES[fld]]
        if exact:
            columns[fld], detection[fld] = exact[0], "name"
    numeric = [c for c in free() if _numeric(frame[c])]
    guessed = []
    if kind == "lists" and "rank" not in columns and "score" not in columns and numeric:
        user = columns.get("user") or (free()[0] if free() else None)
        ranks = [c for c in numeric if c != user and _looks_like_rank(frame, c, user)]
        if ranks:
            columns["rank"], detection["rank"] = ranks[0], "content"
            guessed.append(f"rank = {ranks[0]} (whole numbers starting at 1 for each user)")
        else:
            last = [c for c in numeric if c != user][-1:]
            if last:
                columns["score"], detection["score"] = last[0], "content"
                guessed.append(f"score = {last[0]} (the last numeric column)")
    if kind == "predictions" and "prediction" not in columns and len(free()) >= 3 and numeric:
        columns["prediction"], detection["prediction"] = numeric[-1], "content"
        guessed.append(f"prediction = {numeric[-1]} (the last numeric column)")
    for fld in ("user", "item"):
        if fld not in columns and free():
            columns[fld], detection[fld] = free()[0], "content"
            guessed.append(f"{fld} = {columns[fld]} (the order user, item)")
    needed = ["user", "item"] + (["prediction"] if kind == "predictions" else [])
    missing = [f for f in needed if f not in columns]
    if kind == "lists" and "rank" not in columns and "score" not in columns:
        missing.append("rank or score")
    if missing:
        shape = ("user, item and rank (or score)" if kind == "lists"
                 else "user, item and prediction")  # fmt: skip
        raise DataError(
            f"{file_name} has no recognisable {' and '.join(missing)} column among "
            f"{', '.join(available)}: a {kind} file needs {shape} columns; name them (e.g. "
            f"user_id, item_id, {'rank' if kind == 'lists' else 'prediction'}) or map them "
            "explicitly."
        )
    if guessed:
        notes.append(
            f"Columns of {file_name} were guessed from their content: {'; '.join(guessed)}. "
            "Map them explicitly if a guess is wrong."
        )
    return columns, detection
