"""The dashboard's pages, in navigation order (read by app.py and by the tests).

``PAGES`` for an analysis; ``kept_routes`` for a run whose ratings stayed in Spark
(``engine.saved.kept``), read only: ``KEPT_PAGES``, and the User profile, Recommendations and
Compare versions pages when the run stored its user side (``engine.saved.user_side``). It
has no held-out predictions by time, so no Over time page.
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
#: The user pages, shared by both routes: on a kept run they read one user at a time.
USER_PAGES: tuple[Route, ...] = PAGES[2:4]
#: The Compare versions page, shared by both routes: on a kept run it reads the window's users.
COMPARE_PAGE: Route = PAGES[-1]


def kept_routes(has_user_side: bool) -> tuple[Route, ...]:
    """Return a kept run's pages: ``KEPT_PAGES``, and with a user side the shared pages.

    ``USER_PAGES`` come after the Model page and ``COMPARE_PAGE`` last.
    """
    if not has_user_side:
        return KEPT_PAGES
    return (*KEPT_PAGES[:2], *USER_PAGES, *KEPT_PAGES[2:], COMPARE_PAGE)
