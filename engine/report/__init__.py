"""Fairness report: one ``Report`` model rendered as HTML, PDF, JSON and CSV.

``build_report`` gathers the audit and its context; ``render_html`` / ``render_pdf`` /
``render_json`` / ``render_csv`` turn it into bytes; ``write_report`` writes the chosen
formats into a folder (``report.html``, ``report.pdf``, ``report.json``, ``metrics.csv``).
"""

from engine.report.build import SECTIONS, Report, build_report
from engine.report.findings import Finding
from engine.report.formats import SCHEMA_PATH, neutralise_formula, render_csv, render_json
from engine.report.html import render_html
from engine.report.pdf import ChromiumNotFound, find_chromium, render_pdf
from engine.report.write import FORMATS, render, write_report

__all__ = [
    "FORMATS",
    "SCHEMA_PATH",
    "SECTIONS",
    "ChromiumNotFound",
    "Finding",
    "Report",
    "build_report",
    "find_chromium",
    "neutralise_formula",
    "render",
    "render_csv",
    "render_html",
    "render_json",
    "render_pdf",
    "write_report",
]
