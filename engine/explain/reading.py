r"""Read the exact history split: what was rated, why it pushes, how much the bars hold.

Each contribution of the exact split (``engine.explain.history.linear_history``) is a
product of two factors:

.. math::

    c_j = \underbrace{(x_i^\top A_u^{-1} x_j)}_{w_j:\ \text{weight}}\;
          \underbrace{(r_{uj} - \mu - b_j)}_{y_j:\ \text{residual}},
    \qquad x_j = [1, q_j],\; A_u = X^\top X + \lambda n_u I.

The residual :math:`y_j` says how the user's rating compares with what the model expects
of item :math:`j` from an average user (:math:`\mu + b_j`): positive = "you liked it more
than most", negative = "less than most". The weight :math:`w_j` says whether, in this
user's fitted taste (the ridge solve of all their ratings), item :math:`j` points the same
way as the target item (:math:`w_j > 0`, "like this item") or the opposite way
(:math:`w_j < 0`, "unlike this item"). The sign of :math:`c_j = w_j y_j` follows:

=========  ========  ===============================================================
residual   weight    reading
=========  ========  ===============================================================
``+``      ``+``     liked it more than most, and it is like this item: raises
``-``      ``-``     liked it less than most, and it is unlike this item: raises
``+``      ``-``     liked it more than most, but it is unlike this item: lowers
``-``      ``+``     liked it less than most, and it is like this item: lowers
=========  ========  ===============================================================

So a 0.5-star rating raises a prediction only when the film is unlike the target
(:math:`y_j < 0, w_j < 0`) or when it was rated *above* what the model expects of it
(:math:`y_j > 0`: a film most people rate even lower); the sentence says which, with the
expected rating. Reference: Hu, Koren & Volinsky (2008), section 5 (the linear fold-in
explanation of a prediction by past items).

``select_shown`` picks the bars a chart shows (largest :math:`|c_j|`, plus any ratings the
reader must see, e.g. a counterfactual's); ``coverage`` says how much of the history
effect :math:`\sum_j c_j` they hold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.explain.titles import titles_for
from engine.model import ridge
from engine.model.svd import TrainedModel, UserVector

#: The four readings of a contribution, keyed by (sign of residual, sign of weight).
DIRECTIONS: dict[tuple[int, int], str] = {
    (1, 1): "you liked it more than most and it is like this item, so it raises the prediction",
    (-1, -1): "you liked it less than most and it is unlike this item, so it raises the prediction",
    (1, -1): "you liked it more than most but it is unlike this item, so it lowers the prediction",
    (-1, 1): "you liked it less than most and it is like this item, so it lowers the prediction",
}
NO_EFFECT = "it does not move the prediction (rated as most do, or unrelated to this item)"
#: Columns of ``history_reading``.
READING_COLUMNS = [
    "item_id", "title", "rating", "expected", "residual", "weight", "contribution",
    "direction", "label",
]  # fmt: skip


def direction(residual: float, weight: float) -> str:
    """Return the reading of one contribution ``weight * residual`` (module table).

    Returns ``NO_EFFECT`` when either factor is exactly zero.
    """
    key = (int(np.sign(residual)), int(np.sign(weight)))
    return DIRECTIONS.get(key, NO_EFFECT)


def sentence(rating: float, expected: float, residual: float, weight: float) -> str:
    r"""Return the reading of one bar, e.g. ``Rated 0.5 (the model expects 2.90 ...): ...``.

    ``expected`` is :math:`\mu + b_j`, the model's rating of the item for an average user.
    """
    return f"Rated {rating:g} (the model expects {expected:.2f} from an average user): " + (
        direction(residual, weight) + "."
    )


def history_reading(
    model: TrainedModel, vector: UserVector, item: int, titles: dict[str, str] | None = None
) -> pd.DataFrame:
    r"""Return the exact split of ``item``'s prediction with both factors of each term.

    Returns
    -------
    pandas.DataFrame
        One row per rating of ``vector``, in its order (aligned with the history view's
        values). Columns: ``item_id``, ``title`` (the id when no title), ``rating``,
        ``expected`` (:math:`\mu + b_j`), ``residual`` (:math:`y_j`), ``weight``
        (:math:`w_j = x_i^\top A_u^{-1} x_j`), ``contribution`` (:math:`w_j y_j`; they sum
        to the prediction minus :math:`\mu + b_i` for the refit), ``direction`` (the
        sentence of ``sentence``) and ``label`` (``"<title>, rated <r>"``, for a bar).
    """
    items, ratings = vector.items, vector.ratings.astype(float)
    ids = model.interactions.item_ids[items].astype(str)
    expected = model.mu + model.bi[items]
    residual = ridge.residuals(model.mu, model.bi, items, ratings)
    weight = ridge.split_weights(
        ridge.design(model.Q, items), ridge.item_row(model.Q, item), model.config.refit_lambda
    )
    names = titles_for(ids, titles)
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": names,
            "rating": ratings,
            "expected": expected,
            "residual": residual,
            "weight": weight,
            "contribution": weight * residual,
            "direction": [
                sentence(*row) for row in zip(ratings, expected, residual, weight, strict=True)
            ],
            "label": [f"{name}, rated {r:g}" for name, r in zip(names, ratings, strict=True)],
        },
        columns=READING_COLUMNS,
    )


def select_shown(values: np.ndarray, top: int = 12, always: Iterable[int] = ()) -> np.ndarray:
    """Positions of the bars to show: the ``top`` largest ``|values|``, plus ``always``.

    Ties in ``|value|`` keep the earlier position. Returned in decreasing ``|value|``
    order (``always`` positions beyond the top included in that order).
    """
    values = np.asarray(values, float)
    order = np.argsort(-np.abs(values), kind="stable")
    keep = np.zeros(len(values), bool)
    keep[order[:top]] = True
    keep[[j for j in always if 0 <= j < len(values)]] = True
    return order[keep[order]]


@dataclass(frozen=True)
class Coverage:
    r"""How much of the history effect the shown bars hold.

    ``total`` is the history effect :math:`\sum_j c_j` (prediction minus the no-history
    base for the refit), ``shown`` the sum over the ``n_shown`` bars, ``rest`` the sum
    over the other ``n_total - n_shown`` ratings: ``shown + rest == total`` exactly (up to
    rounding). ``abs_share`` is :math:`\sum_{shown} |c_j| / \sum_j |c_j|` in [0, 1]
    (1 when every contribution is zero).
    """

    n_shown: int
    n_total: int
    shown: float
    rest: float
    total: float
    abs_share: float

    def describe(self) -> str:
        """E.g. ``The 12 largest of 1,290 ratings hold +0.030 of the +0.220 ...``."""
        if self.n_shown >= self.n_total:
            return (
                f"All {self.n_total:,} ratings are shown; together they add {self.total:+.3f} "
                "to the no-history prediction."
            )
        other = self.n_total - self.n_shown
        return (
            f"The {self.n_shown:,} largest of {self.n_total:,} ratings hold {self.shown:+.3f} "
            f"of the {self.total:+.3f} history effect; the other {other:,} hold "
            f"{self.rest:+.3f} (the shown bars hold {self.abs_share:.0%} of the sum of "
            "|contribution|)."
        )


def coverage(values: Sequence[float] | np.ndarray, shown: np.ndarray) -> Coverage:
    """Coverage of the bars at positions ``shown`` (from ``select_shown``) of ``values``."""
    values = np.asarray(values, float)
    mask = np.zeros(len(values), bool)
    mask[np.asarray(shown, int)] = True
    size = np.abs(values).sum()
    return Coverage(
        n_shown=int(mask.sum()),
        n_total=len(values),
        shown=float(values[mask].sum()),
        rest=float(values[~mask].sum()),
        total=float(values.sum()),
        abs_share=float(np.abs(values[mask]).sum() / size) if size > 0 else 1.0,
    )


def select_by_coverage(
    values: np.ndarray, share: float = 0.8, cap: int = 15
) -> tuple[np.ndarray, float]:
    r"""Positions of the largest ``|values|`` until they hold ``share`` of the total size.

    Takes terms by decreasing ``|value|`` (ties: earlier first) until their ``|value|``
    sum reaches ``share`` of :math:`\sum |v|`, at most ``cap`` of them (zero terms are
    never taken). Returns the positions and the share of the total size left out, in
    [0, 1] (0 when every value is zero).
    """
    values = np.asarray(values, float)
    size = np.abs(values)
    total = size.sum()
    if total == 0:
        return np.zeros(0, int), 0.0
    order = np.argsort(-size, kind="stable")
    held = np.cumsum(size[order]) / total
    count = int(np.searchsorted(held, share - 1e-12) + 1)
    count = min(count, cap, int((size > 0).sum()))
    chosen = order[:count]
    return chosen, float(1.0 - size[chosen].sum() / total)


def surprising(reading: pd.DataFrame, shown: np.ndarray, limit: int = 3) -> list[str]:
    """Sentences for the shown bars whose push runs against the rating (weight < 0).

    A rating below what the model expects that *raises* the prediction, or one above it
    that *lowers* it, is the bar a reader misreads without the weight. Returns at most
    ``limit`` of them, largest ``|contribution|`` first, as
    ``"<label>: <direction>."`` (data text: escape it where it is rendered).
    """
    rows = reading.iloc[np.asarray(shown, int)]
    rows = rows[(rows["weight"] < 0) & (rows["residual"] != 0)]
    rows = rows.iloc[np.argsort(-rows["contribution"].abs().to_numpy(), kind="stable")]
    return [
        f"{label}: {direction(y, w)}."
        for label, y, w in zip(rows["label"], rows["residual"], rows["weight"], strict=True)
    ][:limit]
