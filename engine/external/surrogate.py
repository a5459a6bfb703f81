r"""Explain an external system through a surrogate in the built-in SVD's item-factor space.

The product cannot see inside an external system, only its scores. Per user ``u`` with
scored items ``J_u`` (predictions and list scores, ``ExternalSystem.scores``; items the SVD
knows), the surrogate is the built-in model's ridge user side (``engine.model.ridge``)
fitted to the *system's scores* :math:`s_{uj}` instead of the user's ratings:

.. math::

    x_j = [1, q_j], \quad y_j = s_{uj} - \mu - b_j, \quad
    \theta_u = (X^\top X + \lambda n_u I)^{-1} X^\top y, \quad
    \hat s_{uj} = \mu + b_j + x_j^\top \theta_u

with the SVD's item side :math:`(\mu, b_j, q_j)` fixed and ``n_u = |J_u|``. A system that *is*
an SVD with this item side is fitted exactly (up to the tiny ridge ``lam``): R^2 = 1.

Fidelity (always shown beside a surrogate explanation) is measured *out of sample*: with
:math:`n_u` scores and ``n_factors + 1`` parameters, an in-sample fit of pure noise reaches
:math:`R^2 \approx (n_factors + 1) / n_u` (0.5 with 200 scores and 100 factors), which would
pass for an explanation. So each score is predicted from the others (leave-one-out, exact
for ridge: :math:`e^{(-j)}_j = e_j / (1 - h_{jj})`, :math:`h_{jj} = x_j^\top A_u^{-1} x_j`):

* ``r2`` per user: :math:`R^2_u = 1 - \sum_j (e^{(-j)}_j)^2 / \sum_j (s_{uj} - \bar s_u)^2`
  (the predicted-residual R^2), in :math:`(-\infty, 1]`, higher = the surrogate matches the
  system better; 1 for a system that is an SVD with this item side, about 0 or below for
  scores the factors cannot express. Only users with more scores than parameters
  (``n_u > n_factors + 1``) get one: with fewer, any scores fit exactly and R^2 says nothing
  (status ``too few scores``). Users whose scores do not vary have none either (``constant
  scores``).
* overall R^2: :math:`1 - \sum_u PRESS_u / \sum_u SST_u` over the users with an R^2.
* ``overlap`` per user: :math:`|T_k(s) \cap T_k(\hat s^{(-)})| / k` with :math:`T_k` the ``k``
  highest-scored of the user's scored items (ties by item id), :math:`\hat s^{(-)}` the
  leave-one-out predictions, ``k = min(top_n, n_u)``; in [0, 1], higher = the surrogate ranks
  the system's top items the same way.
* A user's surrogate explains nothing when ``r2 < MIN_R2`` (``low fidelity``): the "why"
  would describe a model that does not behave like the system.

Scores on another scale than the ratings fit less well (the item biases are the rating
model's); the fidelity says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shap

from engine.errors import EngineError
from engine.explain.factors import factor_explanation
from engine.external.types import ExternalSystem
from engine.model import ridge
from engine.model.svd import TrainedModel, UserVector

#: Below this per-user R^2 the surrogate is not used to explain anything.
MIN_R2 = 0.5
#: The surrogate's ridge strength (per score, ``lam * n_u``): small, so that it reproduces a
#: system in the SVD's item space instead of shrinking towards the item baseline.
SURROGATE_LAMBDA = 1e-6
#: Columns of ``Surrogate.users``.
USER_COLUMNS = ["user_id", "n_scores", "r2", "overlap", "sse", "sst", "status"]
STATUSES = ("ok", "low fidelity", "too few scores", "constant scores")


class SurrogateError(EngineError):
    """A surrogate that cannot be fitted or used (no scores, unknown user)."""


@dataclass(frozen=True)
class Surrogate:
    """A system's per-user surrogate and its fidelity (module docstring).

    Attributes
    ----------
    system
        The system's name.
    users
        ``USER_COLUMNS``: per user with scores, the number of scores, ``r2`` and ``overlap``
        (NaN where not defined), ``sse`` (the leave-one-out PRESS), ``sst`` and ``status``
        (``STATUSES``).
    theta
        ``[b_u, p_u]`` per user (index ``user_id``, columns ``bu, f1..fk``).
    overall_r2, mean_overlap
        Pooled R^2 over users with an R^2, and mean overlap over users with scores.
    top_n, lam, min_r2
        The settings used.
    """

    system: str
    users: pd.DataFrame
    theta: pd.DataFrame
    overall_r2: float
    mean_overlap: float
    top_n: int
    lam: float = SURROGATE_LAMBDA
    min_r2: float = MIN_R2

    def fidelity(self, user_id: str) -> pd.Series:
        """Return the user's row of ``users`` (``SurrogateError`` when absent)."""
        rows = self.users[self.users["user_id"] == user_id]
        if rows.empty:
            raise SurrogateError(
                f"{self.system} gave no score for user {user_id!r}: there is no surrogate of "
                "this user to explain."
            )
        return rows.iloc[0]

    def label(self, user_id: str) -> str:
        """Return the sentence shown beside every surrogate explanation of ``user_id``."""
        row = self.fidelity(user_id)
        if row["status"] == "too few scores":
            n, params = int(row["n_scores"]), self.theta.shape[1]
            if n <= params:
                return (
                    f"{n:,} scores for this user; the surrogate needs more scores than its "
                    f"{params:,} parameters (factors + bias) — give longer scored lists or a "
                    "predictions file."
                )
            return (
                f"{n:,} scores for this user, but too alike for the surrogate's {params:,} "
                "parameters (factors + bias) to be judged on scores it did not see — give "
                "scores of more varied items (longer scored lists or a predictions file)."
            )
        if row["status"] == "constant scores":
            return f"{self.system} gave this user one score for every item: nothing to explain."
        fit = (f"R^2 = {row['r2']:.2f} for this user, top-{self.top_n} overlap "
               f"{row['overlap']:.0%}")  # fmt: skip
        if row["status"] == "low fidelity":
            return (
                f"The surrogate matches {self.system} poorly for this user ({fit}; below the "
                f"threshold R^2 = {self.min_r2:g}): it cannot explain this user's list."
            )
        return f"This explains a surrogate that matches {self.system} with {fit}."

    def to_dict(self) -> dict[str, object]:
        """JSON-ready fidelity summary (no per-user rows: the report holds aggregates)."""
        counts = self.users["status"].value_counts()
        r2 = self.users["r2"].dropna()
        return {
            "system": self.system, "overall_r2": self.overall_r2,
            "mean_overlap": self.mean_overlap, "top_n": self.top_n, "lam": self.lam,
            "min_r2": self.min_r2, "n_users": len(self.users),
            "median_r2": float(r2.median()) if len(r2) else None,
            "statuses": {s: int(counts.get(s, 0)) for s in STATUSES},
        }  # fmt: skip


