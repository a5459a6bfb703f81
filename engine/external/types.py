"""Plain objects of external systems: what was loaded, and how.

An *external system* is a recommender the analyst runs elsewhere; the product sees only its
outputs: top-N lists and/or rating predictions (``engine.external.load``).

``ExternalSystem`` tables (ids are the exact strings of the rating data, as in
``RatingData``):

* ``lists``: ``user_id`` (str), ``rank`` (int64, 1 = best; the position the user saw, see
  ``engine.external.load`` for how rank ties and score-only files are ordered),
  ``item_id`` (str), ``score`` (float64, the system's score; NaN when the file had none).
  Sorted by user then rank; every position of the file is kept (also past ``k``: the audit
  reads the top ``k``, the surrogate every score).
* ``predictions``: ``user_id`` (str), ``item_id`` (str), ``prediction`` (float64, as given,
  unclipped). One row per (user, item).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from engine.data.types import MAX_EXAMPLES

OutputKind = Literal["lists", "predictions"]
#: Reasons a row of an external file can be rejected, with the sentence used in reports.
#: Each row gets the first that applies, in this order.
EXTERNAL_REJECT_REASONS: dict[str, str] = {
    "malformed_row": "row is malformed (more fields than the header)",
    "missing_user_id": "user id is empty",
    "missing_item_id": "item id is empty",
    "missing_system": "system name is empty",
    "bad_rank": "rank is empty, not a whole number or below 1",
    "bad_score": "score is empty, NaN or not a number",
    "bad_prediction": "prediction is empty, NaN or not a number",
    "duplicate": "the same (user, item) pair appears again for the system (the first, best-"
    "ranked row was kept)",
    "unknown_user": "user is not in the rating data",
    "unknown_item": "item is not in the rating data",
}
__all__ = ["EXTERNAL_REJECT_REASONS", "MAX_EXAMPLES", "ExternalLoadReport", "ExternalSystem"]


def example_text(example: dict[str, Any]) -> str:
    """Return an example rejected row in words: ``row 12: user 999, item 5, rank 3``.

    Empty fields read ``(empty)``; a malformed line ``line 7: 5 fields``.
    """
    if "line" in example:
        return f"line {example['line']}: {example.get('fields', '?')} fields"
    fields = [f"{k} {'(empty)' if v is None else v}" for k, v in example.items() if k != "row"]
    return f"row {example.get('row', '?')}: " + ", ".join(fields)


@dataclass(frozen=True)
class ExternalLoadReport:
    """What happened to every row of one external file.

    Invariant: ``rows_kept + sum(rejected.values()) == rows_read``.

    Attributes
    ----------
    name, kind
        The file name and what it holds (``"lists"`` or ``"predictions"``).
    format, encoding, delimiter, header
        How the file was read (``engine.data.tables.read_table``).
    columns, detection
        ``{field: source column}`` and how each was found (``given``, ``name``, ``content``);
        fields: ``user, item, rank, score, system`` (lists) or ``user, item, prediction,
        system`` (predictions).
    rows_read, rows_kept, rejected, examples
        Data rows, rows kept, rejected rows per reason (``EXTERNAL_REJECT_REASONS``, only
        reasons that occurred) and up to ``MAX_EXAMPLES`` example rows per reason.
    unknown_users, unknown_items
        Distinct user and item ids absent from the rating data (their rows are rejected as
        ``unknown_user`` / ``unknown_item``).
    ties
        Lists only: ``rank_ties`` (rows sharing a (user, rank) with an earlier row: ordered
        by score, then file order, and given consecutive positions) and ``score_ties`` (a
        score-only file: rows whose score equals the previous row's for the user, ordered
        by item id).
    k, systems
        The ``k`` the lists were checked against, and per system: ``rows``, ``users``,
        ``short_lists`` (users with fewer than ``k`` items), ``long_lists`` (users with more:
        the audit reads their top ``k``), ``mean_length``; predictions: ``rows``, ``users``,
        ``out_of_scale`` (predictions outside the rating scale).
    notes
        Sentences about anything else assumed, changed or left out.
    """

    name: str
    kind: OutputKind
    format: str
    encoding: str | None
    delimiter: str | None
    header: bool | None
    columns: dict[str, str]
    detection: dict[str, str]
    rows_read: int
    rows_kept: int
    rejected: dict[str, int]
    examples: dict[str, list[dict[str, Any]]]
    unknown_users: int = 0
    unknown_items: int = 0
    ties: dict[str, int] = field(default_factory=dict)
    k: int | None = None
    systems: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        """Total rejected rows over all reasons."""
        return sum(self.rejected.values())

    def reason_text(self, reason: str) -> str:
        """Return the rejected rows of one reason in words, with the distinct unknown ids."""
        n = self.rejected[reason]
        if reason == "unknown_user":
            return (f"{n:,} rows of {self.unknown_users:,} users not in the rating data "
                    "(rejected)")  # fmt: skip
        if reason == "unknown_item":
            return (f"{n:,} rows with an item not in the rating data (rejected; the file "
                    f"names {self.unknown_items:,} such items)")  # fmt: skip
        return f"{n:,} rejected ({EXTERNAL_REJECT_REASONS[reason]})"

    def summary(self) -> str:
        """One line: the file, rows read, kept and rejected by reason (with distinct ids)."""
        parts = [f"{self.name} ({self.kind}): {self.rows_read:,} rows read",
                 f"{self.rows_kept:,} kept"]  # fmt: skip
        parts += [self.reason_text(r) for r in self.rejected]
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dictionary (with ``rows_rejected`` and the reasons)."""
        out = asdict(self)
        out["rows_rejected"] = self.rows_rejected
        out["reject_reasons"] = {r: EXTERNAL_REJECT_REASONS[r] for r in self.rejected}
        out["summary"] = self.summary()
        out["example_text"] = {r: [example_text(e) for e in rows]
                               for r, rows in self.examples.items()}  # fmt: skip
        return out


