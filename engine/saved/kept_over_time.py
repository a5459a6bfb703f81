"""The data of a run kept in Spark per calendar window, read from its user side without Spark.

An analysis's Over time page (``engine.monitor``) follows three things per window: the data,
the model quality and the fairness. The last two need a model retrained on the ratings before
each window, which a run kept in Spark does not make. The first needs only the ratings, and
the run's user side holds them (``engine.saved.user_side``): ``data_over_time`` reads its
parts one at a time into ``engine.monitor_data.WindowCounts`` (a part never splits a user),
and returns the same per-window table and rating distribution as ``monitor`` gives for the
same ratings (``Monitoring.data``, ``Monitoring.distribution``), with the same windows,
"insufficient data" rule and partial windows. Memory: one part, and the (window, item) and
(window, rating value) counts.

The windows span the run's first and last rating (``time_span``): its profile's, or for a
run made by ``update`` the merged data's (``SavedKeptRun.derived_from["after"]``), so the
batch's ratings fall in the latest windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.errors import ConfigError
from engine.monitor import MonitorConfig
from engine.monitor_data import WindowCounts, window_status
from engine.monitor_windows import (
    assign_windows,
    check_window,
    make_windows,
    partial_windows,
    window_names,
)
from engine.saved.kept import SavedKeptRun


@dataclass(frozen=True)
class DataOverTime:
    """A kept run's data per window.

    Attributes
    ----------
    window
        The window kind (``engine.monitor_windows.WINDOW_KINDS``).
    windows
        ``window, label, start, end, status, reason, partial`` (as ``Monitoring.windows``).
    data
        ``engine.monitor_data.data_table``'s columns, one row per window.
    distribution
        ``window, label, rating, share`` (``engine.monitor_data.distribution``).
    notes
        Sentences: ratings without a time, partial windows.
    """

    window: str
    windows: pd.DataFrame
    data: pd.DataFrame
    distribution: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def window_names(self) -> list[str]:
        """Each window's label, with its partial coverage (``window_names``)."""
        return window_names(self.windows)


def time_span(run: SavedKeptRun) -> tuple[int | None, int | None]:
    """Return the run's first and last rating time (epoch seconds; ``None``: no time).

    An updated run's are the merged data's (``derived_from["after"]``).
    """
    derived = run.derived_from
    if derived:
        return derived["after"]["first_timestamp"], derived["after"]["last_timestamp"]
    return run.parts.profile.first_timestamp, run.parts.profile.last_timestamp


def data_over_time(
    run: SavedKeptRun, window: str = "month", config: MonitorConfig | None = None
) -> DataOverTime:
    """Read the run's ratings per ``window`` from its user side (module docstring).

    ``config``: its ``min_ratings`` and ``min_group_size`` mark windows "insufficient data",
    as ``monitor`` does.

    Raises
    ------
    ConfigError
        An unknown window; the run has no user side (saved with ``--no-user-side``), or no
        rating with a time.
    """
    config = config or MonitorConfig()
    window = check_window(window)
    side = run.users
    if side is None:
        raise ConfigError(
            "This run kept in Spark was saved without its user side (--no-user-side), so its "
            "ratings by time are not stored: run it again without --no-user-side to follow "
            "its data over time."
        )
    first, last = time_span(run)
    if first is None or last is None:
        raise ConfigError(
            f"Monitoring over time needs a time for each rating, and {side.name} has none: "
            "load a timestamp column (--columns timestamp=NAME) when running it."
        )
    span = np.array([first, last], dtype=np.float64)
    windows = make_windows(span, window)
    counts = WindowCounts(len(windows), len(side.item_ids))
    untimed = 0
    for number in range(len(side.bounds)):
        part = side.part(number)
        times = part["timestamp"].to_numpy("float64", na_value=np.nan)
        untimed += int(np.isnan(times).sum())
        counts.add(part["u"].to_numpy(), part["i"].to_numpy(), part["rating"].to_numpy(),
                   assign_windows(times, windows))  # fmt: skip
    table = counts.table(windows)
    status, reason = window_status(table, config.min_ratings, config.min_group_size)
    windows = windows.assign(status=status, reason=reason,
                             partial=partial_windows(span, windows))  # fmt: skip
    notes = []
    if untimed:
        notes.append(f"{untimed:,} ratings have no time and take no part in monitoring.")
    partial = [n for n, p in zip(window_names(windows), windows["partial"], strict=True) if p]
    if partial:
        notes.append("Partial windows (the data covers part of their calendar period): "
                     + ", ".join(partial) + ".")  # fmt: skip
    return DataOverTime(window, windows, table, counts.distribution(windows), notes)


def distribution_table(result: DataOverTime) -> pd.DataFrame:
    """Return the rating distribution as one row per window, a column per rating value (%).

    Columns ``window`` (its name, partial coverage said) and one per rating value, each the
    share of the window's ratings with that value in percent (one decimal); windows without
    a rating are left out.
    """
    wide = result.distribution.pivot(index="window", columns="rating", values="share")
    names = dict(zip(result.windows["window"], result.window_names(), strict=True))
    out = (wide * 100).round(1)
    out.columns = [f"{value:g}" for value in out.columns]
    out.insert(0, "window", [names[w] for w in out.index])
    return out.reset_index(drop=True)
