"""Plotly figures built from engine results (used by the dashboard and the report).

Each builder takes an engine object and returns a ``plotly.graph_objects.Figure``;
none computes a metric of its own.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from engine.data.profile import SHORT_HEAD_SHARE, DatasetProfile

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
