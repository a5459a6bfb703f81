"""Plotly figures built from engine results (used by the dashboard and the report).

Each builder takes an engine object and returns a ``plotly.graph_objects.Figure``;
none computes a metric of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engine.data.profile import SHORT_HEAD_SHARE, DatasetProfile
from engine.text import literal_plotly

if TYPE_CHECKING:  # shap takes ~2 s to import: loaded where first used
    import shap

_LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "height": 320}


def rating_histogram(profile: DatasetProfile) -> go.Figure:
    """Bar chart of how many ratings take each value."""
    hist = profile.rating_histogram
    fig = go.Figure(
        go.Bar(
            x=hist["rating"].astype(str),
            y=hist["count"],
            customdata=hist["share"] * 100,
            hovertemplate="rating %{x}: %{y:,} ratings (%{customdata:.1f}%)<extra></extra>",
        )
    )
    fig.update_layout(
        title="Rating distribution", xaxis_title="rating", yaxis_title="ratings", **_LAYOUT
    )
    return fig


def activity_distribution(profile: DatasetProfile) -> go.Figure:
    """Histogram of ratings per user (log-scaled count axis)."""
    fig = go.Figure(
        go.Histogram(
            x=profile.user_activity.to_numpy(),
            nbinsx=50,
            hovertemplate="%{x} ratings: %{y} users<extra></extra>",
        )
    )
    fig.update_layout(
        title="Ratings per user", xaxis_title="ratings per user", yaxis_title="users", **_LAYOUT
    )
    fig.update_yaxes(type="log", dtick=1)
    return fig


def long_tail_curve(profile: DatasetProfile) -> go.Figure:
    """Ratings per item in popularity order, with the short head marked.

    The shaded band is the short head: the most-rated items that together hold 80%
    of all ratings (``DatasetProfile.short_head_items``).
    """
    counts = profile.item_popularity.to_numpy()
    rank = np.arange(1, counts.size + 1)
    fig = go.Figure(
        go.Scatter(
            x=rank,
            y=counts,
            mode="lines",
            hovertemplate="item rank %{x}: %{y:,} ratings<extra></extra>",
        )
    )
    fig.add_vrect(
        x0=0.5,
        x1=profile.short_head_items + 0.5,
        fillcolor="orange",
        opacity=0.15,
        line_width=0,
        annotation_text=(
            f"short head: {profile.short_head_items:,} items hold {SHORT_HEAD_SHARE:.0%} of ratings"
        ),
        annotation_position="top right",
    )
    fig.update_layout(
        title="Long tail of item popularity",
        xaxis_title="item popularity rank",
        yaxis_title="ratings",
        **_LAYOUT,
    )
    return fig


def _require_explanation(view: object, chart: str) -> shap.Explanation:
    import shap

    if not isinstance(view, shap.Explanation):
        raise TypeError(
            f"The {chart} requires a shap.Explanation (from engine.explain), got "
            f"{type(view).__name__}."
        )
    return view


def factor_waterfall(view: shap.Explanation, share: float = 0.8, top: int = 15) -> go.Figure:
    r"""Waterfall from the base value through the user bias and the largest factors.

    The user-bias term is always shown; factor terms are taken by decreasing ``|value|``
    until they hold ``share`` of the factors' total size :math:`\sum_k |\phi_k|`, at most
    ``top`` of them (``engine.explain.reading.select_by_coverage``). The rest are summed
    into one "other" step whose label states how many factors it holds and their share of
    that total size, so the bars still end exactly at the prediction and the reader sees
    how much the shown factors leave out.
    """
    from engine.explain.reading import select_by_coverage
    from engine.text import literal_plotly

    view = _require_explanation(view, "factor waterfall")
    values = np.asarray(view.values, float)
    names = list(view.feature_names)
    chosen, left_out = select_by_coverage(values[1:], share, top)
    shown = [0, *(1 + chosen)]
    rest_mask = np.ones(len(values), bool)
    rest_mask[shown] = False
    labels = ["average prediction", *[literal_plotly(names[j]) for j in shown]]
    steps = [float(view.base_values), *[float(values[j]) for j in shown]]
    measures = ["absolute", *["relative"] * len(shown)]
    if rest_mask.any():
        labels.append(f"other {int(rest_mask.sum())} factors ({left_out:.0%} of the factors' size)")
        steps.append(float(values[rest_mask].sum()))
        measures.append("relative")
    labels.append("prediction")
    steps.append(float(view.base_values + values.sum()))
    measures.append("total")
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            y=labels,
            x=steps,
            measure=measures,
            hovertemplate="%{y}: %{x:+.3f}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Why this prediction: user bias and latent factors",
        xaxis_title="predicted rating (unclipped)",
        **{**_LAYOUT, "height": max(_LAYOUT["height"], 90 + 20 * len(labels))},
    )
    fig.update_yaxes(dtick=1)  # every row labelled: plotly skips labels on a crowded axis
    running = np.cumsum(steps[:-1])  # where each bar ends; zoom on them, not on 0
    low, high = float(running.min()), float(running.max())
    pad = max(0.05, 0.15 * (high - low))
    fig.update_xaxes(range=[low - pad, high + pad])
    fig.update_yaxes(autorange="reversed")
    return fig


def history_bars(
    view: shap.Explanation,
    top: int = 12,
    title: str | None = None,
    *,
    reading: pd.DataFrame | None = None,
    highlight: list[str] | tuple[str, ...] = (),
) -> go.Figure:
    """Signed horizontal bars of the ``top`` largest contributions of past ratings.

    Positive bars pushed the prediction up, negative ones down; the title states how
    much the omitted ratings add up to, so nothing is hidden. With ``reading``
    (``engine.explain.reading.history_reading``, aligned with the view's first values)
    each bar is labelled ``"<title>, rated <r>"`` and its hover says why it pushes.
    ``highlight`` item ids (e.g. a counterfactual's ratings) are always shown, outlined
    in black and marked with a star. Bars: ``engine.explain.reading.select_shown``.
    """
    from engine.explain.reading import select_shown
    from engine.text import literal_plotly

    view = _require_explanation(view, "history bar chart")
    values = np.asarray(view.values, float)
    names = [str(f) for f in view.feature_names]
    notes = [""] * len(values)
    marked = np.zeros(len(values), bool)
    if reading is not None:
        m = len(reading)
        names[:m] = [str(x) for x in reading["label"]]
        notes[:m] = [str(x) for x in reading["direction"]]
        marked[:m] = reading["item_id"].astype(str).isin([str(h) for h in highlight])
    order = select_shown(values, top, np.flatnonzero(marked))[::-1]
    labels = [("★ " if marked[j] else "") + literal_plotly(names[j]) for j in order]
    rest = values.sum() - values[order].sum()
    fig = go.Figure(
        go.Bar(
            x=values[order],
            y=labels,
            orientation="h",
            marker_color=np.where(values[order] >= 0, "#2a9d8f", "#e76f51"),
            marker_line_color=np.where(marked[order], "#000000", "rgba(0,0,0,0)"),
            marker_line_width=np.where(marked[order], 3, 0),
            customdata=[literal_plotly(notes[j]) for j in order],
            hovertemplate="%{x:+.3f}: %{customdata}<extra></extra>",
        )
    )
    omitted = len(values) - len(order)
    caption = f"; {omitted} more ratings add {rest:+.3f}" if omitted else ""
    fig.update_layout(
        title=title or f"Because you rated ... (base {float(view.base_values):.2f}{caption})",
        xaxis_title="contribution to the prediction",
        **{**_LAYOUT, "height": max(_LAYOUT["height"], 90 + 20 * len(labels))},
    )  # fmt: skip
    fig.update_yaxes(automargin=True, dtick=1)  # every bar labelled, even on a crowded axis
    return fig


def shares_vs_population(frame: pd.DataFrame, key: str, title: str) -> go.Figure:
    """Draw grouped bars of ``user_share`` vs ``population_share`` per ``key`` value.

    The ``key`` values are data text, shown literally (``engine.text.literal_plotly``), on a
    category axis: rating values ``4.0`` read "4", and plotly does not turn them into a
    numeric axis with ticks between the values.
    """
    x = [literal_plotly(f"{v:g}" if isinstance(v, float) else v) for v in frame[key]]
    fig = go.Figure(
        [
            go.Bar(name="this user", x=x, y=frame["user_share"]),
            go.Bar(name="all users", x=x, y=frame["population_share"]),
        ]
    )
    fig.update_layout(title=title, barmode="group", yaxis_tickformat=".0%", **_LAYOUT)
    fig.update_xaxes(type="category")
    return fig


#: Colours of the audit's charts: a row's tier, and an item group's direction.
TIER_COLOURS = {
    "flagged": "#d62828", "notable": "#f4a261", "reference": "#264653",
    "insufficient data": "#bbbbbb", "not flagged or notable": "#2a9d8f", "context": "#8d99ae",
}  # fmt: skip
#: The legend name of a row neither flagged nor notable (not "other": a merged group's name).
NEITHER = "not flagged or notable"
DIRECTION_COLOURS = {
    "under-exposed (below catalogue share)": "#e76f51",
    "over-exposed (above catalogue share)": "#457b9d",
    "rated less (below catalogue share)": "#e76f51",
    "rated more (above catalogue share)": "#457b9d",
    "inside the band or not significant": "#a8dadc",
    "no value": "#bbbbbb",
}
#: The pattern of an item group's bar that is notable, not flagged (colour: its direction).
NOTABLE_PATTERN = "/"
#: The legend entry of that pattern.
HATCHED = "hatched: notable, not flagged"
#: Catalogue shares of a grouping summing above this are overlapping groups (noted).
OVERLAP_TOLERANCE = 1.01


def _row_tier(rows: pd.DataFrame) -> np.ndarray:
    """Return each audit row's legend category: its tier, else reference / insufficient / neither.

    "not flagged or notable", not "other", which names a group of merged groupings.
    """
    tier = rows["tier"].fillna("") if "tier" in rows else pd.Series("", index=rows.index)
    tier = np.where(rows["flag"].astype(bool), "flagged", tier.to_numpy(str))
    return np.select(
        [tier != "", rows["status"] == "reference", rows["status"] == "insufficient data"],
        [tier, "reference", "insufficient data"],
        NEITHER,
    )


def _share_direction(rows: pd.DataFrame) -> np.ndarray:
    """Legend category of each item-group share row (a key of ``DIRECTION_COLOURS``).

    A model row (exposure) is under- or over-exposed only when it is flagged or notable; a
    data row (the ratings' share) is "rated less" or "rated more" only when the audit gave
    it a direction (outside the band and significant); every other row with a value is
    "inside the band or not significant".
    """
    names = list(DIRECTION_COLOURS)
    data = (rows["scope"] == "data").to_numpy() if "scope" in rows else np.zeros(len(rows), bool)
    tier = rows["tier"].fillna("") if "tier" in rows else pd.Series("", index=rows.index)
    direction = rows["direction"].fillna("") if "direction" in rows else tier
    directed = np.where(data, direction != "", tier.isin(["flagged", "notable"]))
    below = (rows["ratio"] < 1).to_numpy()
    side = np.where(data, np.where(below, names[2], names[3]), np.where(below, names[0], names[1]))
    return np.where(rows["value"].isna(), names[5], np.where(directed, side, names[4]))


def group_metric(
    rows: pd.DataFrame,
    title: str,
    catalogue: pd.Series | None = None,
    interaction: pd.DataFrame | None = None,
) -> go.Figure:
    """Bars of one metric by group with 95% CIs, coloured by what the row is.

    ``rows`` are ``AuditResult.metrics`` rows of one (metric, grouping); group names are
    data text, shown literally. User-group rows are coloured by tier (flagged, notable,
    reference, insufficient data, not flagged or notable; one legend entry each).
    Item-group share rows (``reference_group`` "catalogue share") are measured against each
    group's catalogue share: the bars are coloured by direction (under / over the catalogue
    share, when the row is flagged or notable, a notable bar hatched and a legend entry
    saying so; "rated less / more" for the ratings' own share), the
    catalogue share is drawn as a marker on each bar (``catalogue``: group -> share, else
    ``value / ratio``), the ``interaction`` rows (the same groups' interaction share in
    the ratings), when given, as a second marker; and where the catalogue shares add up
    to more than 1 (an item in several groups, e.g. genres) a note says so.
    """
    item = bool(len(rows)) and bool((rows["reference_group"] == "catalogue share").all())
    groups = [literal_plotly(g) for g in rows["group"]]
    if item:
        category, colours = _share_direction(rows), DIRECTION_COLOURS
    else:
        category, colours = _row_tier(rows), TIER_COLOURS
    count = "n_raters" if item and "n_raters" in rows else "n_users"
    who = "raters" if count == "n_raters" else "users"
    fig = go.Figure()
    notable = (
        (rows["tier"].fillna("") == "notable").to_numpy() if item else np.zeros(len(rows), bool)
    )
    for name, colour in colours.items():
        # a direction's notable bars are a trace of their own, hatched, in the legend only
        # when the direction has no solid bar: a legend swatch shows its trace's first bar
        solid = np.asarray(category == name) & ~notable
        for chosen, pattern in (
            (solid, ""),
            (np.asarray(category == name) & notable, NOTABLE_PATTERN),
        ):
            if not chosen.any():
                continue
            part = rows[chosen]
            fig.add_trace(go.Bar(
                x=[g for g, c in zip(groups, chosen, strict=True) if c], y=part["value"],
                name=name, marker_color=colour, marker_pattern_shape=pattern or None,
                legendgroup=name, showlegend=not (pattern and solid.any()),
                error_y={"type": "data", "symmetric": False,
                         "array": (part["ci_high"] - part["value"]).clip(lower=0),
                         "arrayminus": (part["value"] - part["ci_low"]).clip(lower=0)},
                customdata=np.stack([part[count].astype("Float64").fillna(0).astype(int),
                                     part["status"]], axis=1),
                hovertemplate="%{x}: %{y:.4g} (%{customdata[0]:,} " + who + ", "
                "%{customdata[1]})<extra></extra>",
            ))  # fmt: skip
    layout = {**_LAYOUT, "barmode": "overlay", "legend": {"orientation": "h", "y": -0.25}}
    if item and (rows["tier"].fillna("") == "notable").any():
        fig.add_trace(go.Bar(x=[None], y=[None], name=HATCHED, marker_color="#8d99ae",
                             marker_pattern_shape=NOTABLE_PATTERN))  # fmt: skip
    if item:
        shares = _catalogue_shares(rows, catalogue)
        fig.add_trace(go.Scatter(
            x=groups, y=shares, mode="markers", name="catalogue share",
            marker={"symbol": "line-ew-open", "size": 28, "color": "#000000",
                    "line": {"width": 3}},
            hovertemplate="%{x}: catalogue share %{y:.1%}<extra></extra>",
        ))  # fmt: skip
        if interaction is not None and len(interaction):
            by_group = interaction.set_index(interaction["group"].astype(str))["value"]
            fig.add_trace(go.Scatter(
                x=groups, y=by_group.reindex(rows["group"].astype(str)).to_numpy(),
                mode="markers", name="interaction share (ratings)",
                marker={"symbol": "diamond-open", "size": 10, "color": "#6d597a"},
                hovertemplate="%{x}: interaction share %{y:.1%}<extra></extra>",
            ))  # fmt: skip
        total = float(np.nansum(shares))
        if total > OVERLAP_TOLERANCE:
            fig.add_annotation(
                text=f"Groups overlap (an item can be in several): catalogue shares add up "
                f"to {total:.0%}, so the shares do not add up to 100%.",
                xref="paper", yref="paper", x=0, y=1.0, showarrow=False, xanchor="left",
                yanchor="bottom", font={"size": 11, "color": "#555555"},
            )  # fmt: skip
        layout["yaxis_tickformat"] = ".0%"
        layout["margin"] = {**_LAYOUT["margin"], "t": 60}
    fig.update_layout(title=title, **layout)
    return fig


def _catalogue_shares(rows: pd.DataFrame, catalogue: pd.Series | None) -> np.ndarray:
    """Each row's catalogue share: from ``catalogue`` (group -> share), else value / ratio."""
    if catalogue is not None:
        return catalogue.reindex(rows["group"].astype(str)).to_numpy(float)
    ratio = rows["ratio"].where(rows["ratio"] > 0)
    return (rows["value"] / ratio).to_numpy(float)


def model_group_gaps(frame: pd.DataFrame) -> go.Figure:
    """Accuracy vs fairness: overall RMSE (x) against the largest group gap (y) per model.

    The gap axis starts at zero, so two models' gaps are seen in proportion (fitted to
    the points, 0.185 and 0.192 filled the axis and looked far apart).
    """
    fig = go.Figure(
        go.Scatter(
            x=frame["overall_rmse"], y=frame["max_gap"], mode="markers+text",
            text=[literal_plotly(m) for m in frame["model"]], textposition="top center",
            marker={"size": 12}, cliponaxis=False,  # a label above the highest point shows
            hovertemplate="%{text}: RMSE %{x:.4g}, largest group gap %{y:.3g}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(title="Accuracy vs fairness (lower-left is better)",
                      xaxis_title="overall RMSE", yaxis_title="largest group RMSE - smallest",
                      **_LAYOUT)  # fmt: skip
    fig.update_yaxes(rangemode="tozero")
    return fig


def ranking_by_group(rows: pd.DataFrame, metric: str) -> go.Figure:
    """Draw each model's ``metric`` (y) per user group (x) as grouped bars; higher is better.

    ``rows``: one grouping's ``Report.ranking_by_group`` rows (``group, model, n_users,
    value``), the "all users" bars first; groups without a value (too few users) are left
    out of the chart, not drawn as 0.
    """
    shown = rows[rows["value"].notna()]
    fig = go.Figure([
        go.Bar(
            x=[literal_plotly(str(g)) for g in part["group"]], y=part["value"],
            name=literal_plotly(str(model)), customdata=part["n_users"],
            hovertemplate=f"{literal_plotly(str(model))}, %{{x}}: {metric} %{{y:.4g}} "
                          "(%{customdata:,} users)<extra></extra>",
        )
        for model, part in shown.groupby("model", sort=False)
    ])  # fmt: skip
    fig.update_layout(barmode="group", yaxis_title=f"{metric} (higher is better)",
                      legend_title_text="model", **_LAYOUT)  # fmt: skip
    fig.update_yaxes(rangemode="tozero")
    return fig


#: Ticks of a ratio axis (log scale): the band's edges and round ratios.
RATIO_TICKS = (0.05, 0.1, 0.2, 0.5, 0.8, 1, 1.25, 2, 5, 10, 20)


def disparity_overview(rows: pd.DataFrame, band: tuple[float, float], title: str) -> go.Figure:
    """Dot plot of each group's ratio to its reference (log axis), no-disparity band shaded.

    ``rows`` are ``AuditResult.metrics`` rows; reference rows and rows without a ratio
    (insufficient data) are left out; a ratio of 0 (a group no list reaches) is drawn as a
    triangle at the axis' left edge, labelled 0. Ticks are round ratios and the band's
    edges (``RATIO_TICKS``), never plotly's minor digits. Dots are coloured by tier
    (flagged red, notable orange, data context grey-blue, the rest green; one legend entry
    each); labels are data text, shown literally.
    """
    rows = rows[(rows["status"] != "reference") & rows["ratio"].notna() & (rows["ratio"] >= 0)]
    positive = rows["ratio"][rows["ratio"] > 0]
    # a log axis cannot show 0: a ratio of 0 (never recommended) is drawn at the left edge
    edge = min(0.05, float(positive.min()) / 2) if len(positive) else 0.05
    zero = rows["ratio"] == 0
    labels = np.array([
        literal_plotly(f"{m} · {g} = {v}")
        for m, g, v in zip(rows["metric"], rows["grouping"], rows["group"], strict=True)
    ], dtype=object)  # fmt: skip
    category = _row_tier(rows)
    fig = go.Figure()
    for name in ("flagged", "notable", "context", NEITHER, "insufficient data"):
        chosen = category == name
        if not chosen.any():
            continue
        fig.add_trace(go.Scatter(
            x=rows["ratio"][chosen].where(~zero[chosen], edge), y=labels[chosen],
            mode="markers", name=name,
            marker={"size": 9, "color": TIER_COLOURS[name],
                    "symbol": np.where(zero[chosen], "triangle-left", "circle")},
            customdata=np.stack([[literal_plotly(r) for r in rows["reference_group"][chosen]],
                                 rows["ratio"][chosen].round(2).astype(str)], axis=1),
            hovertemplate="%{y}: %{customdata[1]} x %{customdata[0]}<extra></extra>",
        ))  # fmt: skip
    fig.add_vrect(x0=band[0], x1=band[1], fillcolor="#999999", opacity=0.15, line_width=0)
    fig.add_vline(x=1, line_color="#264653", line_width=1)
    ticks = [t for t in RATIO_TICKS if not zero.any() or t > edge] + [edge] * bool(zero.any())
    fig.update_xaxes(
        type="log", title="ratio to reference (log scale; shaded = no disparity"
        + ("; ◀ = ratio 0, drawn at the left edge)" if zero.any() else ")"),
        tickvals=ticks, ticktext=["0" if t == edge and zero.any() else f"{t:g}" for t in ticks],
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", automargin=True, categoryorder="array",
                     categoryarray=list(labels))  # fmt: skip
    fig.update_layout(title=title, **{**_LAYOUT, "height": 120 + 18 * len(rows)})
    return fig


def version_differences(rows: pd.DataFrame, metric: str) -> go.Figure:
    """Paired differences B - A of one metric per group, with their 95% intervals.

    ``rows``: ``engine.compare.Comparison.rows``; groups with "insufficient data" (no
    interval) are left out; a dashed line marks no change. Labels are shown literally.
    """
    chosen = rows[(rows["metric"] == metric) & (rows["verdict"] != "insufficient data")]
    labels = [
        literal_plotly(g if grouping == g else f"{grouping} = {g}")
        for grouping, g in zip(chosen["grouping"], chosen["group"], strict=True)
    ]
    difference = chosen["difference"].to_numpy(float)
    fig = go.Figure(
        go.Scatter(
            x=difference, y=labels, mode="markers",
            error_x={"type": "data", "symmetric": False,
                     "array": chosen["ci_high"].to_numpy(float) - difference,
                     "arrayminus": difference - chosen["ci_low"].to_numpy(float)},
            text=chosen["verdict"].map(literal_plotly), hovertemplate="%{y}: %{x:+.4f} (%{text})",
            name="",
        )
    )  # fmt: skip
    fig.add_vline(x=0, line_dash="dash", line_color="grey")
    fig.update_layout(
        title=literal_plotly(f"{metric}: B - A per group (95% interval)"),
        xaxis_title="difference B - A", yaxis={"autorange": "reversed"},
        height=max(300, 28 * len(labels) + 120), margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )  # fmt: skip
    return fig
