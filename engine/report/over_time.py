"""The report's optional "Over time" section, rendered from an ``engine.monitor.Monitoring``.

``engine.report.html.render_html(report, monitoring)`` appends it when a monitoring is
given. It holds aggregates only: per-window counts, values with intervals, the flagged
changes in words (provider exposure and gap changes among them), the flagged fairness gaps
per window, and the charts of the Over time page (``engine.charts.monitor_*``;
``engine.monitor_charts``: provider exposure share vs catalogue share and share of ratings
per window; each group's RMSE / NDCG@k ratio to the reference, for the user attributes
with a flagged gap or gap change). Every data string is escaped with ``html.escape``; chart
labels are already literal.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from engine import charts, monitor_charts

if TYPE_CHECKING:
    from engine.monitor import Monitoring

#: Chart placeholder maker of the HTML renderer: ``chart(figure, literal=True)``.
ChartMaker = Callable[..., str]
#: The per-window model quality shown, with headers.
_QUALITY = {"label": "window", "n_train": "trained on", "n_test": "tested",
            "n_cold_ratings": "cold-start ratings", "rmse": "RMSE", "ndcg": "NDCG@k"}  # fmt: skip


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "n/a" if pd.isna(value) else f"{value:.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def _table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in columns.values())
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(row[c])}</td>" for c in columns) + "</tr>"
        for row in frame.to_dict("records")
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def over_time_section(monitoring: Monitoring, chart: ChartMaker) -> str:
    """Return the ``<section id="over_time">`` HTML of ``monitoring`` (module docstring)."""
    m = monitoring
    labels = m.windows["label"].astype(str)
    small = labels[m.windows["status"] != "ok"].tolist()
    tested = int(m.changes["p_value"].notna().sum()) if len(m.changes) else 0
    band = m.config.band
    intro = (
        f"<p>{len(m.windows)} windows ({escape(m.window)}, UTC) from {escape(labels.iloc[0])} to "
        f"{escape(labels.iloc[-1])}; baseline {escape(labels.iloc[m.baseline])}; insufficient "
        f"data: {escape(', '.join(small)) if small else 'none'}. Each window is predicted by "
        "an SVD trained on every rating before it starts. The rating mean, RMSE and NDCG@k, "
        "for all users and per user group, and each provider's exposure share in the top-k "
        "lists and share of ratings, are compared with the previous window and with "
        f"the baseline: {tested:,} changes tested; a change is flagged when its ratio leaves "
        f"[{band[0]:g}, {band[1]:g}] and it is significant after Holm's correction "
        "(unpaired permutation test over users; provider shares: normal approximation of "
        "the user bootstrap). In each window, each user group's RMSE and NDCG@k are "
        "compared with the largest group's, as the audit does, and a change of that gap "
        "is tested too.</p>"
    )
    flagged = (
        "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in m.sentences) + "</ul>"
        if m.sentences
        else "<p>No change between windows is flagged.</p>"
    )
    figures: list[go.Figure] = [charts.monitor_volume(m.data, m.windows)]
    figures += [charts.monitor_series(m.values, m.changes, q) for q in ("rating_mean", "rmse",
                                                                        "ndcg")]  # fmt: skip
    for quantity in ("exposure", "rating_share"):
        if (m.values["quantity"] == quantity).any():
            figures.append(monitor_charts.provider_shares(m.values, m.changes, m.exposure,
                                                          quantity))  # fmt: skip
    gaps = (
        "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in m.gap_sentences) + "</ul>"
        if m.gap_sentences
        else "<p>No gap between user groups is flagged in any window.</p>"
    )
    shown = set(m.fairness.loc[m.fairness["tier"] == "flagged", "grouping"])
    if len(m.gap_changes):
        shown |= set(m.gap_changes.loc[m.gap_changes["tier"] == "flagged", "grouping"])
    gap_figures = [monitor_charts.fairness_gaps(m.fairness, q, g, band)
                   for g in sorted(shown) for q in ("rmse", "ndcg")]  # fmt: skip
    notes = "".join(f'<p class="meta">{escape(n)}</p>' for n in m.notes)
    return (
        '<section id="over_time"><h2>Over time</h2>' + intro + "<h3>Flagged changes</h3>"
        + flagged + "".join(chart(f, literal=True) for f in figures)
        + "<h3>Fairness gaps per window</h3>" + gaps
        + "".join(chart(f, literal=True) for f in gap_figures)
        + "<h3>Model quality per window</h3>" + _table(m.quality, _QUALITY) + notes + "</section>"
    )  # fmt: skip
