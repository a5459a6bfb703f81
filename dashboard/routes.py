"""The dashboard's pages, in navigation order (read by app.py and by the tests)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """One page: its script (relative to ``dashboard/``), title and Material icon."""

    path: str
    title: str
    icon: str


PAGES: tuple[Route, ...] = (
    Route("views/data_profile.py", "Data profile", ":material/table_chart:"),
)
