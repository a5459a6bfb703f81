"""Fairness report: one ``Report`` model rendered as HTML, PDF, JSON and CSV.

``build_report`` gathers the audit and its context; ``render_html`` / ``render_pdf`` /
``render_json`` / ``render_csv`` turn it into bytes; ``write_report`` writes the chosen
formats into a folder (``report.html``, ``report.pdf``, ``report.json``, ``metrics.csv``).

Every name is imported on first use (PEP 562 ``__getattr__``): building a report or
writing its JSON does not load the HTML renderer's plotly and shap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.lazy import lazy_exports

if TYPE_CHECKING:
    from engine.report.build import SECTIONS, Report, build_report
    from engine.report.findings import Finding
    from engine.report.formats import SCHEMA_PATH, neutralise_formula, render_csv, render_json
    from engine.report.html import render_html
    from engine.report.pdf import ChromiumNotFound, find_chromium, render_pdf
    from engine.report.reading import AuditReading, display_rows, read_audit
    from engine.report.summary import SummaryItem, executive_summary
    from engine.report.write import FORMATS, render, write_report

#: Each public name and the module (under ``engine.report``) that defines it.
_SOURCES: dict[str, str] = {
    "AuditReading": "reading",
    "FORMATS": "write",
    "SCHEMA_PATH": "formats",
    "SECTIONS": "build",
    "ChromiumNotFound": "pdf",
    "Finding": "findings",
    "Report": "build",
    "SummaryItem": "summary",
    "build_report": "build",
    "display_rows": "reading",
    "executive_summary": "summary",
    "find_chromium": "pdf",
    "neutralise_formula": "formats",
    "read_audit": "reading",
    "render": "write",
    "render_csv": "formats",
    "render_html": "html",
    "render_json": "formats",
    "render_pdf": "pdf",
    "write_report": "write",
}

__all__ = [
    "FORMATS",
    "SCHEMA_PATH",
    "SECTIONS",
    "AuditReading",
    "ChromiumNotFound",
    "Finding",
    "Report",
    "SummaryItem",
    "build_report",
    "display_rows",
    "executive_summary",
    "find_chromium",
    "neutralise_formula",
    "read_audit",
    "render",
    "render_csv",
    "render_html",
    "render_json",
    "render_pdf",
    "write_report",
]


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
