"""Name latent factors by what they correlate with, and optionally rotate them (varimax).

Factors are only defined up to rotation (``P R``, ``Q R`` predict the same for any
orthogonal ``R``), so a label describes the trained basis, not a fact about the data.
Each factor is described by:

* its Pearson correlation ``r`` with every item attribute over the items with training
  ratings: one indicator per genre and per value of each categorical attribute, and
  each numeric attribute (e.g. year); the label names the attribute most positively
  and the one most negatively correlated, and ``r2`` (= r^2 of the strongest one, in
  [0, 1]) is the confidence: the share of the factor's variance that attribute explains;
* its top- and bottom-loading items.

Varimax (Kaiser 1958) finds the rotation that makes item loadings sparse, which often
makes factors easier to name; ``rotate`` applies it without changing any prediction.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from engine.explain.titles import titles_for
from engine.model.svd import TrainedModel

TOP_ITEMS = 5
MIN_ITEMS_PER_VALUE = 5


def attribute_matrix(items: pd.DataFrame, item_ids: np.ndarray) -> pd.DataFrame:
    """Numeric item features aligned with ``item_ids``: genre and category indicators, numbers.

    Columns are named ``"genre: X"``, ``"<column>: <value>"`` or the numeric column's
    name; values held by fewer than ``MIN_ITEMS_PER_VALUE`` items are left out.
    """
    table = items.reindex(pd.Index(item_ids, dtype="str"))
    columns: dict[str, np.ndarray] = {}
    if "genres" in table:
        genres = table["genres"].map(lambda g: g if isinstance(g, tuple) else ())
        for genre in sorted({g for gs in genres for g in gs}):
            columns[f"genre: {genre}"] = genres.map(lambda gs, g=genre: g in gs).to_numpy(float)
    for name in table.columns:
        if name in ("genres", "title"):
            continue
        values = table[name]
        if pd.api.types.is_numeric_dtype(values):
            columns[str(name)] = values.astype("float64").to_numpy()
        else:
            for value in values.dropna().unique():
                columns[f"{name}: {value}"] = (values == value).to_numpy(float)
    frame = pd.DataFrame(columns, index=table.index)
    counts = (frame.fillna(0) != 0).sum()
    return frame.loc[:, counts >= MIN_ITEMS_PER_VALUE]


def _correlations(loadings: np.ndarray, features: pd.DataFrame) -> pd.DataFrame:
    """Pearson r of each factor (columns of ``loadings``) with each feature column."""
    out = {}
    for name in features.columns:
        x = features[name].to_numpy(float)
        ok = np.isfinite(x)
        xc = x[ok] - x[ok].mean()
        lc = loadings[ok] - loadings[ok].mean(axis=0)
        denom = np.sqrt((xc**2).sum() * (lc**2).sum(axis=0))
        out[name] = np.where(denom > 0, xc @ lc / np.where(denom > 0, denom, 1), 0.0)
    return pd.DataFrame(out)


def factor_labels(
    model: TrainedModel, items: pd.DataFrame | None, titles: dict[str, str] | None = None
) -> pd.DataFrame:
    """Describe every factor.

    Returns
    -------
    pandas.DataFrame
        One row per factor: ``factor`` (1-based), ``label`` ("+A / -B", or ``factor k``
        without attributes), ``positive``/``negative`` (attribute names), ``r_positive``,
        ``r_negative``, ``r2`` (confidence, strongest r^2), ``top_items``,
        ``bottom_items`` (titles or ids, highest and lowest loading first).
    """
    trained = model.interactions.counts_per_item() > 0
    item_ids = model.interactions.item_ids[trained]
    loadings = model.Q[trained]
    names = titles_for(item_ids, titles)
    corr = None
    if items is not None:
        features = attribute_matrix(items, item_ids)
        if features.shape[1]:
            corr = _correlations(loadings, features)
    rows = []
    for k in range(loadings.shape[1]):
        order = np.argsort(-loadings[:, k], kind="stable")
        row = {
            "factor": k + 1,
            "label": f"factor {k + 1}",
            "positive": None,
            "negative": None,
            "r_positive": np.nan,
            "r_negative": np.nan,
            "r2": np.nan,
            "top_items": [names[j] for j in order[:TOP_ITEMS]],
            "bottom_items": [names[j] for j in order[::-1][:TOP_ITEMS]],
        }
        if corr is not None:
            r = corr.iloc[k]
            pos, neg = r.idxmax(), r.idxmin()
            row |= {
                "positive": pos,
                "negative": neg,
                "r_positive": float(r[pos]),
                "r_negative": float(r[neg]),
                "r2": float(max(r[pos] ** 2, r[neg] ** 2)),
                "label": f"+{pos} / -{neg}",
            }
        rows.append(row)
    return pd.DataFrame(rows)


def varimax(
    loadings: np.ndarray, *, gamma: float = 1.0, iterations: int = 100, tol: float = 1e-8
) -> np.ndarray:
    """Return the orthogonal rotation ``R`` maximising the varimax criterion of ``loadings R``.

    Kaiser's criterion, the standard SVD-based iteration (gamma = 1: varimax).
    """
    p, k = loadings.shape
    R = np.eye(k)
    objective = 0.0
    for _ in range(iterations):
        L = loadings @ R
        target = L**3 - (gamma / p) * L @ np.diag((L**2).sum(axis=0))
        u, s, vt = np.linalg.svd(loadings.T @ target)
        R = u @ vt
        previous, objective = objective, s.sum()
        if previous and objective < previous * (1 + tol):
            break
    return R


def rotate(model: TrainedModel, rotation: np.ndarray) -> TrainedModel:
    """Return the model with ``P R`` and ``Q R`` (predictions unchanged), ``R`` recorded."""
    return replace(model, P=model.P @ rotation, Q=model.Q @ rotation, rotation=rotation)


def latent_tastes(
    model: TrainedModel, pu: np.ndarray, labels: list[str], n: int = 6
) -> pd.DataFrame:
    """Return the user's most distinctive factors: ``factor, label, value, z`` (by |z|).

    ``z = (p_uk - mean_k) / std_k`` over all users: how far this user's taste on factor
    ``k`` is from the average user's, in standard deviations.
    """
    mean, std = model.P.mean(axis=0), model.P.std(axis=0)
    z = np.divide(pu - mean, std, out=np.zeros_like(pu), where=std > 0)
    order = np.argsort(-np.abs(z), kind="stable")[:n]
    return pd.DataFrame(
        {
            "factor": order + 1,
            "label": [labels[k] for k in order],
            "value": pu[order],
            "z": z[order],
        }
    )
