"""The dashboard's pages, in navigation order (read by app.py and by the tests).

``PAGES`` for an analysis; ``kept_routes`` for a run whose ratings stayed in Spark
(``engine.saved.kept``), read only: ``KEPT_PAGES``, and the User profile, Recommendations,
Over time (its data per window only: ``engine.saved.kept_over_time``) and Compare versions
pages when the run stored its user side (``engine.saved.user_side``).
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
#: A kept run's Over time page: its data per window, read from the user side.
KEPT_OVER_TIME: Route = Route("views/kept_over_time.py", "Over time", ":material/timeline:")


def kept_routes(has_user_side: bool) -> tuple[Route, ...]:
    """Return a kept run's pages: ``KEPT_PAGES``, and with a user side the pages that read it.

    In the analysis's order: ``USER_PAGES`` after the Model page, ``KEPT_OVER_TIME`` after
    the Bias audit and ``COMPARE_PAGE`` last.
    """
    if not has_user_side:
        return KEPT_PAGES
    return (*KEPT_PAGES[:2], *USER_PAGES, KEPT_PAGES[2], KEPT_OVER_TIME, KEPT_PAGES[3],
            COMPARE_PAGE)  # fmt: skip
