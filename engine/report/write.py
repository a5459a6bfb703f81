"""Render a report in the chosen formats, to bytes or into a folder."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable
from pathlib import Path

from engine.errors import ConfigError
from engine.report.build import Report
from engine.report.formats import render_csv, render_json
from engine.report.html import render_html
from engine.report.pdf import render_pdf

#: format -> file name written by ``write_report``.
FORMATS: dict[str, str] = {
    "html": "report.html",
    "json": "report.json",
    "csv": "metrics.csv",
    "pdf": "report.pdf",
}

#: file name -> media type, for downloads.
MEDIA_TYPES: dict[str, str] = {
    "report.html": "text/html",
    "report.json": "application/json",
    "metrics.csv": "text/csv",
    "report.pdf": "application/pdf",
}


def parse_formats(formats: str | Iterable[str]) -> list[str]:
    """Turn ``"html,pdf"`` or ``["html", "pdf"]`` into a checked list in ``FORMATS`` order."""
    wanted = formats.split(",") if isinstance(formats, str) else list(formats)
    wanted = [f.strip().lower() for f in wanted if f.strip()]
    unknown = sorted(set(wanted) - set(FORMATS))
    if unknown or not wanted:
        raise ConfigError(
            f"Unknown report format(s) {', '.join(unknown) or '(none given)'}: choose from "
            f"{', '.join(FORMATS)}, e.g. --format html,json."
        )
    return [f for f in FORMATS if f in wanted]


def render(report: Report, formats: str | Iterable[str]) -> dict[str, bytes]:
    """Return ``{file name: bytes}`` for each chosen format; the HTML is rendered once."""
    chosen = parse_formats(formats)
    out: dict[str, bytes] = {}
    html = render_html(report) if {"html", "pdf"} & set(chosen) else ""
    for name in chosen:
        if name == "html":
            out[FORMATS[name]] = html.encode("utf-8")
        elif name == "pdf":
            out[FORMATS[name]] = render_pdf(html)
        elif name == "json":
            out[FORMATS[name]] = render_json(report)
        else:
            out[FORMATS[name]] = render_csv(report)
    return out


def write_report(report: Report, folder: str | Path, formats: str | Iterable[str]) -> list[Path]:
    """Write the chosen formats into ``folder`` (created if needed); return the paths."""
    return write_files(render(report, formats), folder)


def write_files(files: dict[str, bytes], folder: str | Path) -> list[Path]:
    """Write ``{file name: bytes}`` into ``folder`` (created if needed); return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in files.items():
        path = folder / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def zip_files(files: dict[str, bytes]) -> bytes:
    """Return one zip archive (deflated) holding ``{file name: bytes}``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()
