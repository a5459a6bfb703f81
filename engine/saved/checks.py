"""Value checks on tables read back from a saved analysis: ids, integer ranges, ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.saved.errors import refuse


def check_ids(values: pd.Series, known: pd.Index, what: str, file: object, where: str) -> None:
    """Refuse ids (``what``: ``user``, ``item``) of column ``values`` missing from ``known``."""
    unknown = ~values.isin(known)
    if unknown.any():
        first = values[unknown].iloc[0]
        raise refuse(
            file,
            f"names the {what} id {first!r} in {values.name}, which is not in {where} "
            f"({int(unknown.sum()):,} such row(s))",
        )


def check_range(values: pd.Series, low: float, high: float, file: object) -> None:
    """Refuse a value of ``values`` (NaN included) outside ``[low, high]``."""
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    outside = ~((numbers >= low) & (numbers <= high))
    if outside.any():
        raise refuse(
            file,
            f"holds {values.name} = {numbers[outside][0]:g} outside {low:g}..{high:g} "
            f"({int(outside.sum()):,} such row(s))",
        )


def check_ranks(frame: pd.DataFrame, by: list[str], k: int, file: object) -> None:
    """Refuse ranks outside ``1..k``, or not ``1, 2, ..., n`` within each ``by`` group."""
    check_range(frame["rank"], 1, k, file)
    ordered = frame.sort_values([*by, "rank"], kind="stable")
    expected = ordered.groupby(by, sort=False).cumcount().to_numpy() + 1
    wrong = ordered["rank"].to_numpy() != expected
    if wrong.any():
        row = ordered[wrong].iloc[0]
        who = ", ".join(f"{c} {row[c]!r}" for c in by)
        raise refuse(file, f"has ranks for {who} that are not 1, 2, 3, ... (rank {row['rank']})")


def check_unique(frame: pd.DataFrame, columns: list[str], file: object) -> None:
    """Refuse a repeated combination of ``columns``."""
    repeated = frame.duplicated(columns)
    if repeated.any():
        row = frame[repeated].iloc[0]
        pair = ", ".join(f"{c} {row[c]!r}" for c in columns)
        raise refuse(file, f"repeats the row for {pair} ({int(repeated.sum()):,} repeat(s))")
