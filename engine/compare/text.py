"""How a version comparison writes its numbers (summary, report, Compare page).

The project's conventions (``engine.report.numbers``) with one addition for signed
differences and their intervals:

- values (RMSE, NDCG, shares): ``value_text``, at most 4 significant figures (``0.9089``);
- differences B - A and interval ends: ``difference_text``, signed, 4 decimals, never in
  scientific notation (``-0.0620``, ``+0.0012``); a difference too small for 4 decimals
  is ``+0.0000`` / ``-0.0000`` (not zero, smaller than 0.00005), exactly 0 is ``0``;
- counts: ``count_text`` (``7,114``); p-values: ``engine.audit.stats.format_p_value``.

Missing values are ``""``; callers needing a visible placeholder use ``MISSING`` ("—").
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from engine.audit.stats import format_p_value
from engine.report.numbers import count_text, missing, percent_text, value_text

#: What a table cell without a value shows (no interval, no test).
MISSING = "—"

__all__ = ["DISPLAY_COLUMNS", "INTERVAL_ONLY", "MISSING", "count_text", "difference_text",
           "display_rows", "interval_only", "interval_text", "percent_text", "points_text",
           "shown_values", "value_text"]  # fmt: skip

#: The mark of a row whose 95% interval excludes 0 but whose Holm-adjusted test is not
#: significant (the interval is per row and unadjusted; the verdict is Holm's).
INTERVAL_ONLY = "interval excludes 0; not significant after Holm"
#: Row column -> readable header of the displayed rows (``display_rows``).
DISPLAY_COLUMNS = {
    "metric": "Metric", "grouping": "Grouping", "group": "Group", "n_users": "Users",
    "n_pairs": "Ratings", "value_a": "A", "value_b": "B", "difference": "B - A",
    "ci": "95% interval of B - A", "catalogue_share": "Catalogue share", "p": "p",
    "p_holm": "p (Holm)", "verdict": "Verdict", "note": "Note",
}  # fmt: skip


def difference_text(value: Any) -> str:
    """Signed difference with 4 decimals (``-0.0620``; ``0`` when exactly 0; ``""`` missing)."""
    if missing(value):
        return ""
    number = float(value)
    if number == 0:
        return "0"
    if abs(number) >= 1e4:
        return f"{number:+,.0f}"
    return f"{number:+.4f}"


def interval_text(low: Any, high: Any) -> str:
    """``-0.0150 to -0.0070``; ``""`` when either end is missing."""
    if missing(low) or missing(high):
        return ""
    return f"{difference_text(low)} to {difference_text(high)}"


def points_text(value: Any) -> str:
    """Write a difference of shares in percentage points, 1 decimal.

    ``0.0907`` -> ``+9.1 points``; ``0 points`` when exactly 0; ``""`` when missing.
    """
    if missing(value):
        return ""
    number = 100 * float(value)
    return "0 points" if number == 0 else f"{number:+.1f} points"


def shown_values(
    metric: str, value_a: Any, value_b: Any, difference: Any, low: Any, high: Any
) -> tuple[str, str, str, str]:
    """Return the texts of a row's A, B, B - A and 95% interval of B - A.

    Exposure shares as percentages and their differences in percentage points (``17.2%``,
    ``26.3%``, ``+9.1 points``, ``+6.7 to +11.1 points``), as the catalogue share beside
    them; other metrics by ``value_text``, ``difference_text`` and ``interval_text``.
    """
    if not str(metric).startswith("exposure"):
        return (value_text(value_a), value_text(value_b), difference_text(difference),
                interval_text(low, high))  # fmt: skip
    interval = "" if missing(low) or missing(high) else (
        f"{100 * float(low):+.1f} to {100 * float(high):+.1f} points")  # fmt: skip
    return percent_text(value_a), percent_text(value_b), points_text(difference), interval


def interval_only(row: Any) -> bool:
    """Whether the row's 95% interval excludes 0 while its verdict is no significant change."""
    low, high = row["ci_low"], row["ci_high"]
    if row["verdict"] != "no significant change" or missing(low) or missing(high):
        return False
    return float(low) > 0 or float(high) < 0


def _note(row: Any, minimum: int | None) -> str:
    if interval_only(row):
        return INTERVAL_ONLY
    if row["verdict"] == "insufficient data" and minimum is not None:
        return f"not tested: {count_text(row['n_users'])} users, under the minimum of {minimum:,}"
    return ""


def display_rows(rows: pd.DataFrame, min_group_size: int | None = None) -> pd.DataFrame:
    """Return the comparison's rows as text, with readable headers (``DISPLAY_COLUMNS``).

    Values, differences and intervals by ``shown_values`` (exposure in percentages and
    percentage points), counts by ``count_text``, catalogue shares as percentages, p-values by
    ``format_p_value``; a missing interval or p-value is ``MISSING`` ("—"), a missing
    count or share is empty. ``Note`` marks a row whose interval excludes 0 but whose
    Holm-adjusted test is not significant (``INTERVAL_ONLY``) and, with
    ``min_group_size``, a group too small to test.
    """

    def p_text(p: Any, bound: bool = False) -> str:
        return MISSING if missing(p) else format_p_value(float(p), bool(bound))

    shares = rows["catalogue_share"] if "catalogue_share" in rows else pd.Series(index=rows.index)
    texts = [shown_values(*values) for values in zip(
        rows["metric"], rows["value_a"], rows["value_b"], rows["difference"], rows["ci_low"],
        rows["ci_high"], strict=True)]  # fmt: skip
    value_a, value_b, difference, ci = (list(column) for column in zip(*texts, strict=True))
    out = pd.DataFrame({
        "metric": rows["metric"].astype(str), "grouping": rows["grouping"].astype(str),
        "group": rows["group"].astype(str),
        "n_users": [count_text(v) for v in rows["n_users"]],
        "n_pairs": [count_text(v) for v in rows["n_pairs"]],
        "value_a": value_a, "value_b": value_b, "difference": difference,
        "ci": [text or MISSING for text in ci],
        "catalogue_share": [percent_text(v) for v in shares],
        "p": [p_text(p, b) for p, b in zip(rows["p_value"], rows["p_is_bound"], strict=True)],
        "p_holm": [p_text(p) for p in rows["p_adjusted"]],
        "verdict": rows["verdict"].astype(str),
        "note": [_note(row, min_group_size) for _, row in rows.iterrows()],
    }, index=rows.index)  # fmt: skip
    return out.rename(columns=DISPLAY_COLUMNS)
