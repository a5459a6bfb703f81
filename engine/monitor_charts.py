"""Charts of the monitoring over time (``engine.monitor``): volume, values, shares and gaps.

Used by the Over time page and the report's Over time section. Group and window names are
data text, shown literally. Conventions shared by every chart:

* the x-axis is the window labels, in time order (categories, never numbers); the hover
  shows a partial window's coverage ("2020-05 (partial: to 2020-05-02)",
  ``engine.monitor_windows.window_names``);
* each group has one fixed colour across the charts (``group_colours``: the sorted group
  names of a grouping take ``PALETTE`` in turn), never the flag red;
* a red X marks a window where a change (or a gap) is flagged;
* an insufficient-data point (the group has fewer than ``min_group_size`` users in the
  window, or the window itself is insufficient) is a hollow grey marker without an
  interval, its legend entry "insufficient data (n users < 30)";
* legends are horizontal under the plot (above it for the volume chart), never truncated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.text import literal_plotly

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 340}
#: The flag marker's colour: no group takes it (``PALETTE``).
FLAG_RED = "#d62828"
_RED_X = {"symbol": "x", "size": 14, "color": FLAG_RED}
#: Insufficient-data markers.
GREY = "#9a9a9a"
#: One colour per group (plotly's Dark24 without its reds, near-reds and near-black), 19
#: colours: more than the 12 groups (+ "other") an attribute is cut to.
PALETTE: tuple[str, ...] = (
    "#2E91E5", "#1CA71C", "#DA16FF", "#B68100", "#750D86", "#2ED9FF", "#511CFB", "#00A08B",
    "#FB00D1", "#B2828D", "#6C7C32", "#778AAE", "#A777F1", "#1616A7", "#DA60CA", "#6C4516",
    "#0D2A63", "#E15F99", "#16A5A5",
)  # fmt: skip
_TITLES = {"exposure": "Exposure share in the top-k lists", "rating_share": "Share of ratings"}
_AXES = {"rating_mean": "mean rating", "rmse": "RMSE (lower is better)",
         "ndcg": "NDCG@k (higher is better)"}  # fmt: skip


def group_colours(groups: Iterable[object]) -> dict[str, str]:
    """Each group's fixed colour: the sorted distinct names take ``PALETTE`` in turn."""
    names = sorted({str(g) for g in groups})
    return {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(names)}


def _axis(labels: Iterable[object]) -> dict:
    """Return a category x-axis of the window labels in the given (time) order."""
    return {"type": "category", "categoryorder": "array",
            "categoryarray": [literal_plotly(x) for x in labels], "title": "window"}  # fmt: skip


def _legend(n_entries: int, above: bool = False) -> dict:
    """Return a horizontal legend with room for every entry (height grows with its rows)."""
    rows = math.ceil(max(n_entries, 1) / 4)
    if above:
        legend = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0}
        return {"legend": legend, "margin": {"l": 10, "r": 10, "t": 60 + 22 * rows, "b": 10},
                "height": 340 + 22 * rows}  # fmt: skip
    legend = {"orientation": "h", "yanchor": "top", "y": -0.18, "xanchor": "left", "x": 0}
    return {"legend": legend, "margin": {"l": 10, "r": 10, "t": 40, "b": 60 + 22 * rows},
            "height": 340 + 22 * rows}  # fmt: skip


def _names(windows: pd.DataFrame | None) -> dict[str, str]:
    """Window label -> the name shown on hover (partial windows say so)."""
    if windows is None or "partial" not in windows:
        return {}
    from engine.monitor_windows import window_names

    return dict(zip(windows["label"].astype(str), window_names(windows), strict=True))


def _hover(labels: Iterable[object], names: dict[str, str]) -> list[str]:
    return [literal_plotly(names.get(str(x), str(x))) for x in labels]


def volume(data: pd.DataFrame, windows: pd.DataFrame) -> go.Figure:
    """Ratings per window (bars; grey = insufficient data) and active / new users (lines).

    ``data`` and ``windows`` are ``Monitoring.data`` and ``Monitoring.windows``; the legend
    lies above the plot, clear of the right axis.
    """
    labels = [literal_plotly(x) for x in data["label"]]
    hover = _hover(data["label"], _names(windows))
    ok = windows["status"].to_numpy() == "ok"
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=data["n_ratings"], name="ratings", hovertext=hover,
                         hovertemplate="%{hovertext}: %{y:,} ratings<extra></extra>",
                         marker={"color": np.where(ok, "#2a9d8f", "#bbbbbb")}))  # fmt: skip
    for (column, name), colour in zip(
        (("n_users", "active users"), ("new_users", "new users"), ("new_items", "new items")),
        ("#264653", "#e9c46a", "#8d5fd3"), strict=True,
    ):  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=data[column],
                name=name,
                mode="lines+markers",
                yaxis="y2",
                hovertext=hover,
                line={"color": colour},
                hovertemplate=f"%{{hovertext}}: %{{y:,}} {name}<extra></extra>",
            )
        )
    fig.update_layout(
        title="Data volume per window (grey bars: insufficient data)", xaxis=_axis(data["label"]),
        yaxis={"title": "ratings", "rangemode": "tozero"},
        yaxis2={"title": "users / items", "overlaying": "y", "side": "right",
                "rangemode": "tozero", "showgrid": False},
        **_legend(4, above=True),
    )  # fmt: skip
    return fig


