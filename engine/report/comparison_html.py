"""The comparison report as one self-contained HTML page (``engine.report.comparison``).

Rendered from the comparison's JSON document, so the HTML, PDF and JSON cannot disagree.
plotly.js is inlined once (works offline); every data string is escaped
(``html.escape``; chart labels with ``engine.text.literal_plotly``). Sections: what was
compared, summary, per-group charts (difference B - A with its 95% interval per group,
coloured by verdict; one chart per metric, and per item grouping for exposure), the rows
table, method and notes.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from engine.compare.text import INTERVAL_ONLY, display_rows, interval_only
from engine.report.html import _CSS, _JSON_ESCAPES, _PLOT_CONFIG, _Charts, table
from engine.text import literal_plotly

#: Verdict -> marker colour of the charts (insufficient data has no interval: not drawn).
VERDICT_COLOURS = {
    "improved": "#2a9d8f", "worsened": "#e63946", "higher": "#457b9d", "lower": "#f4a261",
    "no significant change": "#8d99ae", "not tested": "#c8c8c8",
}  # fmt: skip


#: What the difference charts show (under each, on the page and in the report).
CHART_CAPTION = (
    "Each point is a group's difference B - A with its 95% interval, coloured by verdict "
    "(after Holm's correction); an open circle: the interval excludes 0 but the test is not "
    "significant after Holm. Groups with insufficient data, and item groups neither version "
    "lists, are not drawn."
)
#: The trace of the rows whose interval excludes 0 but whose Holm-adjusted test is not
#: significant: the colour of "no significant change", an open marker.
INTERVAL_ONLY_TRACE = "no significant change (interval excludes 0)"


def difference_chart(rows: pd.DataFrame, title: str) -> go.Figure:
    """Difference B - A per group with its 95% interval, one trace (colour) per verdict.

    ``rows``: comparison rows of one metric (and, for exposure, one item grouping). Left
    out: rows of "insufficient data", and item groups neither version listed (exposure A
    and B both 0: nothing to compare; a group's NDCG of 0 under both is drawn). Rows
    whose interval excludes 0 without a significant test are their own trace
    (``INTERVAL_ONLY_TRACE``, open markers); a dashed line marks no change. Exposure is in
    percentage points (as ``shown_values``). Labels literal.
    """
    exposure = rows["metric"].astype(str).str.startswith("exposure")
    unlisted = exposure & (rows["value_a"] == 0) & (rows["value_b"] == 0)
    chosen = rows[(rows["verdict"] != "insufficient data") & ~unlisted]
    only = np.array([interval_only(row) for _, row in chosen.iterrows()], dtype=bool)
    # exposure in percentage points, as its table rows and sentences (``shown_values``)
    points = bool(len(rows)) and bool(exposure.all())
    scale = 100.0 if points else 1.0
    fig = go.Figure()
    traces = [(verdict, chosen[(chosen["verdict"] == verdict).to_numpy() & ~only], colour,
               "circle") for verdict, colour in VERDICT_COLOURS.items()]  # fmt: skip
    traces.append((INTERVAL_ONLY_TRACE, chosen[only], VERDICT_COLOURS["no significant change"],
                   "circle-open"))  # fmt: skip
    for name, part, colour, symbol in traces:
        if part.empty:
            continue
        diff = scale * part["difference"].to_numpy(float)
        labels = [literal_plotly(g if grouping == g else f"{grouping} = {g}")
                  for grouping, g in zip(part["grouping"], part["group"], strict=True)]  # fmt: skip
        fig.add_trace(go.Scatter(
            x=diff, y=labels, mode="markers", name=literal_plotly(name),
            marker={"color": colour, "size": 9, "symbol": symbol},
            error_x={"type": "data", "symmetric": False, "color": colour,
                     "array": np.nan_to_num(scale * part["ci_high"].to_numpy(float) - diff),
                     "arrayminus": np.nan_to_num(diff - scale * part["ci_low"].to_numpy(float))},
            hovertemplate="%{y}: %{x:+.1f} points" if points else "%{y}: %{x:+.4f}",
        ))  # fmt: skip
    order = [literal_plotly(g if k == g else f"{k} = {g}")
             for k, g in zip(chosen["grouping"], chosen["group"], strict=True)]  # fmt: skip
    fig.add_vline(x=0, line_dash="dash", line_color="grey")
    fig.update_layout(
        title=literal_plotly(title),
        xaxis_title="difference B - A" + (" (percentage points)" if points else ""),
        yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": order},
        height=max(300, 24 * len(order) + 140), margin={"l": 10, "r": 10, "t": 50, "b": 40},
        legend_title_text="verdict", showlegend=True,
    )  # fmt: skip
    return fig


def _charts(rows: pd.DataFrame, chart: _Charts) -> str:
    parts = []
    for metric, block in rows.groupby("metric", sort=False):
        if (block["verdict"] == "insufficient data").all():
            continue
        title = f"{metric}: B - A per group (95% interval)"
        if metric.startswith("exposure"):
            title = f"{metric} share: B - A per item group (95% interval)"
        parts.append(chart(difference_chart(block, title), literal=True))
    return "".join(parts)


def _shown(rows: pd.DataFrame, min_group_size: int | None) -> pd.DataFrame:
    """Return the rows as shown (``engine.compare.text.display_rows``: text, headers)."""
    return display_rows(rows, min_group_size)


def _version(label: str, v: dict[str, Any]) -> str:
    span = (f"{v['first_rating'][:10]} to {v['last_rating'][:10]}" if v["first_rating"]
            else "no timestamps")  # fmt: skip
    return (
        f"<tr><th>{label}</th><td>{escape(v['name'])}</td><td>{escape(v['dataset'])}</td>"
        f"<td><code>{escape(v['fingerprint'][:16])}</code></td>"
        f"<td><code>{escape(v['model_key'][:16])}</code></td><td>{escape(v['model'])}</td>"
        f"<td>{v['ratings']:,}</td>"
        f"<td>{v['users']:,}</td><td>{v['items']:,}</td><td>{escape(span)}</td></tr>"
    )


def _compared(document: dict[str, Any]) -> str:
    c, counts = document["compared"], document["counts"]
    w = c["window"]
    dates = (f"from {w['first_rating'][:10]} to {w['last_rating'][:10]}" if w["first_rating"]
             else "without timestamps")  # fmt: skip
    excluded = ", ".join(f"{n:,} {r}" for r, n in counts["pairs_excluded"].items() if n)
    head = "".join(f"<th>{h}</th>" for h in ("", "name", "dataset", "data fingerprint",
                                              "model key", "model", "ratings", "users",
                                              "items",
                                              "training ratings"))  # fmt: skip
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{_version('A', c['a'])}"
        f"{_version('B', c['b'])}</tbody></table>"
        + (f"<p>{escape(c['relation'])}</p>" if c["relation"] else "")
        + f"<p>Window: {escape(w['name'])}, {w['ratings']:,} ratings of {w['users']:,} users "
        f"and {w['items']:,} items {escape(dates)}. "
        f"{counts['pairs_used']:,} ratings scored by both versions ({counts['users_rmse']:,} "
        f"users; excluded: {escape(excluded or 'none')}); {_fallback(counts)} NDCG@k over "
        f"{counts['users_ndcg']:,} users with a relevant window item (rating >= "
        f"{counts['relevance_threshold']:g}); exposure over {counts['users_exposure']:,} "
        "users.</p>" + _known(counts)
    )


def _known(counts: dict[str, Any]) -> str:
    """Users known to A or B vs to neither (a paragraph; "" when every user is known)."""
    if not counts.get("users_neither"):
        return ""
    return (
        f"<p>{counts['users_known']:,} users ({counts['pairs_known']:,} ratings) are known to A "
        f"or B and can differ by what a version learned; {counts['users_neither']:,} users "
        f"({counts['pairs_neither']:,} ratings) are known to neither and are predicted by both "
        "versions' fallbacks.</p>"
    )


def _fallback(counts: dict[str, Any]) -> str:
    """Ratings and users each version served by its fallback (escaped sentence)."""
    parts = [
        f"{name} predicted {counts[f'n_fallback_{v}']:,} of them by its fallback "
        f"({counts[f'users_new_to_{v}']:,} users it had not seen; "
        f"{counts[f'users_ndcg_fallback_{v}']:,} of the NDCG users got its fallback list)"
        for name, v in (("A", "a"), ("B", "b"))
    ]
    return escape("; ".join(parts) + ".")


def comparison_html(document: dict[str, Any]) -> str:
    """Return the comparison report (``comparison_document``'s dictionary) as HTML."""
    rows = pd.DataFrame(document["rows"])
    chart = _Charts()
    summary = "".join(f"<li>{escape(s)}</li>" for s in document["sentences"])
    minimum = (document.get("settings") or {}).get("min_group_size")
    shown = table(
        _shown(rows, minimum),
        row_class=lambda r: "insufficient" * (r["Verdict"] == "insufficient data"),
    )
    method = "".join(f"<li>{escape(s)}</li>" for s in document["method"])
    notes = "".join(f'<p class="meta">{escape(n)}</p>' for n in document["notes"])
    body = [
        f"<header><h1>{escape(document['title'])}</h1><p class='meta'>Created "
        f"{escape(document['created'])}. Aggregates only: no user ids or individual "
        "ratings.</p></header>",
        f'<section id="compared"><h2>What was compared</h2>{_compared(document)}</section>',
        f'<section id="summary"><h2>Summary</h2><ul>{summary}</ul></section>',
        '<section id="charts"><h2>Differences per group</h2><p class="meta">'
        f"{escape(CHART_CAPTION)}</p>" + _charts(rows, chart) + "</section>",
        f'<section id="rows"><h2>All rows</h2><p class="meta">The verdict is the '
        "Holm-adjusted paired permutation test; the 95% interval is per row and not adjusted, "
        f"so a row can have an interval that excludes 0 and no significant change (note "
        f"'{escape(INTERVAL_ONLY)}').</p>{shown}</section>",
        f'<section id="method"><h2>Method</h2><ul>{method}</ul>{notes}</section>',
    ]
    template = json.dumps(pio.templates["plotly_white"].to_plotly_json(), sort_keys=True,
                          separators=(",", ":"))  # fmt: skip
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(document['title'])}</title><style>{_CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"<script>var TEMPLATE={template.translate(_JSON_ESCAPES)};"
        f"var CONFIG={json.dumps(_PLOT_CONFIG, sort_keys=True)};</script>"
        f"</head><body>{''.join(body)}</body></html>\n"
    )
