r"""Attribute a prediction to the user's bias and latent factors (SHAP, linear model).

For a fixed item ``i`` the SVD prediction is linear in the user's side
:math:`z_u = [b_u, p_u]`: :math:`f(z) = \mu + b_i + [1, q_i] \cdot z`. With all users as
the background distribution (mean :math:`\bar z`), ``shap.LinearExplainer``'s
interventional values are, in closed form,

.. math::

    \text{base} = \mu + b_i + \bar b + q_i \cdot \bar p, \qquad
    \phi_{b} = b_u - \bar b, \qquad
    \phi_k = q_{ik} (p_{uk} - \bar p_k),

and ``base + sum(phi)`` is the unclipped prediction. (A test checks equality with
``shap.LinearExplainer((coef, intercept), (mean, cov))``; passing the mean and
covariance avoids shap's silent subsampling of a raw background to 100 rows.)

Latent factors are only defined up to rotation: any orthogonal ``R`` gives the same
predictions with ``P R`` and ``Q R``. A factor's meaning is therefore a description of
the trained basis (``engine.explain.labels``), not a property of the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from engine.model.svd import TrainedModel, UserVector

if TYPE_CHECKING:  # shap takes ~2 s to import: loaded where first used
    import shap

USER_BIAS = "user bias (vs average user)"


def factor_names(model: TrainedModel, labels: list[str] | None = None) -> list[str]:
    """Feature names: the user-bias term, then ``factor k`` or its label."""
    k = model.Q.shape[1]
    names = labels if labels is not None else [f"factor {j + 1}" for j in range(k)]
    return [USER_BIAS, *names]


def background(model: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of ``[b_u, p_u]`` over all users (the SHAP background)."""
    Z = np.column_stack([model.bu, model.P])
    return Z.mean(axis=0), np.cov(Z, rowvar=False)


def factor_explanation(
    model: TrainedModel, vector: UserVector, item: int, labels: list[str] | None = None
) -> shap.Explanation:
    """Closed-form LinearExplainer values of one prediction (see module docstring).

    Returns
    -------
    shap.Explanation
        ``values`` = ``[phi_b, phi_1..phi_k]``; ``base_values``; ``data`` = ``[b_u, p_u]``;
        ``feature_names`` from ``factor_names``.
    """
    import shap

    mean, _ = background(model)
    z = np.concatenate([[vector.bu], vector.pu])
    coef = np.concatenate([[1.0], model.Q[item]])
    base = model.mu + model.bi[item] + coef @ mean
    return shap.Explanation(
        values=coef * (z - mean),
        base_values=float(base),
        data=z,
        feature_names=factor_names(model, labels),
    )


def shap_linear_explanation(model: TrainedModel, vector: UserVector, item: int) -> shap.Explanation:
    """Compute the same values with ``shap.LinearExplainer`` (checks the closed form)."""
    import shap

    mean, cov = background(model)
    coef = np.concatenate([[1.0], model.Q[item]])
    intercept = model.mu + model.bi[item]
    explainer = shap.LinearExplainer((coef, intercept), (mean, cov))
    z = np.concatenate([[vector.bu], vector.pu])[None, :]
    values = explainer.shap_values(z)[0]
    return shap.Explanation(
        values=values,
        base_values=float(np.asarray(explainer.expected_value).ravel()[0]),
        data=z[0],
        feature_names=factor_names(model),
    )
