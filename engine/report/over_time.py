"""The report's optional "Over time" section, rendered from an ``engine.monitor.Monitoring``.

``engine.report.html.render_html(report, monitoring)`` appends it when a monitoring is
given. It holds aggregates only: per-window counts, values with intervals, the flagged
changes in words (provider exposure and gap changes among them), the flagged fairness gaps
per window (one line per quantity and group, every sentence under a closed ``<details>``),
what of each attribute's gaps was tested (``engine.monitor_fairness.gap_summary``), and the
charts of the Over time page (``engine.monitor_charts``: data volume, rating mean / RMSE /
NDCG@k, provider exposure share vs catalogue share and share of ratings per window; each
group's RMSE / NDCG@k ratio to the reference, for the user attributes
with a flagged gap or gap change). Every data string is escaped with ``html.escape``; chart
labels are already literal.

``over_time_json(monitoring)`` is the same section as plain data: the report JSON's
optional ``over_time`` object (schema 2.6; ``engine.report.formats``). Aggregates only
(per-window counts and values, no user id): the window kind, the baseline and the
sentence saying why, the settings, per window its data row and model-quality row (without
the wall-clock ``fit_seconds``, so two runs give the same JSON), the flagged and notable
sentences, the flagged and notable changes, the flagged gaps and gap changes with their
numbers (``ROW_FIELDS``), the provider exposure table and the notes. The report CSV does
not carry the monitoring (``monitor``'s ``monitor.csv`` does).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

from engine import monitor_charts

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


def plain_table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    """Return an HTML table of ``frame``'s ``columns`` (name -> heading); floats 3 decimals."""
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
    names = m.window_names()
    tested = int(m.changes["p_value"].notna().sum()) if len(m.changes) else 0
    band = m.config.band
    intro = (
        f"<p>{len(m.windows)} windows ({escape(m.window)}, UTC) from {escape(names[0])} to "
        f"{escape(names[-1])}; baseline {escape(labels.iloc[m.baseline])}; insufficient "
        f"data: {escape(', '.join(small)) if small else 'none'}. Each window is predicted by "
        "an SVD trained on every rating before it starts. The rating mean, RMSE and NDCG@k, "
        "for all users and per user group, and each provider's exposure share in the top-k "
        "lists and share of ratings, are compared with the previous window and with "
        "the baseline (the window right after the baseline only with the previous window: "
        f"the same comparison, tested once): {tested:,} changes tested; a change is flagged "
        "when its ratio leaves "
        f"[{band[0]:g}, {band[1]:g}] and it is significant after Holm's correction "
        "(unpaired permutation test over users; provider shares: normal approximation of "
        "the user bootstrap). In each window, each user group's RMSE and NDCG@k are "
        "compared with the largest group's, as the audit does, and a change of that gap "
        "is tested too.</p>"
    )
    flagged = (
        _grouped(m.flag_summary(), m.sentences, "flagged changes")
        if m.sentences
        else "<p>No change between windows is flagged.</p>"
    )
    size = m.config.min_group_size
    figures: list[go.Figure] = [monitor_charts.volume(m.data, m.windows)]
    figures += [monitor_charts.series(m.values, m.changes, q, "all", size, m.windows)
                for q in ("rating_mean", "rmse", "ndcg")]  # fmt: skip
    for quantity in ("exposure", "rating_share"):
        if (m.values["quantity"] == quantity).any():
            figures.append(monitor_charts.provider_shares(m.values, m.changes, m.exposure,
                                                          quantity, size, m.windows))  # fmt: skip
    summary = "".join(f"<p>{escape(s)}</p>" for s in m.gap_summary())
    gaps = summary + (
        _grouped(m.gap_flag_summary(), m.gap_sentences, "flagged gaps") if m.gap_sentences
        else ""
    )  # fmt: skip
    shown = set(m.fairness.loc[m.fairness["tier"] == "flagged", "grouping"])
    if len(m.gap_changes):
        shown |= set(m.gap_changes.loc[m.gap_changes["tier"] == "flagged", "grouping"])
    gap_figures = [monitor_charts.fairness_gaps(m.fairness, q, g, band, m.windows)
                   for g in sorted(shown) for q in ("rmse", "ndcg")
                   if monitor_charts.has_gaps(m.fairness, q, g)]  # fmt: skip
    notes = "".join(f'<p class="meta">{escape(n)}</p>' for n in m.notes)
    return (
        '<section id="over_time"><h2>Over time</h2>' + intro + "<h3>Flagged changes</h3>"
        + flagged + "".join(chart(f, literal=True) for f in figures)
        + "<h3>Fairness gaps per window</h3>" + gaps
        + "".join(chart(f, literal=True) for f in gap_figures)
        + "<h3>Model quality per window</h3>" + plain_table(m.quality, _QUALITY)
        + notes + "</section>"
    )  # fmt: skip


def _grouped(lines: list[str], sentences: list[str], what: str) -> str:
    """Return the grouped lines as a list, then every sentence in a closed ``<details>``."""
    return (
        "<ul>" + "".join(f"<li>{escape(s)}</li>" for s in lines) + "</ul>"
        f"<details><summary>All {len(sentences)} {escape(what)}, one by one</summary><ul>"
        + "".join(f"<li>{escape(s)}</li>" for s in sentences) + "</ul></details>"
    )  # fmt: skip


