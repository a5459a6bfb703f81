r"""The load report as tables a reader can scan: names instead of reprs, "—" for "not used".

``LoadReport`` keeps exact values (``"\t"``, ``None``) for the JSON report and tests; the
Data page shows these tables instead, so a tab is "tab", a setting that does not apply
to a file is "—" and an example row reads ``row 3: user_id=u1, rating=abc``.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from engine.data.types import REJECT_REASONS, LoadReport

#: Shown for a setting that does not apply to a file (a Parquet file has no delimiter).
NOT_APPLICABLE = "—"
#: Each supported delimiter (``engine.data.types.DELIMITERS``) by name.
DELIMITER_NAMES: dict[str, str] = {
    "::": "double colon ::", "\t": "tab", ",": "comma ,", ";": "semicolon ;", "|": "pipe |",
    " ": "blanks",
}  # fmt: skip


def delimiter_name(delimiter: str | None) -> str:
    r"""Return a delimiter by name (``"\t"`` -> ``"tab"``); ``"—"`` for ``None``.

    An unnamed delimiter is shown quoted with its escapes (``'\x1f'``), never raw.
    """
    if delimiter is None:
        return NOT_APPLICABLE
    return DELIMITER_NAMES.get(delimiter, repr(delimiter))


def _shown(value: Any) -> str:
    """``None`` / NaN -> ``"—"``, ``True`` / ``False`` -> ``"yes"`` / ``"no"``, else ``str``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NOT_APPLICABLE
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def files_table(report: LoadReport) -> pd.DataFrame:
    """One row per file read, every cell text.

    Columns: ``role, file, format, encoding, delimiter, header, columns``; ``delimiter``
    by name (``delimiter_name``), ``header`` ``yes`` / ``no``, ``columns`` as
    ``user=who, item=what``; ``"—"`` where a setting does not apply.
    """
    rows = [
        {
            "role": f.role,
            "file": f.name,
            "format": f.format,
            "encoding": _shown(f.encoding),
            "delimiter": delimiter_name(f.delimiter),
            "header": _shown(f.header),
            "columns": ", ".join(f"{k}={v}" for k, v in f.columns.items()) or NOT_APPLICABLE,
        }
        for f in report.files
    ]
    columns = ["role", "file", "format", "encoding", "delimiter", "header", "columns"]
    return pd.DataFrame(rows, columns=columns)


def example_text(example: dict[str, Any]) -> str:
    """Write an example rejected row as ``row 3: user_id=u1, rating=abc`` (missing: ``—``)."""
    values = ", ".join(f"{k}={_shown(v)}" for k, v in example.items() if k != "row")
    return f"row {example['row']}: {values}" if "row" in example else values


def rejected_table(report: LoadReport) -> pd.DataFrame:
    """One row per rejection reason that occurred.

    Columns: ``reason`` (``REJECT_REASONS`` in words), ``rows`` (int, the rows rejected
    for it) and ``examples`` (up to five rows, ``example_text``, joined with ``"; "``).
    """
    rows = [
        {
            "reason": REJECT_REASONS[reason],
            "rows": count,
            "examples": "; ".join(example_text(e) for e in report.examples.get(reason, [])),
        }
        for reason, count in report.rejected.items()
    ]
    return pd.DataFrame(rows, columns=["reason", "rows", "examples"])
