"""The versions ``compare`` scores: a saved analysis or a run kept in Spark, as one ``Version``.

A ``Version`` is what a comparison needs of one side: its model, the attribute tables its
users and items are grouped by, and what the comparison report says of its training data
(name, dataset, fingerprint, model key, sizes, first and last training rating).

* ``analysis_version``: of an ``Analysis`` (``engine.saved.store``), its whole model.
* ``kept_version``: of a run kept in Spark (``engine.saved.kept``) with its user side. Its
  model holds the ratings of the window's users only (``UserSide.model_for_users``), with
  every user's number of ratings and popularity sum, so the comparison is the one of the
  whole model: only the window's users' ratings are asked for (their lists, which window
  pairs were training pairs); the groups of activity and popularity rest on every user.
* ``open_version_source``: either kind, from a folder or a zip of one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine.model.svd import TrainedModel

if TYPE_CHECKING:  # engine.saved imports engine.compare (through engine.external): no cycle
    from engine.analysis import Analysis
    from engine.saved.kept import SavedKeptRun
    from engine.saved.store import SavedAnalysis


@dataclass(frozen=True)
class Version:
    """One compared version.

    Attributes
    ----------
    name
        What the analyst calls it (a path, an upload's name, "This session's analysis").
    model
        Its model (for a kept run, with the ratings of the window's users only).
    users, items
        Its attribute tables (index ``user_id`` / ``item_id``), or ``None``.
    dataset, fingerprint, model_key
        Its training data's name and fingerprint, and the key of its model (a saved
        analysis's model stage key; a kept run's key, the SHA-256 of its file records).
    n_ratings, n_users, n_items
        The size of its training data.
    first_timestamp, last_timestamp
        Its first and last training rating (epoch seconds), ``None`` without timestamps.
    derived_from
        Its manifest's ``derived_from`` (set by ``update``), else ``None``.
    """

    name: str
    model: TrainedModel
    users: pd.DataFrame | None
    items: pd.DataFrame | None
    dataset: str
    fingerprint: str
    model_key: str
    n_ratings: int
    n_users: int
    n_items: int
    first_timestamp: int | None
    last_timestamp: int | None
    derived_from: dict[str, Any] | None = None


def analysis_version(
    analysis: Analysis, name: str, derived_from: dict[str, Any] | None = None
) -> Version:
    """Return ``analysis`` (its data and model) as a ``Version`` called ``name``."""
    data = analysis.data
    first, last = data.time_span()
    return Version(name, analysis.model, data.users, data.items, data.name, data.fingerprint,
                   analysis.key("model"), data.n_ratings, data.n_users, data.n_items, first,
                   last, derived_from)  # fmt: skip


def kept_version(run: SavedKeptRun, name: str, window_users: pd.Series | np.ndarray) -> Version:
    """Return a kept run as a ``Version`` called ``name``, for a window of ``window_users``.

    Raises
    ------
    SavedAnalysisError
        The run was saved without its user side (``--no-user-side``, or kept schema "1"),
        so it has no user vectors to score the window with.
    """
    from engine.saved.errors import refuse
    from engine.saved.manifest import NAME

    if run.users is None:
        raise refuse(
            run.path / NAME if run.path.is_dir() else run.path,
            "is a run kept in Spark saved without its user side (--no-user-side, or an older "
            "schema), so it has no user vectors to score a window with",
            "run it again with run --engine spark --keep-in-spark, without --no-user-side",
        )
    profile = run.parts.profile
    data = {"name": profile.name, "fingerprint": str(run.parts.provenance["dataset"][
        "fingerprint"]), "ratings": profile.n_ratings, "users": profile.n_users,
        "items": profile.n_items, "first_timestamp": profile.first_timestamp,
        "last_timestamp": profile.last_timestamp}  # fmt: skip
    derived = run.derived_from
    if derived:  # updated (engine.saved.kept_update): the model rests on the merged data
        data = derived["after"]
    return Version(
        name, run.users.model_for_users(window_users), run.users.user_attributes,
        run.users.item_attributes, data["name"], data["fingerprint"], run.key, data["ratings"],
        data["users"], data["items"], data["first_timestamp"], data["last_timestamp"], derived,
    )  # fmt: skip


def open_version_source(path: str | Path) -> SavedAnalysis | SavedKeptRun:
    """Open a saved analysis or a kept run (a folder or a zip), verified.

    Raises
    ------
    SavedAnalysisError
        What ``read_saved`` or ``open_kept`` refuse.
    """
    from engine.saved.kept import is_kept, open_kept
    from engine.saved.store import read_saved

    return open_kept(path) if is_kept(path) else read_saved(path)


def version_of(
    source: SavedAnalysis | SavedKeptRun, name: str, window_users: pd.Series | np.ndarray
) -> Version:
    """Return ``source`` (from ``open_version_source``) as a ``Version`` for the window."""
    from engine.saved.kept import SavedKeptRun

    if isinstance(source, SavedKeptRun):
        return kept_version(source, name, window_users)
    return analysis_version(source.analysis, name, source.manifest.get("derived_from"))


def scale_of(source: SavedAnalysis | SavedKeptRun) -> tuple[float, float]:
    """Return the rating scale ``(low, high)`` that ``source``'s model was trained on."""
    from engine.saved.kept import SavedKeptRun

    if isinstance(source, SavedKeptRun):
        scale = source.parts.load.scale
    else:
        scale = source.analysis.data.scale
    return scale.low, scale.high
