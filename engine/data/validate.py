"""Turn raw rating rows into canonical ratings, counting every row rejected and why.

Each row gets the first reason that applies, in this order: ``missing_user_id``,
``missing_item_id``, ``non_numeric_rating``, ``out_of_scale``, ``duplicate``
(see ``REJECT_REASONS``). So ``kept + rejected == read`` always holds.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.data.tables import RawTable
from engine.data.timestamps import numbers_from_text, parse_timestamps, timestamp_notes
from engine.data.types import MAX_EXAMPLES, LoadOptions, RatingScale
from engine.errors import DataError

#: Common rating scales tried, smallest range first, when none is given.
COMMON_SCALES: tuple[tuple[float, float], ...] = (
    (1, 5),
    (0.5, 5),
    (0, 5),
    (1, 7),
    (1, 10),
    (0, 10),
    (0, 100),
)
#: Row-level reasons in the order they are checked (the first that applies is counted).
ROW_REASONS: tuple[str, ...] = (
    "missing_user_id",
    "missing_item_id",
    "non_numeric_rating",
    "out_of_scale",
    "duplicate",
)
_EPS = 1e-9
_DECIMAL_COMMA = r"[-+]?\d+,\d+"
_THOUSANDS = r"[-+]?\d{1,3}(,\d{3})+"
_DECIMAL_POINT = r"[-+]?\d*\.\d+"
#: Below this share of half-step ratings, the half-steps that set a 0.5 step are pointed out.
HALF_STEP_NOTICE_SHARE = 0.05


@dataclass
class ValidatedRatings:
    """Output of ``validate_ratings``: canonical ratings and the bookkeeping of the rest."""

    ratings: pd.DataFrame
    scale: RatingScale
    rejected: dict[str, int]
    examples: dict[str, list[dict[str, object]]]
    warnings: list[str]


def ids_as_strings(values: pd.Series) -> pd.Series:
    """Return ids as stripped strings, ``NA`` where empty.

    Text stays exactly as written (``"001"`` is not ``"1"``); integer columns
    become their decimal digits; float columns holding whole numbers lose ``.0``.
    """
    values = decoded(values)
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if (finite == np.floor(finite)).all():
            values = values.astype("Int64")
        else:  # whole numbers keep no ".0" even beside a 1.5: "1" matches "1" elsewhere
            return values.map(_float_id, na_action="ignore").astype("str").mask(values.isna())
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("Int64")
    out = (
        values.astype("str").str.strip()
        if not pd.api.types.is_string_dtype(values)
        else (values.str.strip())
    )
    return out.mask(values.isna() | (out == "") | out.isin(["<NA>", "nan"]))


def _float_id(value: float) -> str:
    return str(int(value)) if np.isfinite(value) and value == int(value) else repr(float(value))


def decoded(values: pd.Series) -> pd.Series:
    """Decode ``bytes`` cells (Parquet binary columns) as UTF-8, invalid bytes escaped."""
    if values.dtype != object or not values.map(lambda v: isinstance(v, bytes)).any():
        return values
    return values.map(
        lambda v: v.decode("utf-8", "backslashreplace") if isinstance(v, bytes) else v
    )


def ratings_as_numbers(values: pd.Series, decimal: str = ".") -> pd.Series:
    """Return ratings as float64, ``NaN`` where empty, non-numeric or infinite.

    With ``decimal=","`` a comma between digits is read as the decimal mark (``3,5`` is 3.5).
    """
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        text = decoded(values).astype("str").str.strip()
        if decimal == ",":
            text = text.str.replace(",", ".", regex=False)
        values = numbers_from_text(text)
    numbers = values.astype("float64")
    return numbers.where(np.isfinite(numbers))


def decimal_mark(values: pd.Series, given: str | None) -> tuple[str, int, int]:
    """Return ``(mark, n_comma, n_point)`` for a text rating column.

    ``n_comma`` and ``n_point`` count values written like ``3,5`` and ``3.5``. Unless a mark
    is ``given``, the comma is the mark when some values use it and none uses a point.
    """
    if pd.api.types.is_numeric_dtype(values):
        return given or ".", 0, 0
    text = decoded(values).astype("str").str.strip()
    commas = text.str.fullmatch(_DECIMAL_COMMA)
    n_comma, n_point = int(commas.sum()), int(text.str.fullmatch(_DECIMAL_POINT).sum())
    if given is not None:
        return given, n_comma, n_point
    thousands = bool(n_comma) and bool(text[commas].str.fullmatch(_THOUSANDS).all())
    return ("," if n_comma and not n_point and not thousands else "."), n_comma, n_point


def detect_scale(
    values: np.ndarray, options: LoadOptions, counts: np.ndarray | None = None
) -> RatingScale:
    """Return the rating scale: given, else the smallest common one, else observed.

    A common scale is chosen when it holds at least ``options.scale_coverage`` of
    the numeric ratings; the step is 1 when all ratings inside the scale are whole,
    0.5 when all are halves (a detected 1-5 scale then becomes 0.5-5), otherwise
    ``None`` (continuous). With ``counts``, ``values`` are distinct values seen ``counts``
    times each (the Spark loader's aggregate); the answer is that of the expanded values.
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.ones(len(values)) if counts is None else np.asarray(counts, dtype=np.float64)
    if options.scale is not None:
        low, high = options.scale
        source = "given"
    else:
        low, high, source = float(values.min()), float(values.max()), "observed"
        for lo, hi in COMMON_SCALES:
            inside = (values >= lo - _EPS) & (values <= hi + _EPS)
            if weights[inside].sum() / weights.sum() >= options.scale_coverage:
                low, high, source = lo, hi, "detected"
                break
    inside = values[(values >= low - _EPS) & (values <= high + _EPS)]
    step: float | None = None
    if inside.size and np.allclose(inside, np.round(inside)):
        step = 1.0
    elif inside.size and np.allclose(inside * 2, np.round(inside * 2)):
        step = 0.5
        if source == "detected" and (low, high) == (1, 5):
            low = 0.5  # half-star data on 1-5 is the 0.5-5 scale (MovieLens, Netflix)
    return RatingScale(float(low), float(high), step, source)


def _pick_duplicates(
    keys: np.ndarray, stamps: np.ndarray, policy: str
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(keep, representative)`` positions for rows sharing a key.

    ``keep`` marks the row kept per key; ``representative[i]`` is the kept
    position for row ``i`` (used by the ``mean`` policy).
    """
    n = keys.size
    if policy == "latest":
        order = np.lexsort((np.arange(n), stamps, keys))
    else:
        order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    ends = np.r_[sorted_keys[1:] != sorted_keys[:-1], True]
    chosen = order[starts] if policy == "first" else order[ends]
    keep = np.zeros(n, dtype=bool)
    keep[chosen] = True
    group = np.cumsum(starts) - 1
    representative = np.empty(n, dtype=np.int64)
    representative[order] = chosen[group]
    return keep, representative


def validate_ratings(
    raw: RawTable, columns: dict[str, str], options: LoadOptions, *, batch: bool = False
) -> ValidatedRatings:
    """Type, check and de-duplicate the rating rows of ``raw``.

    ``batch=True`` reads a batch of new ratings for a saved analysis (``engine.update``):
    every row check is the same, but one rating, one user, one item or one value is
    enough, since the batch is added to data that already holds the rest.

    Raises
    ------
    DataError
        No row survives, or (unless ``batch``) fewer than two users or items remain, or
        every kept rating has the same value (implicit feedback, which SVD cannot learn from).
    """
    frame = raw.frame
    n = len(frame)
    user = ids_as_strings(frame[columns["user"]])
    item = ids_as_strings(frame[columns["item"]])
    warnings: list[str] = []
    mark, n_comma, n_point = decimal_mark(frame[columns["rating"]], options.decimal)
    rating = ratings_as_numbers(frame[columns["rating"]], mark)
    if mark == "," and n_comma:
        warnings.append(
            f"{n_comma:,} ratings in {raw.name} are written with a decimal comma (e.g. 3,5) and "
            "were read as decimals (3.5)."
        )
    elif n_comma:
        warnings.append(
            f"{n_comma:,} ratings in {raw.name} hold a comma ({n_point:,} a decimal point): "
            "neither a clear decimal comma (3,5) nor a thousands separator (1,000) can be "
            "assumed, so they were rejected as non-numeric; pass the decimal mark explicitly "
            "(CLI: --decimal ,) if commas are decimals."
        )
    if "timestamp" in columns:
        parsed = parse_timestamps(frame[columns["timestamp"]])
        stamp = parsed.seconds
        warnings += timestamp_notes(parsed, raw.name, columns["timestamp"])
    else:
        stamp = pd.Series(pd.NA, index=frame.index, dtype="Int64")

    reason = np.zeros(n, dtype=np.int8)  # 0 = kept, k = ROW_REASONS[k - 1]

    def reject(mask: np.ndarray, why: str) -> None:
        reason[mask & (reason == 0)] = ROW_REASONS.index(why) + 1

    reject(user.isna().to_numpy(), "missing_user_id")
    reject(item.isna().to_numpy(), "missing_item_id")
    numbers = rating.to_numpy()
    reject(np.isnan(numbers), "non_numeric_rating")
    valid = reason == 0
    if not valid.any():
        raise DataError(
            f"{raw.name} has no row with a user id, an item id and a numeric rating "
            f"(columns used: {columns['user']}, {columns['item']}, {columns['rating']}): "
            "check the column mapping and that ratings are numbers"
            + (
                f" ({n_comma:,} ratings hold a comma, such as 1,000 or 3,5: pass the decimal "
                "mark, CLI --decimal ,, if commas are decimals)."
                if n_comma
                else "."
            )
        )
    scale = detect_scale(numbers[valid], options)
    warnings += half_step_notes(numbers[valid], scale, raw.name)
    outside = (numbers < scale.low - _EPS) | (numbers > scale.high + _EPS)
    reject(outside & valid, "out_of_scale")

    valid = reason == 0
    if not valid.any():
        raise DataError(
            f"All {int((reason == ROW_REASONS.index('out_of_scale') + 1).sum()):,} numeric "
            f"ratings in {raw.name} lie outside the rating scale {scale.low:g}-{scale.high:g}: "
            "give the scale the ratings use (CLI: --scale LOW,HIGH), or leave it out to detect it."
        )
    idx = np.flatnonzero(valid)
    user_codes, user_uniques = pd.factorize(user.to_numpy()[idx], sort=True)
    item_codes, item_uniques = pd.factorize(item.to_numpy()[idx], sort=True)
    keys = user_codes.astype(np.int64) * len(item_uniques) + item_codes
    stamps = stamp.to_numpy(dtype="float64", na_value=-np.inf)[idx]
    keep, representative = _pick_duplicates(keys, stamps, options.duplicates)
    kept_values = numbers[idx]
    if options.duplicates == "mean" and not keep.all():
        sums = np.bincount(representative, weights=kept_values, minlength=idx.size)
        counts = np.bincount(representative, minlength=idx.size)
        kept_values = np.where(keep, sums / np.maximum(counts, 1), kept_values)
    reason[idx[~keep]] = ROW_REASONS.index("duplicate") + 1

    order = np.lexsort((item_codes[keep], user_codes[keep]))
    ratings = pd.DataFrame(
        {
            "user_id": pd.array(user_uniques[user_codes[keep][order]], dtype="str"),
            "item_id": pd.array(item_uniques[item_codes[keep][order]], dtype="str"),
            "rating": kept_values[keep][order].astype("float64"),
            "timestamp": pd.array(stamp.to_numpy()[idx][keep][order], dtype="Int64"),
        }
    )
    rejected, examples = _tally(reason, raw, columns)
    _refuse_unlearnable(ratings, raw.name, batch=batch)
    for kind, uniques in (("user", user_uniques), ("item", item_uniques)):
        groups = lookalike_ids(np.asarray(uniques, dtype=object))
        warnings += lookalike_notes(groups, kind, raw.name)
    return ValidatedRatings(ratings, scale, rejected, examples, warnings)


def half_step_notes(
    values: np.ndarray, scale: RatingScale, name: str, counts: np.ndarray | None = None
) -> list[str]:
    """Point out a 0.5 step that rests on a few half-step ratings (e.g. one 4.5 among 1-5).

    ``counts`` weighs each value (``None``: one rating each), so a table of distinct
    ratings and their counts gives the same note as the ratings themselves. The example
    named is the smallest half-step rating.
    """
    if scale.step != 0.5:
        return []
    weights = np.ones(len(values)) if counts is None else np.asarray(counts, dtype=np.float64)
    half = ~np.isclose(values, np.round(values))
    n_half, n_all = int(weights[half].sum()), int(weights.sum())
    if n_half == 0 or n_half / n_all >= HALF_STEP_NOTICE_SHARE:
        return []
    return [
        f"Only {n_half:,} of {n_all:,} ratings in {name} are half-steps (e.g. "
        f"{values[half].min():g}), and they make the rating scale {scale.low:g}-{scale.high:g} "
        "in steps of 0.5: check them if the scale is whole stars."
    ]


def _canonical_id(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf").casefold()


def lookalike_keys(ids: pd.Series) -> pd.Series:
    """Return each id's comparison key: NFKC, format characters dropped, casefold."""
    ascii_ids = ids.str.isascii().fillna(False).to_numpy(bool)
    keys = ids.str.casefold()
    keys[~ascii_ids] = ids[~ascii_ids].map(_canonical_id)
    return keys


def lookalike_ids(ids: np.ndarray) -> list[list[str]]:
    """Return groups of distinct ids equal after NFKC, dropping format characters, casefold.

    E.g. ``"u1"``, ``"u１"`` (fullwidth digit), ``"u1\u200b"`` (zero-width space), ``"U1"``.
    Homoglyphs from other scripts (Cyrillic ``"а"`` for Latin ``"a"``) are not detected.
    Groups are in the order of their keys, each group's ids sorted.
    """
    series = pd.Series(ids, dtype=object)
    keys = lookalike_keys(series)
    shared = keys.duplicated(keep=False).to_numpy()
    if not shared.any():
        return []
    grouped = series[shared].groupby(keys[shared].to_numpy(), sort=True)
    return [sorted(group.tolist()) for _, group in grouped]


def lookalike_notes(groups: list[list[str]], kind: str, name: str) -> list[str]:
    """Return the warning on ``lookalike_ids``' groups of ``kind`` (user/item) ids in ``name``."""
    if not groups:
        return []
    a, b = groups[0][:2]
    plural = "s" if len(groups) != 1 else ""
    return [
        f"{len(groups):,} group{plural} of {kind} ids in {name} differ only by Unicode width, "
        f"invisible characters or case, e.g. {a!a} and {b!a}; they are kept as different "
        f"{kind}s: check the export if they should be one."
    ]


def _tally(
    reason: np.ndarray, raw: RawTable, columns: dict[str, str]
) -> tuple[dict[str, int], dict[str, list[dict[str, object]]]]:
    """Count rejected rows per reason and keep up to ``MAX_EXAMPLES`` raw examples of each."""
    rejected: dict[str, int] = {}
    examples: dict[str, list[dict[str, object]]] = {}
    if raw.malformed:
        rejected["malformed_row"] = len(raw.malformed)
        examples["malformed_row"] = [
            {"line": line, "fields": fields} for line, fields in raw.malformed[:MAX_EXAMPLES]
        ]
    counts = np.bincount(reason, minlength=len(ROW_REASONS) + 1)
    shown = {f: columns[f] for f in ("user", "item", "rating") if f in columns}
    for code, why in enumerate(ROW_REASONS, start=1):
        if not counts[code]:
            continue
        rejected[why] = int(counts[code])
        rows = np.flatnonzero(reason == code)[:MAX_EXAMPLES]
        examples[why] = [
            {"row": int(r) + 1, **{f: _plain(raw.frame[c].iat[r]) for f, c in shown.items()}}
            for r in rows
        ]
    return rejected, examples


def _plain(value: object) -> object:
    """Return a JSON-friendly copy of a raw cell."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value if isinstance(value, (int, float, str)) else str(value)


def _refuse_unlearnable(ratings: pd.DataFrame, name: str, *, batch: bool = False) -> None:
    if ratings.empty:
        raise DataError(
            f"{name} has no usable rating left after validation: see the rejected rows "
            "in the load report and fix the rating scale or column mapping."
        )
    if batch:
        return
    values = ratings["rating"].to_numpy()
    if np.all(values == values[0]):
        raise DataError(
            f"All {len(values):,} ratings in {name} have the same value ({values[0]:g}): this "
            "looks like implicit feedback (clicks or purchases), and SVD rating prediction needs "
            "graded ratings; supply explicit ratings such as 1-5 stars."
        )
    for kind, col in (("user", "user_id"), ("item", "item_id")):
        count = ratings[col].nunique()
        if count < 2:
            raise DataError(
                f"{name} has ratings for only {count} {kind}: collaborative filtering needs at "
                f"least two users and two items; supply the full rating export."
            )
