"""Calendar windows of rating time for monitoring (``engine.monitor``).

A window specification is ``"week"``, ``"month"``, ``"quarter"``, ``"year"`` or ``"Nd"``
(``N`` days, ``N >= 1``). Windows are in UTC and cover the data from the first to the last
rating time without gaps:

* ``week``: Monday 00:00 to the next Monday (ISO weeks), labelled by their Monday
  (``"1998-03-02"``);
* ``month``, ``quarter``, ``year``: calendar periods, labelled ``"1998-03"``, ``"1998Q1"``,
  ``"1998"``;
* ``Nd``: consecutive stretches of ``N`` days from the first rating's day (00:00 UTC),
  labelled by their first day.

Window ``w`` holds the ratings with ``start_w <= t < end_w`` (epoch seconds); ``end_w`` is
the next window's start. Ratings without a time belong to no window.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from engine.errors import ConfigError

#: The named window kinds (``Nd`` is the other form).
WINDOW_KINDS: tuple[str, ...] = ("week", "month", "quarter", "year")
_FREQ = {"week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}
_DAYS = re.compile(r"^([1-9][0-9]{0,4})d$")
_DAY = 86_400


def check_window(window: str) -> str:
    """Return ``window`` normalised (lower case, stripped), or refuse it in one sentence.

    Raises
    ------
    ConfigError
        Not one of ``WINDOW_KINDS`` and not ``Nd`` with a whole ``N`` from 1 to 99,999.
    """
    text = str(window).strip().lower()
    if text in WINDOW_KINDS or _DAYS.match(text):
        return text
    raise ConfigError(
        f"Unknown window {window!r}: use week, month, quarter, year or a number of days "
        "such as 30d."
    )


def _seconds(stamps: pd.DatetimeIndex) -> np.ndarray:
    """Naive UTC datetimes as whole epoch seconds (independent of pandas' time unit)."""
    return ((stamps - pd.Timestamp(0)) // pd.Timedelta(seconds=1)).to_numpy(np.int64)


def make_windows(times: np.ndarray, window: str) -> pd.DataFrame:
    """Return the windows covering ``times`` (epoch seconds; NaN = unknown, ignored).

    Returns
    -------
    pandas.DataFrame
        One row per window, in time order: ``window`` (index 0..W-1), ``label``,
        ``start``, ``end`` (epoch seconds, ``start <= t < end``).

    Raises
    ------
    ConfigError
        An unknown window, or no time at all.
    """
    kind = check_window(window)
    finite = times[np.isfinite(times)]
    if len(finite) == 0:
        raise ConfigError("Monitoring needs a time for each rating, and no rating has one.")
    t_min, t_max = float(finite.min()), float(finite.max())
    days = _DAYS.match(kind)
    if days:
        step = int(days.group(1)) * _DAY
        first = int(t_min // _DAY) * _DAY
        count = int((t_max - first) // step) + 1
        starts = first + step * np.arange(count + 1, dtype=np.int64)
        labels = [pd.Timestamp(s, unit="s").strftime("%Y-%m-%d") for s in starts[:-1]]
    else:
        lo = pd.Timestamp(t_min, unit="s").to_period(_FREQ[kind])
        hi = pd.Timestamp(t_max, unit="s").to_period(_FREQ[kind])
        periods = pd.period_range(lo, hi + 1, freq=_FREQ[kind])
        starts = _seconds(pd.DatetimeIndex(periods.start_time))
        shown = periods[:-1]
        if kind == "week":
            labels = [p.start_time.strftime("%Y-%m-%d") for p in shown]
        elif kind == "month":
            labels = [p.strftime("%Y-%m") for p in shown]
        else:
            labels = [str(p) for p in shown]
    return pd.DataFrame(
        {
            "window": np.arange(len(labels), dtype=np.int64),
            "label": labels,
            "start": starts[:-1].astype(np.int64),
            "end": starts[1:].astype(np.int64),
        }
    )


def assign_windows(times: np.ndarray, windows: pd.DataFrame) -> np.ndarray:
    """Window index of each time (``-1`` for an unknown time or one outside every window)."""
    starts = windows["start"].to_numpy(float)
    index = np.searchsorted(starts, times, side="right") - 1
    inside = np.isfinite(times) & (index >= 0) & (times < windows["end"].to_numpy(float)[-1])
    return np.where(inside, index, -1).astype(np.int64)


def resolve_baseline(baseline: str | int | None, windows: pd.DataFrame, testable: list[int]) -> int:
    """Return the baseline window's index: given by index or label, else the first testable.

    ``testable`` lists the windows with model quality (trained on earlier ratings and not
    insufficient data), in order.

    Raises
    ------
    ConfigError
        No testable window, or a baseline that names no window or an untestable one.
    """
    if not testable:
        raise ConfigError(
            "No window has enough ratings and earlier ratings to train on: use a longer window "
            "or lower the minimum number of ratings per window."
        )
    if baseline is None or baseline == "":
        return testable[0]
    labels = windows["label"].astype(str).tolist()
    text = str(baseline).strip()
    if text in labels:
        index = labels.index(text)
    elif re.fullmatch(r"[0-9]+", text) and int(text) < len(labels):
        index = int(text)
    else:
        raise ConfigError(
            f"Baseline {baseline!r} names no window: use a window label such as "
            f"{labels[testable[0]]!r} or an index from 0 to {len(labels) - 1}."
        )
    if index not in testable:
        raise ConfigError(
            f"Baseline window {labels[index]} has no model quality (it is the first window, "
            "or has insufficient data): choose another, e.g. "
            f"{labels[testable[0]]!r}."
        )
    return index


def _day(seconds: float) -> str:
    return pd.Timestamp(int(seconds), unit="s").strftime("%Y-%m-%d")


def partial_windows(times: np.ndarray, windows: pd.DataFrame) -> list[str]:
    """Each window's partial coverage in words, ``""`` for a window the data covers.

    Only the first and the last window can be partial: the data starts after the first
    window's first day (``"from 1997-09-20"``) or ends before the last window's last day
    (``"to 1998-03-07"``; both: ``"1998-03-02 to 1998-03-07"``), by calendar day (UTC). A
    window in between is covered by the data, however few its ratings.
    """
    finite = times[np.isfinite(times)]
    out = [""] * len(windows)
    if len(finite) == 0 or len(windows) == 0:
        return out
    first, last = _day(finite.min()), _day(finite.max())
    starts = windows["start"].to_numpy(np.int64)
    ends = windows["end"].to_numpy(np.int64)
    late_start = first > _day(starts[0])
    early_end = last < _day(ends[-1] - 1)
    if len(windows) == 1 and late_start and early_end:
        out[0] = f"{first} to {last}"
        return out
    if late_start:
        out[0] = f"from {first}"
    if early_end:
        out[-1] = f"to {last}"
    return out


def window_names(windows: pd.DataFrame) -> list[str]:
    """Each window's label, with its partial coverage: ``"1998-03 (partial: to 1998-03-07)"``.

    ``windows`` is ``Monitoring.windows`` (its ``partial`` column, ``partial_windows``).
    """
    partial = windows["partial"] if "partial" in windows else [""] * len(windows)
    return [f"{label} (partial: {p})" if p else str(label)
            for label, p in zip(windows["label"], partial, strict=True)]  # fmt: skip
