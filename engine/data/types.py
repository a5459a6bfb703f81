"""Plain objects that cross the data layer's border.

``RatingData`` is what every later stage (model, explain, audit, report) takes;
``LoadReport`` says exactly what happened to every row on the way in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeAlias

import numpy as np
import pandas as pd

from engine.errors import ConfigError

DuplicatePolicy: TypeAlias = Literal["latest", "first", "last", "mean"]
DUPLICATE_POLICIES: tuple[str, ...] = ("latest", "first", "last", "mean")
#: Field delimiters a text file may use (``" "`` = runs of blanks).
DELIMITERS: tuple[str, ...] = ("::", "\t", ",", ";", "|", " ")
#: Decimal marks a rating may use.
DECIMAL_MARKS: tuple[str, ...] = (".", ",")

#: Reasons a rating row can be rejected, with the sentence used in reports.
REJECT_REASONS: dict[str, str] = {
    "malformed_row": "row is malformed (more fields than the header, or not a JSON record)",
    "missing_user_id": "user id is empty",
    "missing_item_id": "item id is empty",
    "non_numeric_rating": "rating is empty, NaN or not a number",
    "out_of_scale": "rating lies outside the rating scale",
    "duplicate": "another rating of the same (user, item) pair was kept",
}

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class DataFile:
    """An in-memory file, as uploaded through the dashboard.

    Parameters
    ----------
    name
        The file name the analyst gave it (used in messages and to guess the format).
    content
        The raw bytes.
    """

    name: str
    content: bytes

    def __repr__(self) -> str:
        return f"DataFile(name={self.name!r}, {len(self.content):,} bytes)"


#: What the entry point accepts for one file: a path or an in-memory file.
Source: TypeAlias = str | Path | DataFile


@dataclass(frozen=True)
class ColumnMapping:
    """Names of the rating file's columns that hold each canonical field.

    Any field left ``None`` is detected from the column names and content.
    A headerless file's columns are called ``column_1``, ``column_2``, ...
    """

    user: str | None = None
    item: str | None = None
    rating: str | None = None
    timestamp: str | None = None

    def given(self) -> dict[str, str]:
        """Return the fields the analyst set, as ``{field: column}``."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class LoadOptions:
    """How to load and validate rating data.

    Parameters
    ----------
    scale
        ``(low, high)`` rating scale, inclusive. ``None`` detects it: the smallest
        common scale (1-5, 0.5-5, 0-5, 1-10, 0-10, 1-7, 0-100) holding at least
        ``scale_coverage`` of the numeric ratings, else the observed range.
    scale_coverage
        Share of numeric ratings a detected common scale must hold, in (0, 1].
    duplicates
        Which rating of a repeated (user, item) pair to keep: ``latest`` (largest
        timestamp, else the last in file order), ``first``, ``last`` or ``mean``.
    max_archive_bytes
        Largest total uncompressed size read from an archive, in bytes.
    max_compression_ratio
        An archive entry (zip member or gzip file) over 1 MB whose uncompressed/compressed
        size ratio exceeds this is refused as a likely zip bomb.
    max_rows
        Most data rows read from one table file (text lines or Parquet rows), checked before
        parsing. MovieLens archives are bounded by ``max_archive_bytes`` instead.
    max_columns
        Most columns in one table file, checked on its first line before parsing.
    delimiter
        Field delimiter of text files (one of ``DELIMITERS``); ``None`` sniffs it.
    decimal
        Decimal mark of ratings in text files, ``"."`` or ``","``; ``None`` detects it: a
        comma is taken as the decimal mark when the delimiter is not a comma and the rating
        column holds values such as ``3,5`` and none such as ``3.5``.
    sheet
        Name of the worksheet to read from an Excel workbook; ``None`` takes a sheet named
        like the role (``ratings``, ``users``, ``items``) if there is one, else the first.
    """

    scale: tuple[float, float] | None = None
    scale_coverage: float = 0.99
    duplicates: DuplicatePolicy = "latest"
    max_archive_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0
    max_rows: int = 10_000_000
    max_columns: int = 1_000
    delimiter: str | None = None
    decimal: str | None = None
    sheet: str | None = None

    def __post_init__(self) -> None:
        if self.scale is not None:
            low, high = self.scale
            if not (np.isfinite(low) and np.isfinite(high) and low < high):
                raise ConfigError(
                    f"Rating scale {self.scale!r} is invalid: give (low, high) with low < high, "
                    "both finite, for example (1, 5)."
                )
        if not 0 < self.scale_coverage <= 1:
            raise ConfigError(
                f"scale_coverage={self.scale_coverage} is outside (0, 1]: use e.g. 0.99."
            )
        if self.duplicates not in DUPLICATE_POLICIES:
            raise ConfigError(
                f"Duplicate policy {self.duplicates!r} is unknown: use one of "
                f"{', '.join(DUPLICATE_POLICIES)}."
            )
        if self.max_archive_bytes <= 0 or self.max_compression_ratio <= 1:
            raise ConfigError(
                "Archive limits must be positive (max_archive_bytes > 0, "
                "max_compression_ratio > 1)."
            )
        if self.delimiter is not None and self.delimiter not in DELIMITERS:
            raise ConfigError(
                f"Delimiter {self.delimiter!r} is not supported: use one of "
                "',', ';', tab, '|', '::' or ' ' (runs of blanks)."
            )
        if self.decimal is not None and self.decimal not in DECIMAL_MARKS:
            raise ConfigError(f"Decimal mark {self.decimal!r} is not supported: use '.' or ','.")
        if self.decimal == "," and self.delimiter == ",":
            raise ConfigError(
                "A comma cannot be both the delimiter and the decimal mark: use ';' or tab "
                "between fields with a decimal comma."
            )
        if self.max_rows < 1 or self.max_columns < 3:
            raise ConfigError(
                f"Table limits max_rows={self.max_rows}, max_columns={self.max_columns} are too "
                "small: use max_rows >= 1 and max_columns >= 3."
            )