#: Settings of the monitoring that the JSON carries (``engine.monitor.MonitorConfig``).
SETTINGS = ("k", "threshold", "min_ratings", "min_group_size", "bootstrap", "permutations",
            "alpha", "band")  # fmt: skip
#: Columns of a window's model-quality row in the JSON (``fit_seconds``, wall time, left out).
QUALITY_FIELDS = ("n_train", "train_latest", "n_test", "n_cold_ratings", "n_cold_users",
                  "n_users_ranked", "rmse", "ndcg")  # fmt: skip
#: Fields of each change, gap and gap change in the JSON. ``comparison``: "previous" or
#: "baseline" for a change or gap change, "reference group" for a gap; ``other``: the other
#: window's label, or the reference group. ``value`` / ``other_value``: the quantity in the
#: two windows (change), the group's and the reference's (gap), the gap ratio in the two
#: windows (gap change). ``ratio``: value / other value (change, gap), ratio(w) / ratio(other)
#: (gap change). ``ci_of``: what ``ci_low``, ``ci_high`` bound ("difference": value - other
#: value; "ratio"). ``p_is_bound``: the permutation p is at its floor (a bound; ``None`` for
#: a gap change, whose p is a normal approximation).
ROW_FIELDS = ("kind", "quantity", "grouping", "group", "label", "comparison", "other",
              "reference_group", "n_users", "value", "other_value", "ratio", "ci_of", "ci_low",
              "ci_high", "p_value", "p_is_bound", "p_adjusted", "tier", "sentence")  # fmt: skip


def baseline_label(monitoring: Monitoring) -> str:
    """Return the label of the monitoring's baseline window (``"2020-02"``)."""
    return str(monitoring.windows["label"].iloc[monitoring.baseline])


def describe(monitoring: Monitoring) -> str:
    """Return "month windows, baseline 2020-02": what the report's Over time section shows."""
    return f"{monitoring.window} windows, baseline {baseline_label(monitoring)}"


def baseline_reason(monitoring: Monitoring) -> str:
    """Return the sentence saying why the baseline is the baseline.

    The default rule's sentence (``engine.monitor``, among the notes), else the analyst's
    choice (``MonitorConfig.baseline``).
    """
    label = baseline_label(monitoring)
    for note in monitoring.notes:
        if note.startswith(f"Baseline window {label} "):
            return note
    chosen = monitoring.config.baseline
    return f"Baseline window {label}: chosen in the settings (baseline {chosen!r})."


def _rows(frame: pd.DataFrame, kind: str, renamed: dict[str, str], fixed: dict[str, Any]) -> list:
    out = frame.rename(columns=renamed).assign(kind=kind, **fixed)
    return out.reindex(columns=list(ROW_FIELDS)).astype(object).to_dict("records")


def _severe_first(frame: pd.DataFrame, tiers: tuple[str, ...]) -> pd.DataFrame:
    chosen = frame[frame["tier"].isin(tiers)] if len(frame) else frame
    return chosen.sort_values("severity", ascending=False, kind="stable")


def over_time_json(monitoring: Monitoring) -> dict[str, Any]:
    """Return the "Over time" section as JSON-ready data (the report JSON's ``over_time``).

    NaN values stay NaN here; ``engine.report.formats`` writes them as ``null``.
    """
    m = monitoring
    config = m.config
    quality = m.quality.set_index("window")
    data_fields = [c for c in m.data.columns if c not in ("window", "label")]
    data = m.data.set_index("window")
    windows = []
    for row in m.windows.to_dict("records"):
        w = row["window"]
        windows.append({
            "window": w, "label": row["label"], "start": row["start"], "end": row["end"],
            "status": row["status"], "reason": row["reason"],
            "data": {c: data.at[w, c] for c in data_fields},
            "quality": ({c: quality.at[w, c] for c in QUALITY_FIELDS} if w in quality.index
                        else None),
        })  # fmt: skip
    changes = _severe_first(m.changes, ("flagged", "notable"))
    gaps = _severe_first(m.fairness, ("flagged",))
    gap_changes = _severe_first(m.gap_changes, ("flagged", "notable"))
    notable = pd.concat([changes[changes["tier"] == "notable"],
                         gap_changes[gap_changes["tier"] == "notable"]])  # fmt: skip
    notable = notable.sort_values("severity", ascending=False, kind="stable")
    between = {"other_label": "other"}
    return {
        "window": m.window,
        "baseline": baseline_label(m),
        "baseline_reason": baseline_reason(m),
        "settings": {name: getattr(config, name) for name in SETTINGS},
        "windows": windows,
        "flagged": list(m.sentences),
        "notable": notable["sentence"].tolist(),
        "flagged_gaps": list(m.gap_sentences),
        "changes": _rows(changes, "change", between,
                         {"reference_group": None, "ci_of": "difference"}),
        "gaps": _rows(gaps, "gap", {"reference_value": "other_value"},
                      {"comparison": "reference group", "other": gaps["reference_group"],
                       "ci_of": "ratio"}),
        "gap_changes": _rows(gap_changes, "gap change",
                             {"ratio": "value", "other_ratio": "other_value",
                              "ratio_change": "ratio", "other_label": "other"},
                             {"ci_of": "ratio"}),
        "exposure": m.exposure.astype(object).to_dict("records"),
        "notes": list(m.notes),
    }  # fmt: skip
