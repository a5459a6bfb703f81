"""Dashboard entry point: `streamlit run dashboard/app.py`. It only routes."""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path, not the repo root.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from dashboard import state  # noqa: E402
from dashboard.components import page_failed, session_sidebar  # noqa: E402
from dashboard.routes import PAGES, kept_routes  # noqa: E402
from engine import EngineError  # noqa: E402
from engine.checks import blas_threads  # noqa: E402
from engine.text import literal_markdown  # noqa: E402

# One BLAS thread per numpy call: sessions run side by side, and on a 2-core machine numpy's
# default threads fought each other (a what-if edit's p95 went from 139 ms to 518 ms).
# RECSYS_BLAS_THREADS raises it (engine.checks.blas_threads; the CLI uses the same).
threadpool_limits(limits=blas_threads())

# A local favicon: with none, the browser fetches the page's Material icon from Google's font
# servers (fonts.gstatic.com), and the dashboard must not contact anything outside.
st.set_page_config(
    page_title="Recommender audit", layout="wide", page_icon=str(ROOT / "dashboard" / "favicon.png")
)
try:
    kept = state.kept_run()  # a run kept in Spark: read only
    routes = PAGES if kept is None else kept_routes(kept.users is not None)
except EngineError as error:  # the run named by --analysis OUT does not open
    st.error(literal_markdown(error))
    st.stop()
pages = [
    st.Page(route.path, title=route.title, icon=route.icon, default=index == 0)
    for index, route in enumerate(routes)
]
page = st.navigation(pages)
try:
    state.keep_session_in_url()
    session_sidebar()
    page.run()
except Exception as error:  # a failing page must not take the others down (st.stop passes)
    page_failed(page.title, error)
