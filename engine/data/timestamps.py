"""Parse a timestamp column into seconds since the Unix epoch, per value and within range.

Conventions
-----------
* **Plausible range**: 1900-01-01 to 2100-01-01 (UTC). A value outside it (``9999-12-31``,
  ``0001-01-01``, a Parquet date in year 2500, ``1e30``) or not finite (``inf``) is set to
  missing and counted; the rating itself is kept.
* **Numbers** are epoch times whose unit is judged *per value* by magnitude:
  ``|v| < 1e11`` seconds, ``< 1e14`` milliseconds, ``< 1e17`` microseconds, ``< 1e20``
  nanoseconds. The bands do not overlap inside the plausible range (1e11 seconds is
  year 5138; 1e11 milliseconds is 1973), so a column mixing seconds and milliseconds is
  read correctly and the mix is reported rather than forcing one unit on every value.
* **Text** is parsed as ISO 8601 (``2020-01-31``, ``2020-01-31T12:00:00Z``) in UTC.
* **Datetime columns** (Parquet, Excel) are converted at second resolution, so dates
  beyond pandas' nanosecond range (year 2262) do not overflow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Plausible range of a rating's time, in epoch seconds: [1900-01-01, 2100-01-01).
PLAUSIBLE_SECONDS: tuple[int, int] = (-2_208_988_800, 4_102_444_800)
PLAUSIBLE_YEARS: tuple[int, int] = (1900, 2099)
#: Upper magnitude bound of each unit, and seconds per unit.
UNITS: tuple[tuple[str, float, float], ...] = (
    ("seconds", 1e11, 1.0),
    ("milliseconds", 1e14, 1e3),
    ("microseconds", 1e17, 1e6),
    ("nanoseconds", 1e20, 1e9),
)
MAX_EXAMPLES = 3
_LEADING_YEAR = re.compile(r"^\s*([-+]?\d{1,6})-")


@dataclass(frozen=True)
class ParsedTimestamps:
    """Result of ``parse_timestamps``.

    Attributes
    ----------
    seconds
        Int64 seconds since the epoch, ``<NA>`` where absent, unparsed or out of range.
    unparsed
        Non-empty values that are neither numbers nor ISO dates.
    out_of_range
        Values that parsed but lie outside ``PLAUSIBLE_SECONDS`` or are not finite.
    examples
        Up to three raw out-of-range values, as text.
    units
        For numeric values: how many were read in each unit (only units that occurred).
    """

    seconds: pd.Series
    unparsed: int = 0
    out_of_range: int = 0
    examples: list[str] = field(default_factory=list)
    units: dict[str, int] = field(default_factory=dict)

    @property
    def parsed_share(self) -> float:
        """Share of present values that parsed to a plausible time, in [0, 1]."""
        total = int(self.seconds.notna().sum()) + self.unparsed + self.out_of_range
        return float(self.seconds.notna().sum() / total) if total else 0.0


def numbers_from_text(text: pd.Series) -> pd.Series:
    """Parse stripped text as float64, ``NaN`` where it is not a number.

    The direct cast is ~8x faster than ``pd.to_numeric`` and succeeds on clean
    columns; any bad cell makes it fail, and the tolerant parser takes over.
    """
    try:
        return text.astype("float64")
    except (ValueError, TypeError):
        return pd.to_numeric(text, errors="coerce").astype("float64")


def _epoch_from_numbers(numbers: pd.Series) -> tuple[pd.Series, dict[str, int]]:
    """Convert numbers to float seconds, unit per value by magnitude (NaN beyond all units)."""
    magnitude = numbers.abs().to_numpy()
    seconds = np.full(len(numbers), np.nan)
    units: dict[str, int] = {}
    lower = 0.0
    for name, upper, per_second in UNITS:
        band = np.isfinite(magnitude) & (magnitude >= lower) & (magnitude < upper)
        if band.any():
            seconds[band] = numbers.to_numpy()[band] / per_second
            units[name] = int(band.sum())
        lower = upper
    return pd.Series(seconds, index=numbers.index), units


def _epoch_from_dates(values: pd.Series) -> pd.Series:
    """Convert a datetime column to float seconds without nanosecond overflow."""
    if values.dt.tz is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    stamps = values.to_numpy(dtype="datetime64[s]")
    out = stamps.astype("int64").astype("float64")
    out[np.isnat(stamps)] = np.nan
    return pd.Series(out, index=values.index)


def _epoch_from_iso(text: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO 8601 text to float seconds; return ``(seconds, out_of_range_mask)``.

    A leading year outside ``PLAUSIBLE_YEARS`` is out of range before parsing (pandas'
    nanosecond timestamps end in 2262).
    """
    years = pd.to_numeric(text.str.extract(_LEADING_YEAR, expand=False), errors="coerce")
    outside = years.notna() & ~years.between(*PLAUSIBLE_YEARS)
    candidates = text.where(~outside)
    try:
        dates = pd.to_datetime(candidates, errors="coerce", format="ISO8601", utc=True)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        dates = candidates.map(_one_date)
        dates = pd.to_datetime(dates, errors="coerce", utc=True)
    seconds = _epoch_from_dates(dates)
    return seconds, outside


