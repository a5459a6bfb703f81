"""Time-left estimates for long steps that report progress as a fraction done."""

from __future__ import annotations

#: Below this fraction done, an estimate extrapolates too little work to be shown.
MIN_FRACTION = 0.05


def time_left(elapsed: float, fraction: float) -> float | None:
    """Seconds left if the rest goes at the pace so far: ``elapsed * (1 - f) / f``.

    ``None`` until ``fraction`` reaches ``MIN_FRACTION`` (too early to tell); 0 when done.
    Assumes progress is proportional to time, so it is an estimate, not a promise.
    """
    if fraction >= 1.0:
        return 0.0
    if not fraction >= MIN_FRACTION or elapsed < 0:
        return None
    return elapsed * (1.0 - fraction) / fraction


def describe_time_left(seconds: float | None) -> str:
    """``'about 2 min 10 s left'``, ``'about 40 s left'``, or ``'estimating time left'``."""
    if seconds is None:
        return "estimating time left"
    seconds = round(seconds)
    if seconds >= 60:
        return f"about {seconds // 60} min {seconds % 60} s left"
    return f"about {seconds} s left"
