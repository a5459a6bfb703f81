"""What a reader needs beside an explanation, as one JSON-ready dict (for the CLI).

Gathers, for one (user, item) prediction: each rating's reading (rating, residual,
weight, contribution, direction in words; ``engine.explain.reading``), the coverage of
the ``top`` largest bars, the exact rollup by every item attribute
(``engine.explain.rollup``), the faithfulness check and, when the Shapley view was
computed, its rank agreement with the exact split (``engine.explain.faithfulness``).
The dashboard shows the same pieces, computed by the same functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data.types import RatingData
from engine.explain.faithfulness import (
    WHY_THEY_DIFFER,
    describe_agreement,
    faithfulness_check,
    rank_agreement,
)
from engine.explain.reading import coverage, history_reading, select_shown
from engine.explain.rollup import attribute_rollup, rollup_attributes
from engine.explain.titles import item_titles
from engine.model.svd import TrainedModel, UserVector

if TYPE_CHECKING:  # shap takes ~2 s to import: loaded where first used
    import shap

#: Bars of the "because you rated" chart whose coverage is stated.
TOP = 12


def reading_summary(
    model: TrainedModel,
    vector: UserVector,
    item: int,
    data: RatingData | None = None,
    shapley: shap.Explanation | None = None,
    top: int = TOP,
) -> dict[str, Any]:
    """Return the reading, coverage, rollups, faithfulness and agreement of one prediction.

    Returns
    -------
    dict
        ``ratings``: one record per rating (``engine.explain.reading.READING_COLUMNS``
        without ``label``) by decreasing ``|contribution|``; ``coverage``: the fields of
        ``Coverage`` plus ``sentence``; ``rollups``: per attribute, records of
        ``attribute_rollup``; ``faithfulness``: prediction and rank before, and per arm
        (``top``, ``random``) the removed item ids, prediction and rank, plus ``seed`` and
        ``sentence``; ``agreement`` (only with ``shapley``): ``spearman`` (``None`` when
        undefined), ``why`` and ``sentence``.
    """
    reading = history_reading(model, vector, item, item_titles(data))
    values = reading["contribution"].to_numpy()
    shown = coverage(values, select_shown(values, top))
    order = np.argsort(-np.abs(values), kind="stable")
    items = None if data is None else data.items
    check = faithfulness_check(model, vector, item, values)
    out: dict[str, Any] = {
        "ratings": reading.drop(columns="label").iloc[order].to_dict(orient="records"),
        "coverage": {**shown.__dict__, "sentence": shown.describe()},
        "rollups": {
            attribute: attribute_rollup(reading["item_id"], values, items, attribute).to_dict(
                orient="records"
            )
            for attribute in rollup_attributes(items)
        },
        "faithfulness": {
            "prediction": check.prediction,
            "rank": check.rank,
            "top": check.top.__dict__,
            "random": check.random.__dict__,
            "seed": check.seed,
            "sentence": check.describe(),
        },
    }
    if shapley is not None:
        rho = rank_agreement(values, shapley.values)
        out["agreement"] = {
            "spearman": None if rho != rho else rho,
            "why": WHY_THEY_DIFFER,
            "sentence": describe_agreement(rho, len(values)),
        }
    return out
