"""Charts of the fairness over time (``engine.monitor_fairness``): shares and gaps per window.

Used by the Over time page and the report's Over time section; the other monitoring charts
are ``engine.charts.monitor_*``. Group and window names are data text, shown literally.
A red X marks a window where a change (or a gap) is flagged; hollow markers are
insufficient data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.text import literal_plotly

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 340}
_RED_X = {"symbol": "x", "size": 14, "color": "#d62828"}
_TITLES = {"exposure": "Exposure share in the top-k lists", "rating_share": "Share of ratings"}


def _labels(values: pd.Series) -> list[str]:
    return [literal_plotly(v) for v in values]


def provider_shares(
    values: pd.DataFrame, changes: pd.DataFrame, exposure: pd.DataFrame, quantity: str = "exposure"
) -> go.Figure:
    """One line per provider: its share per window with 95% CI, flagged changes marked.

    ``values``, ``changes`` and ``exposure`` are those of ``engine.monitor.Monitoring``;
    ``quantity`` is ``"exposure"`` (with each provider's catalogue share dotted, its
    reference) or ``"rating_share"``.
    """
    rows = values[values["quantity"] == quantity]
    flagged = changes[(changes["tier"] == "flagged") & (changes["quantity"] == quantity)]
    fig = go.Figure()
    for group, part in rows.groupby("group", sort=True):
        part = part.sort_values("window")
        name = literal_plotly(group)
        x = _labels(part["label"])
        small = part["status"].to_numpy() != "ok"
        line = fig.add_trace(go.Scatter(
            x=x, y=part["value"], name=name, legendgroup=str(group), mode="lines+markers",
            marker={"symbol": np.where(small, "circle-open", "circle"), "size": 8},
            error_y={"type": "data", "symmetric": False,
                     "array": (part["ci_high"] - part["value"]).clip(lower=0),
                     "arrayminus": (part["value"] - part["ci_low"]).clip(lower=0)},
        ))  # fmt: skip
        colour = line.data[-1].line.color
        if quantity == "exposure":
            ref = exposure[exposure["group"] == group].sort_values("window")
            fig.add_trace(go.Scatter(x=_labels(ref["label"]), y=ref["catalogue_share"],
                                     mode="lines", name=f"{name} (catalogue share)",
                                     legendgroup=str(group), showlegend=False,
                                     line={"dash": "dot", "color": colour}))  # fmt: skip
        marks = part[part["window"].isin(flagged.loc[flagged["group"] == group, "window"])]
        if len(marks):
            fig.add_trace(go.Scatter(x=_labels(marks["label"]), y=marks["value"], mode="markers",
                                     name=f"flagged change ({name})", legendgroup=str(group),
                                     marker=_RED_X))  # fmt: skip
    grouping = literal_plotly(rows["grouping"].iloc[0]) if len(rows) else "provider"
    dotted = "; dotted: catalogue share" if quantity == "exposure" else ""
    fig.update_layout(
        title=f"{_TITLES[quantity]} per {grouping} (95% CI{dotted}; red X = flagged change)",
        yaxis={"title": "share", "tickformat": ".0%", "rangemode": "tozero"}, **_LAYOUT,
    )  # fmt: skip
    return fig


def fairness_gaps(
    gaps: pd.DataFrame, quantity: str, grouping: str, band: tuple[float, float] = (0.8, 1.25)
) -> go.Figure:
    """Each group's ratio to the reference group per window, with 95% CI and the band.

    ``gaps`` is ``Monitoring.fairness``; 1 = parity (solid line); dotted lines at ``band``
    (``MonitorConfig.band``); a log axis, so that 0.8 and 1.25 are equally far from 1.
    """
    rows = gaps[(gaps["quantity"] == quantity) & (gaps["grouping"] == grouping)]
    rows = rows[rows["status"] != "reference"]
    fig = go.Figure()
    for group, part in rows.groupby("group", sort=True):
        part = part.sort_values("window")
        name = literal_plotly(group)
        ok = part[part["ratio"].notna()]
        fig.add_trace(go.Scatter(
            x=_labels(ok["label"]), y=ok["ratio"], name=name, mode="lines+markers",
            error_y={"type": "data", "symmetric": False,
                     "array": (ok["ci_high"] - ok["ratio"]).clip(lower=0),
                     "arrayminus": (ok["ratio"] - ok["ci_low"]).clip(lower=0)},
        ))  # fmt: skip
        marks = ok[ok["tier"] == "flagged"]
        if len(marks):
            fig.add_trace(go.Scatter(x=_labels(marks["label"]), y=marks["ratio"], mode="markers",
                                     name=f"flagged gap ({name})", marker=_RED_X))  # fmt: skip
    for level in (band[0], 1.0, band[1]):
        fig.add_hline(y=level, line={"dash": "dot" if level != 1.0 else "solid", "width": 1,
                                     "color": "#888888"})  # fmt: skip
    reference = rows["reference_group"].dropna().unique()
    ref = (f" (reference: {literal_plotly(reference[0])})" if len(reference) == 1
           else " (reference: the largest group of each window)")  # fmt: skip
    what = {"rmse": "RMSE", "ndcg": "NDCG@k"}.get(quantity, quantity)
    fig.update_layout(
        title=f"{what} ratio to the reference by {literal_plotly(grouping)}{ref} per window "
        "(red X = flagged gap)",
        yaxis={"title": "ratio (1 = parity)", "type": "log"}, **_LAYOUT,
    )  # fmt: skip
    return fig
