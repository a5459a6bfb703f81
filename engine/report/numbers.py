"""How the report and the Bias audit page write numbers: one precision per kind of number.

- ratios (to a reference group or to a catalogue share): 2 decimals, ``1.07``; more where
  2 decimals would round onto an edge of the flag band (``1.2501``, not ``1.25``);
- metric values (RMSE, NDCG, shares as fractions): at most 4 significant figures, ``0.975``,
  ``0.04123``; from 10 000 up, whole numbers with thousands separators;
- shares shown as percentages: 1 decimal, ``12.5%``;
- counts: thousands separators, ``1,682``;
- p-values: ``engine.audit.stats.format_p_value`` (only what the stated test can give).

Missing values (None, NaN, ``pd.NA``) are written as ``""`` here; callers that need a
visible placeholder (the HTML tables') add ``NOT_AVAILABLE``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from engine.audit.config import AuditConfig

#: What a missing or undefined value (None, NaN) shows; each table says why nearby.
NOT_AVAILABLE = "n/a"
#: The audit's default flag band (``AuditConfig.band``), whose edges ``ratio_text`` keeps apart.
DEFAULT_BAND: tuple[float, float] = AuditConfig().band


def missing(value: Any) -> bool:
    """Whether ``value`` is None, NaN or ``pd.NA`` (a missing number)."""
    if value is None or value is pd.NA:
        return True
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def ratio_text(value: Any, band: tuple[float, float] = DEFAULT_BAND) -> str:
    """Write a ratio with 2 decimals (``1.07``); ``""`` when missing.

    A ratio that is not an edge of ``band`` but rounds onto one gets the decimals that tell
    it apart (``1.2501``, up to 10): a flagged 1.2501 written "1.25" reads as inside the band.
    """
    if missing(value):
        return ""
    number = float(value)
    for decimals in range(2, 11):
        text = f"{number:.{decimals}f}"
        if text not in [f"{edge:.{decimals}f}" for edge in band if edge != number]:
            return text
    return text


def value_text(value: Any) -> str:
    """Write a metric value with at most 4 significant figures (``0.975``, ``0.9089``).

    ``""`` when missing.

    From 10 000 up, a whole number with thousands separators (``12,345``).
    """
    if missing(value):
        return ""
    number = float(value)
    if math.isinf(number):
        return "infinite" if number > 0 else "-infinite"
    if abs(number) >= 1e4:
        return f"{number:,.0f}"
    return f"{number:.4g}"


def percent_text(value: Any) -> str:
    """Write a fraction as a percentage, 1 decimal (``0.125`` -> ``12.5%``); ``""`` if missing."""
    return "" if missing(value) else f"{float(value):.1%}"


def count_text(value: Any) -> str:
    """Write a count with thousands separators (``1,682``); ``""`` when missing."""
    return "" if missing(value) else f"{int(value):,}"


def cell_text(value: Any) -> str:
    """Write any table cell by the conventions above; ``"—"`` when missing.

    Booleans "yes" / "no"; integers (and whole floats from 1 up) as counts; other numbers
    as metric values (``value_text``); anything else as its text.
    """
    if missing(value):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) >= 1):  # fmt: skip
        return count_text(value)
    if isinstance(value, float):
        return value_text(value)
    return str(value)