def _group_traces(
    fig: go.Figure, part: pd.DataFrame, y: str, name: str, colour: str, min_group_size: int,
    names: dict[str, str], legendgroup: str, first_small: bool,
) -> bool:  # fmt: skip
    """Add a group's line (sufficient points, with 95% CI) and its insufficient points.

    Returns whether an insufficient-data legend entry was added.
    """
    part = part.sort_values("window")
    ok = (part["status"] != "insufficient data").to_numpy() & part[y].notna().to_numpy()
    x = [literal_plotly(v) for v in part["label"]]
    hover = _hover(part["label"], names)
    value = part[y].to_numpy(float)
    fig.add_trace(go.Scatter(
        x=x, y=np.where(ok, value, np.nan), name=name, legendgroup=legendgroup,
        mode="lines+markers", line={"color": colour}, marker={"color": colour, "size": 8},
        hovertext=hover, customdata=part["n_users"].to_numpy(),
        hovertemplate=f"{name}, %{{hovertext}}: %{{y:.3f}} (%{{customdata:,}} users)"
                      "<extra></extra>",
        error_y={"type": "data", "symmetric": False,
                 "array": np.where(ok, (part["ci_high"] - value).clip(lower=0), np.nan),
                 "arrayminus": np.where(ok, (value - part["ci_low"]).clip(lower=0), np.nan)},
    ))  # fmt: skip
    small = part[~ok & part["value"].notna().to_numpy()]
    if small.empty:
        return False
    why = [f"{n:,} users < {min_group_size}" if n < min_group_size else "window insufficient"
           for n in small["n_users"]]  # fmt: skip
    fig.add_trace(go.Scatter(
        x=[literal_plotly(v) for v in small["label"]], y=small["value"], mode="markers",
        name=f"insufficient data (n users < {min_group_size})", legendgroup="insufficient",
        showlegend=first_small,
        marker={"symbol": "circle-open", "color": GREY, "size": 9, "line": {"width": 2}},
        hovertext=[f"{name}, {literal_plotly(names.get(str(w), str(w)))}: insufficient data "
                   f"({r})" for w, r in zip(small["label"], why, strict=True)],
        hovertemplate="%{hovertext}: %{y:.3f}<extra></extra>",
    ))  # fmt: skip
    return True


def series(
    values: pd.DataFrame, changes: pd.DataFrame, quantity: str, grouping: str = "all",
    min_group_size: int = 30, windows: pd.DataFrame | None = None,
) -> go.Figure:  # fmt: skip
    """One line per group of ``grouping``: the quantity per window with its 95% interval.

    ``values`` and ``changes`` are ``Monitoring.values`` and ``Monitoring.changes``. A
    window where a change of that group is flagged (vs the previous window or the
    baseline) gets a red X; insufficient-data values are hollow grey, without interval.
    """
    rows = values[(values["quantity"] == quantity) & (values["grouping"] == grouping)]
    flagged = changes[(changes["tier"] == "flagged") & (changes["quantity"] == quantity)
                      & (changes["grouping"] == grouping)]  # fmt: skip
    colours = group_colours(values.loc[values["grouping"] == grouping, "group"])
    names = _names(windows)
    fig, small, entries = go.Figure(), False, 0
    for group, part in rows.groupby("group", sort=True):
        name = literal_plotly(group if grouping != "all" else "all users")
        added = _group_traces(fig, part, "value", name, colours[str(group)], min_group_size,
                              names, str(group), not small)  # fmt: skip
        entries += 1 + (added and not small)
        small |= added
        ok = part[part["status"] != "insufficient data"]
        marks = ok[ok["window"].isin(flagged.loc[flagged["group"] == group, "window"])]
        if len(marks):
            entries += 1
            fig.add_trace(go.Scatter(x=[literal_plotly(x) for x in marks["label"]],
                                     y=marks["value"], mode="markers",
                                     name=f"flagged change ({name})", marker=_RED_X))  # fmt: skip
    who = "" if grouping == "all" else f" by {literal_plotly(grouping)}"
    order = windows["label"] if windows is not None else rows.sort_values("window")["label"]
    fig.update_layout(
        title=f"{_AXES.get(quantity, quantity)}{who} per window (95% CI; red X = flagged)",
        yaxis={"title": _AXES.get(quantity, quantity)}, xaxis=_axis(pd.unique(order)),
        **_legend(entries),
    )  # fmt: skip
    return fig


