"""The dashboard's pages, in navigation order (read by app.py and by the tests).

``PAGES`` for an analysis; ``KEPT_PAGES`` for a run whose ratings stayed in Spark
(``engine.saved.kept``), read only: it has no ratings, model or predictions for the others.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    """One page: its script (relative to ``dashboard/``), title and Material icon."""

    path: str
    title: str
    icon: str


PAGES: tuple[Route, ...] = (
    Route("views/data.py", "Data", ":material/table_chart:"),
    Route("views/model.py", "Model", ":material/model_training:"),
    Route("views/user.py", "User profile", ":material/person:"),
    Route("views/recommendations.py", "Recommendations", ":material/recommend:"),
    Route("views/audit.py", "Bias audit", ":material/balance:"),
    Route("views/over_time.py", "Over time", ":material/timeline:"),
    Route("views/report.py", "Report", ":material/description:"),
    Route("views/compare.py", "Compare versions", ":material/compare_arrows:"),
)
KEPT_PAGES: tuple[Route, ...] = (
    Route("views/kept_data.py", "Data", ":material/table_chart:"),
    Route("views/kept_model.py", "Model", ":material/model_training:"),
    Route("views/kept_audit.py", "Bias audit", ":material/balance:"),
    Route("views/report.py", "Report", ":material/description:"),
)