@dataclass(frozen=True)
class RatingScale:
    """The rating scale: inclusive bounds, step (``None`` = continuous), how it was set."""

    low: float
    high: float
    step: float | None
    source: Literal["given", "detected", "observed"]

    def describe(self) -> str:
        """Return e.g. ``'1-5, step 1 (detected)'``."""
        step = "continuous" if self.step is None else f"step {self.step:g}"
        return f"{self.low:g}-{self.high:g}, {step} ({self.source})"

    def relevance_threshold(self) -> float:
        """Return the default relevance threshold: the top quarter of the scale.

        ``t = low + 0.75 (high - low)``, rounded *up* to the scale's step when it has one,
        so a held-out rating ``>= t`` is relevant. This gives 4 on 1-5, 0.5-5 and 0-5 (the
        usual MovieLens convention), 6 on 1-7, 8 on 1-10 and 0-10, 75 on 0-100 and 1 on
        thumbs data rated -1/1; a fixed 4 would make 96% of ratings relevant on 0-100.
        """
        threshold = self.low + 0.75 * (self.high - self.low)
        if self.step:
            steps = np.ceil(round((threshold - self.low) / self.step, 9))
            threshold = self.low + steps * self.step
        return float(min(threshold, self.high))


@dataclass(frozen=True)
class FileReport:
    """How one input file was read.

    ``role`` is ``ratings``, ``users`` or ``items``; ``format`` is ``text``,
    ``parquet`` or ``movielens-100k`` / ``-1m`` / ``-latest``; ``delimiter`` and
    ``header`` are ``None`` where they do not apply; ``columns`` maps each
    canonical field to the source column used, and ``detection`` says how
    (``name``, ``content``, ``given`` or ``format``).
    """

    role: str
    name: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    header: bool | None = None
    columns: dict[str, str] = field(default_factory=dict)
    detection: dict[str, str] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadReport:
    """Everything that happened to the input on its way into a ``RatingData``.

    Invariant: ``rows_kept + sum(rejected.values()) == rows_read``.

    Attributes
    ----------
    files
        One ``FileReport`` per file read.
    rows_read
        Data rows in the rating file (header excluded, blank lines not counted).
    rows_kept
        Rows in ``RatingData.ratings``.
    rejected
        Rejected row count per reason (keys of ``REJECT_REASONS``), only reasons that occurred.
    examples
        Up to five example rows per reason: ``{"row": n, **raw values}`` with ``n``
        the 1-based data row number in the rating file.
    duplicate_policy
        The policy applied to repeated (user, item) pairs.
    scale
        The rating scale used for validation.
    attribute_coverage
        Counts of ids present in one table but not the other, e.g.
        ``users_without_attributes``, ``attribute_users_without_ratings``.
    warnings
        Sentences about anything else changed or ignored (never silently).
    """

    files: list[FileReport]
    rows_read: int
    rows_kept: int
    rejected: dict[str, int]
    examples: dict[str, list[dict[str, Any]]]
    duplicate_policy: str
    scale: RatingScale
    attribute_coverage: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        """Total rejected rows over all reasons."""
        return sum(self.rejected.values())

    def summary(self) -> str:
        """One line: rows read, kept and rejected by reason."""
        parts = [f"{self.rows_read:,} rows read", f"{self.rows_kept:,} kept"]
        parts += [f"{n:,} rejected ({REJECT_REASONS[r]})" for r, n in self.rejected.items()]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary."""
        out = asdict(self)
        out["rows_rejected"] = self.rows_rejected
        out["reject_reasons"] = {r: REJECT_REASONS[r] for r in self.rejected}
        out["relevance_threshold"] = self.scale.relevance_threshold()
        return out


@dataclass(frozen=True)
class RatingData:
    """Canonical rating data with optional attributes.

    Attributes
    ----------
    ratings
        One row per (user, item) pair, sorted by ``user_id`` then ``item_id``.
        Columns: ``user_id`` (str), ``item_id`` (str), ``rating`` (float64),
        ``timestamp`` (Int64 seconds since the Unix epoch, ``<NA>`` where unknown).
        Ids are kept as the exact strings of the source (stripped of surrounding
        blanks): ``"001"`` and ``"1"`` are different ids.
    users
        User attributes indexed by ``user_id`` (str), one column per attribute
        (categorical columns as str, numeric ones such as ``age`` as numbers), or ``None``.
    items
        Item attributes indexed by ``item_id`` (str), or ``None``. Known columns:
        ``title`` (str), ``genres`` (tuple of str, possibly empty), ``year`` (Int64);
        any other column is kept as a categorical or numeric attribute.
    scale
        The rating scale.
    fingerprint
        SHA-256 (hex) of the canonical content; identical content gives the same value.
    report
        The load report.
    name
        A short label for the dataset (file or folder name).
    synthetic
        True for the generated sample data; shown wherever the data is shown.
    """

    ratings: pd.DataFrame
    users: pd.DataFrame | None
    items: pd.DataFrame | None
    scale: RatingScale
    fingerprint: str
    report: LoadReport
    name: str
    synthetic: bool = False

    @property
    def n_users(self) -> int:
        """Number of distinct users with at least one kept rating."""
        return int(self.ratings["user_id"].nunique())

    @property
    def n_items(self) -> int:
        """Number of distinct items with at least one kept rating."""
        return int(self.ratings["item_id"].nunique())

    @property
    def n_ratings(self) -> int:
        """Number of kept ratings."""
        return len(self.ratings)

    def time_span(self) -> tuple[int, int] | tuple[None, None]:
        """Return the first and last rating's timestamp (epoch seconds); ``None`` without."""
        if "timestamp" not in self.ratings.columns:
            return None, None
        stamps = pd.to_numeric(self.ratings["timestamp"], errors="coerce").dropna()
        return (int(stamps.min()), int(stamps.max())) if len(stamps) else (None, None)