def no_explanation_reason(
    system: ExternalSystem, surrogate: Surrogate | None, user_id: str
) -> str | None:
    """Why ``system``'s list of ``user_id`` cannot be explained (``None``: it can).

    ``surrogate`` is the system's surrogate (``None`` when none was fitted); the sentence
    names what is missing: scores at all, this user's scores, enough of them, or fidelity.
    """
    if not system.has_scores:
        return (
            f"No explanation: {system.name} gave no scores (its lists have ranks only): a "
            "surrogate needs scores — add a score column or a predictions file."
        )
    if surrogate is None:
        return f"No explanation: no surrogate of {system.name} could be fitted (see the notes)."
    if not (surrogate.users["user_id"] == user_id).any():
        return (
            f"No explanation: {system.name} gave no scores for this user (of items the built-in "
            "model knows)."
        )
    if surrogate.fidelity(user_id)["status"] == "ok":
        return None
    return "No explanation: " + surrogate.label(user_id)


def _top(values: np.ndarray, item_ids: np.ndarray, k: int) -> set:
    order = np.lexsort((item_ids, -values))
    return set(item_ids[order[:k]])


def fit_surrogate(
    system: ExternalSystem,
    model: TrainedModel,
    *,
    top_n: int = 10,
    lam: float = SURROGATE_LAMBDA,
    min_r2: float = MIN_R2,
) -> Surrogate:
    """Fit the surrogate of every user the system scored (module docstring).

    Scores of items the model does not know are left out (they have no ``q_j``).

    Raises
    ------
    SurrogateError
        The system gave no score (a lists file with ranks only, and no predictions).
    """
    scores = system.scores()
    if scores.empty:
        raise SurrogateError(
            f"{system.name} gave no score (its lists have ranks only and it has no "
            "predictions): a surrogate needs scores; add a score column or a predictions file."
        )
    inter = model.interactions
    items = inter.item_index(scores["item_id"].to_numpy())
    scores = scores.assign(item=items)[items >= 0]
    n_params = model.Q.shape[1] + 1
    rows, thetas, ids = [], [], []
    for user, block in scores.groupby("user_id", sort=True):
        j = block["item"].to_numpy()
        s = block["score"].to_numpy(float)
        X = ridge.design(model.Q, j)
        A = ridge.ridge_matrix(X, lam)
        theta = np.linalg.solve(A, X.T @ (s - model.mu - model.bi[j]))
        fitted = model.mu + model.bi[j] + X @ theta
        leverage = np.einsum("ij,ji->i", X, np.linalg.solve(A, X.T))
        free = 1 - leverage
        stable = bool(np.all(free > 1e-9))
        loo = (s - fitted) / np.where(stable, free, 1.0)  # leave-one-out residuals
        sse = float(np.sum(loo**2))  # PRESS
        sst = float(np.sum((s - s.mean()) ** 2))
        k = min(top_n, len(j))
        ids_j = inter.item_ids[j]
        overlap = len(_top(s, ids_j, k) & _top(s - loo, ids_j, k)) / k
        if sst <= 1e-12 * max(1.0, float(np.sum(s**2))):
            status, r2 = "constant scores", np.nan
        elif len(j) <= n_params or not stable:
            status, r2 = "too few scores", np.nan
        else:
            r2 = 1 - sse / sst
            status = "ok" if r2 >= min_r2 else "low fidelity"
        rows.append((user, len(j), r2, overlap, sse, sst, status))
        thetas.append(theta)
        ids.append(user)
    users = pd.DataFrame(rows, columns=USER_COLUMNS)
    judged = users["r2"].notna()
    total = users.loc[judged, "sst"].sum()
    overall = float(1 - users.loc[judged, "sse"].sum() / total) if total > 0 else float("nan")
    theta = pd.DataFrame(
        np.array(thetas).reshape(len(ids), n_params),
        index=pd.Index(ids, name="user_id", dtype=object),
        columns=["bu", *[f"f{f + 1}" for f in range(n_params - 1)]],
    )
    mean_overlap = float(users["overlap"].mean()) if len(users) else float("nan")
    return Surrogate(system.name, users, theta, overall, mean_overlap, top_n, lam, min_r2)


def surrogate_explanation(
    surrogate: Surrogate,
    model: TrainedModel,
    user_id: str,
    item_id: str,
    labels: list[str] | None = None,
) -> tuple[shap.Explanation | None, str]:
    """Return the factor view (``engine.explain.factors``) of the surrogate's score of one item.

    Returns ``(explanation, label)``: ``label`` is ``Surrogate.label`` (the fidelity
    sentence); ``explanation`` is ``None`` when the user's status is not ``ok`` (the
    surrogate explains nothing then).

    Raises
    ------
    SurrogateError
        No surrogate of the user, or the item is unknown to the model.
    """
    label = surrogate.label(user_id)
    if surrogate.fidelity(user_id)["status"] != "ok":
        return None, label
    item = int(model.interactions.item_index([item_id])[0])
    if item < 0:
        raise SurrogateError(
            f"Item {item_id!r} is not in the built-in model's data: the surrogate has no "
            "factors for it."
        )
    theta = surrogate.theta.loc[user_id].to_numpy(float)
    vector = UserVector(float(theta[0]), theta[1:], np.zeros(0, int), np.zeros(0), [])
    return factor_explanation(model, vector, item, labels), label