def _one_date(value: object) -> pd.Timestamp | None:
    try:
        return pd.Timestamp(value, tz="UTC") if isinstance(value, str) else None
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return None


def parse_timestamps(values: pd.Series) -> ParsedTimestamps:
    """Parse a raw timestamp column (text, numbers or datetimes) to epoch seconds.

    See the module docstring for the conventions. Never raises on content.
    """
    units: dict[str, int] = {}
    if pd.api.types.is_datetime64_any_dtype(values):
        present = values.notna()
        seconds = _epoch_from_dates(values)
        unparsed = pd.Series(False, index=values.index)
        outside_text = pd.Series(False, index=values.index)
    else:
        text = values.astype("str").str.strip().where(values.notna(), "")
        present = text != ""
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numbers = values.astype("float64")
        else:
            numbers = numbers_from_text(text.where(present))
        numeric = numbers.notna() & present
        seconds = pd.Series(np.nan, index=values.index)
        outside_text = pd.Series(False, index=values.index)
        if numeric.sum() >= 0.5 * max(int(present.sum()), 1):
            seconds[numeric], units = _epoch_from_numbers(numbers[numeric])
            # numbers beyond every unit (1e30, inf) are out of range, not unparsed
            outside_text = numeric & seconds.isna()
        else:
            parsed, outside_text = _epoch_from_iso(text.where(present))
            seconds = parsed
        unparsed = present & seconds.isna() & ~outside_text
    low, high = PLAUSIBLE_SECONDS
    outside = (present & ((seconds < low) | (seconds >= high))) | outside_text
    seconds = seconds.where(present & ~outside)
    raw_text = values.astype("str")
    examples = list(dict.fromkeys(raw_text[outside].head(50)))[:MAX_EXAMPLES]
    return ParsedTimestamps(
        seconds=seconds.round().astype("Int64"),
        unparsed=int(unparsed.sum()),
        out_of_range=int(outside.sum()),
        examples=examples,
        units=units,
    )


def timestamp_notes(parsed: ParsedTimestamps, name: str, column: str) -> list[str]:
    """Return the load-report sentences about a parsed timestamp column."""
    notes = []
    if parsed.unparsed:
        notes.append(
            f"{parsed.unparsed:,} timestamps in {name} could not be parsed and were set to "
            "missing (the ratings were kept)."
        )
    if parsed.out_of_range:
        examples = ", ".join(repr(e) for e in parsed.examples)
        notes.append(
            f"{parsed.out_of_range:,} timestamps in {name} (column {column}) are not finite or "
            f"lie outside 1900-2100 (e.g. {examples}) and were set to missing (the ratings "
            "were kept)."
        )
    if len(parsed.units) > 1:
        mix = ", ".join(f"{n:,} as {unit}" for unit, n in parsed.units.items())
        notes.append(
            f"Timestamps in {name} (column {column}) mix units, judged per value by "
            f"magnitude: {mix}; check the export if that is unexpected."
        )
    elif parsed.units and "seconds" not in parsed.units:
        notes.append(f"Timestamps in {name} were read as {next(iter(parsed.units))}.")
    return notes


def timestamp_problem(values: pd.Series, min_share: float = 0.9) -> str | None:
    """Return why ``values`` are not a timestamp column, or ``None`` when they are one.

    They are one when at least ``min_share`` of the present values are plausible times;
    numbers must also be epoch-sized (after 1990 once converted), so counts, minutes or
    ids are not taken for times.
    """
    parsed = parse_timestamps(values)
    seconds = parsed.seconds.dropna()
    if parsed.out_of_range and parsed.parsed_share < min_share:
        examples = ", ".join(repr(e) for e in parsed.examples)
        return f"its values lie outside 1900-2100 or are not finite (e.g. {examples})"
    if seconds.empty or parsed.parsed_share < min_share:
        return "its values are not dates or epoch times"
    if parsed.units and (seconds >= 631_152_000).mean() < min_share:
        return "its numbers are too small to be epoch times (before 1990)"
    return None