def provider_shares(
    values: pd.DataFrame, changes: pd.DataFrame, exposure: pd.DataFrame,
    quantity: str = "exposure", min_group_size: int = 30, windows: pd.DataFrame | None = None,
) -> go.Figure:  # fmt: skip
    """One line per provider: its share per window with 95% CI, flagged changes marked.

    ``values``, ``changes`` and ``exposure`` are those of ``engine.monitor.Monitoring``;
    ``quantity`` is ``"exposure"`` (with each provider's catalogue share dotted, its
    reference) or ``"rating_share"``. A provider has the same colour in both charts.
    """
    rows = values[values["quantity"] == quantity]
    grouping_name = rows["grouping"].iloc[0] if len(rows) else None
    colours = group_colours(values.loc[values["grouping"] == grouping_name, "group"])
    flagged = changes[(changes["tier"] == "flagged") & (changes["quantity"] == quantity)]
    names = _names(windows)
    fig, small, entries = go.Figure(), False, 0
    for group, part in rows.groupby("group", sort=True):
        part = part.sort_values("window")
        name = literal_plotly(group)
        colour = colours[str(group)]
        added = _group_traces(fig, part, "value", name, colour, min_group_size, names,
                              str(group), not small)  # fmt: skip
        entries += 1 + (added and not small)
        small |= added
        if quantity == "exposure":
            ref = exposure[exposure["group"] == group].sort_values("window")
            fig.add_trace(go.Scatter(x=[literal_plotly(v) for v in ref["label"]],
                                     y=ref["catalogue_share"], mode="lines",
                                     name=f"{name} (catalogue share)", hoverinfo="skip",
                                     legendgroup=str(group), showlegend=False,
                                     line={"dash": "dot", "color": colour}))  # fmt: skip
        marks = part[part["window"].isin(flagged.loc[flagged["group"] == group, "window"])]
        if len(marks):
            entries += 1
            fig.add_trace(go.Scatter(x=[literal_plotly(v) for v in marks["label"]],
                                     y=marks["value"], mode="markers",
                                     name=f"flagged change ({name})", legendgroup=str(group),
                                     marker=_RED_X))  # fmt: skip
    grouping = literal_plotly(grouping_name) if grouping_name is not None else "provider"
    dotted = "; dotted: catalogue share" if quantity == "exposure" else ""
    order = windows["label"] if windows is not None else rows.sort_values("window")["label"]
    fig.update_layout(
        title=f"{_TITLES[quantity]} per {grouping} (95% CI{dotted}; red X = flagged change)",
        yaxis={"title": "share", "tickformat": ".0%", "rangemode": "tozero"},
        xaxis=_axis(pd.unique(order)), **_legend(entries),
    )  # fmt: skip
    return fig


def has_gaps(gaps: pd.DataFrame, quantity: str, grouping: str) -> bool:
    """Whether ``fairness_gaps`` has anything to draw: a tested (non-reference) ratio."""
    rows = gaps[(gaps["quantity"] == quantity) & (gaps["grouping"] == grouping)]
    return bool((rows["ratio"].notna() & (rows["status"] != "reference")).any())


def fairness_gaps(
    gaps: pd.DataFrame, quantity: str, grouping: str, band: tuple[float, float] = (0.8, 1.25),
    windows: pd.DataFrame | None = None,
) -> go.Figure:  # fmt: skip
    """Each group's ratio to the reference group per window, with 95% CI and the band.

    ``gaps`` is ``Monitoring.fairness``; 1 = parity (solid line); dotted lines at ``band``
    (``MonitorConfig.band``); a log axis, so that 0.8 and 1.25 are equally far from 1. Only
    groups with a ratio in some window are drawn; the x-axis is every window with a model.
    Call it only when ``has_gaps`` (else show ``engine.monitor_fairness.gap_summary``).
    """
    rows = gaps[(gaps["quantity"] == quantity) & (gaps["grouping"] == grouping)]
    order = pd.unique(rows.sort_values("window")["label"])
    colours = group_colours(gaps.loc[gaps["grouping"] == grouping, "group"])
    names = _names(windows)
    rows = rows[rows["status"] != "reference"]
    fig, entries = go.Figure(), 0
    for group, part in rows.groupby("group", sort=True):
        part = part.sort_values("window")
        ok = part[part["ratio"].notna()]
        if ok.empty:
            continue
        name = literal_plotly(group)
        entries += 1
        fig.add_trace(go.Scatter(
            x=[literal_plotly(v) for v in ok["label"]], y=ok["ratio"], name=name,
            mode="lines+markers", line={"color": colours[str(group)]},
            marker={"color": colours[str(group)], "size": 8},
            hovertext=_hover(ok["label"], names), customdata=ok["reference_group"].map(str),
            hovertemplate=f"{name}, %{{hovertext}}: %{{y:.2f}} x %{{customdata}}<extra></extra>",
            error_y={"type": "data", "symmetric": False,
                     "array": (ok["ci_high"] - ok["ratio"]).clip(lower=0),
                     "arrayminus": (ok["ratio"] - ok["ci_low"]).clip(lower=0)},
        ))  # fmt: skip
        marks = ok[ok["tier"] == "flagged"]
        if len(marks):
            entries += 1
            fig.add_trace(go.Scatter(x=[literal_plotly(v) for v in marks["label"]],
                                     y=marks["ratio"], mode="markers",
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
        yaxis={"title": "ratio (1 = parity)", "type": "log"}, xaxis=_axis(order),
        **_legend(entries),
    )  # fmt: skip
    return fig
