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


def factor_waterfall(view: shap.Explanation, top: int = 8) -> go.Figure:
    """Waterfall from the base value through the user bias and the largest factors.

    The ``top`` largest absolute factor terms are shown (the user-bias term always);
    the rest are summed into one "other factors" step, so the bars still end exactly at
    the prediction.
    """
    view = _require_explanation(view, "factor waterfall")
    values = np.asarray(view.values, float)
    names = list(view.feature_names)
    factor_order = 1 + np.argsort(-np.abs(values[1:]), kind="stable")
    shown = [0, *factor_order[:top]]
    rest = values[factor_order[top:]].sum()
    labels = ["average prediction", *[names[j] for j in shown]]
    steps = [float(view.base_values), *[float(values[j]) for j in shown]]
    measures = ["absolute", *["relative"] * len(shown)]
    if len(factor_order) > top:
        labels.append(f"other {len(factor_order) - top} factors")
        steps.append(float(rest))
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
        **_LAYOUT,
    )
    running = np.cumsum(steps[:-1])  # where each bar ends; zoom on them, not on 0
    low, high = float(running.min()), float(running.max())
    pad = max(0.05, 0.15 * (high - low))
    fig.update_xaxes(range=[low - pad, high + pad])
    fig.update_yaxes(autorange="reversed")
    return fig


def history_bars(view: shap.Explanation, top: int = 12, title: str | None = None) -> go.Figure:
    """Signed horizontal bars of the ``top`` largest contributions of past ratings.

    Positive bars pushed the prediction up, negative ones down; the caption states how
    much the omitted ratings add up to, so nothing is hidden.
    """
    view = _require_explanation(view, "history bar chart")
    values = np.asarray(view.values, float)
    order = np.argsort(-np.abs(values), kind="stable")[:top][::-1]
    names = [str(view.feature_names[j]) for j in order]
    data = view.data if view.data is not None else np.full(len(values), np.nan)
    rest = values.sum() - values[order].sum()
    fig = go.Figure(
        go.Bar(
            x=values[order],
            y=names,
            orientation="h",
            marker_color=np.where(values[order] >= 0, "#2a9d8f", "#e76f51"),
            customdata=np.asarray(data, float)[order],
            hovertemplate="%{y} (rated %{customdata}): %{x:+.3f}<extra></extra>",
        )
    )
    omitted = len(values) - len(order)
    caption = f"; {omitted} more ratings add {rest:+.3f}" if omitted else ""
    fig.update_layout(
        title=title or f"Because you rated ... (base {float(view.base_values):.2f}{caption})",
        xaxis_title="contribution to the prediction", **_LAYOUT,
    )  # fmt: skip
    return fig


def shares_vs_population(frame: pd.DataFrame, key: str, title: str) -> go.Figure:
    """Draw grouped bars of ``user_share`` vs ``population_share`` per ``key`` value."""
    fig = go.Figure(
        [
            go.Bar(name="this user", x=frame[key].astype(str), y=frame["user_share"]),
            go.Bar(name="all users", x=frame[key].astype(str), y=frame["population_share"]),
        ]
    )
    fig.update_layout(title=title, barmode="group", yaxis_tickformat=".0%", **_LAYOUT)
    return fig


def group_metric(rows: pd.DataFrame, title: str) -> go.Figure:
    """Bars of one metric by group with 95% CIs; insufficient-data groups grey, flagged red.

    ``rows`` are ``AuditResult.metrics`` rows of one (metric, grouping).
    """
    base = np.where(rows["status"] == "reference", "#264653", "#2a9d8f")
    colours = np.where(
        rows["status"] == "insufficient data", "#bbbbbb", np.where(rows["flag"], "#d62828", base)
    )
    fig = go.Figure(
        go.Bar(
            x=rows["group"].astype(str),
            y=rows["value"],
            marker_color=colours,
            error_y={"type": "data", "symmetric": False,
                     "array": (rows["ci_high"] - rows["value"]).clip(lower=0),
                     "arrayminus": (rows["value"] - rows["ci_low"]).clip(lower=0)},
            customdata=np.stack([rows["n_users"], rows["status"]], axis=1),
            hovertemplate="%{x}: %{y:.4f} (%{customdata[0]} users, %{customdata[1]})"
            "<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def model_group_gaps(frame: pd.DataFrame) -> go.Figure:
    """Accuracy vs fairness: overall RMSE (x) against the largest group gap (y) per model."""
    fig = go.Figure(
        go.Scatter(
            x=frame["overall_rmse"], y=frame["max_gap"], mode="markers+text",
            text=frame["model"], textposition="top center", marker={"size": 12},
            hovertemplate="%{text}: RMSE %{x:.4f}, largest group gap %{y:.4f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(title="Accuracy vs fairness (lower-left is better)",
                      xaxis_title="overall RMSE", yaxis_title="largest group RMSE - smallest",
                      **_LAYOUT)  # fmt: skip
    return fig


def disparity_overview(rows: pd.DataFrame, band: tuple[float, float], title: str) -> go.Figure:
    """Dot plot of each group's ratio to its reference (log axis), no-disparity band shaded.

    ``rows`` are ``AuditResult.metrics`` rows; reference rows and rows without a positive
    ratio (insufficient data, nothing recommended) are left out. Flagged rows are red.
    """
    rows = rows[(rows["status"] != "reference") & rows["ratio"].notna() & (rows["ratio"] > 0)]
    labels = rows["metric"] + " · " + rows["grouping"] + " = " + rows["group"].astype(str)
    fig = go.Figure(
        go.Scatter(
            x=rows["ratio"], y=labels, mode="markers",
            marker={"size": 9, "color": np.where(rows["flag"], "#d62828", "#2a9d8f")},
            customdata=rows["reference_group"],
            hovertemplate="%{y}: %{x:.3f} x %{customdata}<extra></extra>",
        )
    )  # fmt: skip
    fig.add_vrect(x0=band[0], x1=band[1], fillcolor="#999999", opacity=0.15, line_width=0)
    fig.add_vline(x=1, line_color="#264653", line_width=1)
    fig.update_xaxes(type="log", title="ratio to reference (log scale; shaded = no disparity)")
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_layout(title=title, **{**_LAYOUT, "height": 90 + 18 * len(rows)})
    return fig