@dataclass(frozen=True)
class ExternalSystem:
    """One external recommender's outputs (tables in the module docstring).

    ``lists`` and/or ``predictions`` may be ``None`` (not both); ``load_reports`` are the
    reports of the files they came from (a file with a ``system`` column reports once for
    all its systems).
    """

    name: str
    lists: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    load_reports: tuple[ExternalLoadReport, ...] = ()

    @property
    def has_scores(self) -> bool:
        """Whether the system gave any score (list scores or predictions)."""
        if self.predictions is not None and len(self.predictions):
            return True
        return self.lists is not None and bool(self.lists["score"].notna().any())

    def top_for(self, user_id: str, n: int) -> pd.DataFrame:
        """Return the user's first ``n`` items: ``rank, item_id, score``.

        The list as the user saw it; a system with predictions only: its scores, highest
        first, ties by item id.
        """
        if self.lists is not None:
            rows = self.lists[self.lists["user_id"] == user_id]
            return rows[["rank", "item_id", "score"]].head(n).reset_index(drop=True)
        mine = self.scores()
        mine = mine[mine["user_id"] == user_id].assign(neg=lambda f: -f["score"])
        mine = mine.sort_values(["neg", "item_id"], kind="stable").head(n)
        return pd.DataFrame({"rank": np.arange(1, len(mine) + 1, dtype="int64"),
                             "item_id": mine["item_id"].to_numpy(object),
                             "score": mine["score"].to_numpy(float)})  # fmt: skip

    def scores(self) -> pd.DataFrame:
        """Every (user, item) score the system gave: ``user_id, item_id, score``.

        Predictions first; a listed item without a prediction adds its list score.
        """
        parts = []
        if self.predictions is not None:
            parts.append(self.predictions.rename(columns={"prediction": "score"}))
        if self.lists is not None:
            parts.append(self.lists.loc[self.lists["score"].notna(),
                                        ["user_id", "item_id", "score"]])  # fmt: skip
        if not parts:
            return pd.DataFrame({"user_id": [], "item_id": [], "score": []})
        both = pd.concat(parts, ignore_index=True)
        return both.drop_duplicates(["user_id", "item_id"], keep="first").reset_index(drop=True)
