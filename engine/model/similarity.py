r"""Surprise's ``pearson_baseline`` similarity as one fused sparse product.

For entities :math:`x` (items, in the item-based KNNBaseline used here) rated by
entities :math:`y` (users), with baselines :math:`b_{yx} = \mu + b_y + b_x` and
residuals :math:`e_{yx} = r_{yx} - b_{yx}`, Surprise 1.1.5 (``similarities.pyx``)
defines, over the set :math:`Y_{ij}` of the :math:`n_{ij} = |Y_{ij}|` entities that
rated both :math:`i` and :math:`j`,

.. math::

    s_{ij} = \frac{n_{ij} - 1}{n_{ij} - 1 + \lambda}
             \cdot \frac{\sum_{y \in Y_{ij}} e_{yi}\, e_{yj}}
                        {\sqrt{\sum_{y \in Y_{ij}} e_{yi}^2 \cdot \sum_{y \in Y_{ij}} e_{yj}^2}},

with shrinkage :math:`\lambda` (default 100). Range :math:`[-1, 1]`, higher is more
similar. Conventions, Surprise's unless stated:

* :math:`s_{ii} = 1` for every :math:`x` with at least one rating (an :math:`x` with none
  is not in a Surprise trainset; we give it :math:`s_{ii} = 0`, like its other pairs);
* :math:`s_{ij} = 0` when :math:`n_{ij} < \max(2, \text{min\_support})`, in particular for
  no common rater (0, not -1) and for exactly one;
* a zero denominator with :math:`n_{ij} \ge 2` (all residuals of :math:`i` or of
  :math:`j` over :math:`Y_{ij}` exactly 0, so the numerator is 0 too): Surprise raises
  ``ZeroDivisionError`` (Cython's checked float division) and the whole fit fails; we set
  :math:`s_{ij} = 0` (no evidence of correlation).

With :math:`E` the sparse :math:`n_y \times n_x` residual matrix, :math:`M` its 0/1
indicator and :math:`E^{\circ 2}` its elementwise square, the four per-pair sums are the
sparse products

.. math::

    \textstyle\sum e_{yi} e_{yj} = (E^\top E)_{ij},\quad
    \sum e_{yi}^2 = (E^{\circ 2\top} M)_{ij},\quad
    \sum e_{yj}^2 = (M^\top E^{\circ 2})_{ij},\quad
    n_{ij} = (M^\top M)_{ij}.

They share one sparsity pattern, so they are computed together, row by row
(Gustavson's row-wise sparse product, with four accumulators), for :math:`j > i` only,
then mirrored: :math:`\sum_y n_y^2 / 2` multiply-adds in all, where :math:`n_y` is the
number of ratings of :math:`y`. (Four separate ``scipy.sparse`` products, each over
the full square and each with its own index pass, measured only 1.1-2x faster than
Surprise.) ``scipy.sparse`` builds the CSR and CSC index structures; the loop is
compiled with numba (a dependency of shap) on first use and cached on disk.
Each row sums over raters in ascending index, as Surprise's loop does: with the same
indices the result equals Surprise's to rounding (bit for bit on x86-64, where neither
build fuses multiply-adds), and with other indices to about 1e-16.
The only full-size array is :math:`s` itself (Surprise holds five: counts, products, two
sums of squares and :math:`s`).

Reference: Koren, "Factor in the neighbors: scalable and accurate collaborative
filtering", ACM TKDD 4(1), 2010, section 2.2; Surprise documentation,
``surprise.similarities.pearson_baseline``; Gustavson, "Two fast algorithms for sparse
matrices: multiplication and permuted transposition", ACM TOMS 4(3), 1978.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import scipy.sparse as sp

#: Rows per tile when mirroring the upper triangle (cache-sized square tiles).
_MIRROR_TILE = 32


def pearson_baseline(
    x: np.ndarray,
    y: np.ndarray,
    ratings: np.ndarray,
    global_mean: float,
    x_biases: np.ndarray,
    y_biases: np.ndarray,
    shrinkage: float = 100.0,
    min_support: int = 1,
) -> np.ndarray:
    r"""Shrunk Pearson-baseline similarity between all pairs of ``x`` (module docstring).

    Parameters
    ----------
    x, y
        Integer index of the compared entity (items when item-based) and of the rater
        (users) of each rating; each ``(x, y)`` pair at most once.
    ratings
        Rating values, same length as ``x`` and ``y``.
    global_mean, x_biases, y_biases
        Baselines :math:`b_{yx} = \mu + b_y + b_x`; ``len(x_biases)`` is the number of
        compared entities ``n_x``, ``len(y_biases)`` the number of raters.
    shrinkage
        :math:`\lambda \ge 0`; 0 means no shrinkage.
    min_support
        Pairs with fewer common raters than ``max(2, min_support)`` get 0.

    Returns
    -------
    numpy.ndarray
        ``(n_x, n_x)`` float64, C-contiguous and exactly symmetric, as Surprise's.

    Raises
    ------
    ValueError
        Lengths differ, an index is out of range, a pair appears twice, or
        ``shrinkage < 0``.
    """
    x, y = np.asarray(x, dtype=np.int64), np.asarray(y, dtype=np.int64)
    ratings = np.asarray(ratings, dtype=np.float64)
    x_biases = np.asarray(x_biases, dtype=np.float64)
    y_biases = np.asarray(y_biases, dtype=np.float64)
    n_x, n_y = len(x_biases), len(y_biases)
    _check(x, y, ratings, n_x, n_y, shrinkage)
    # Surprise's order of operations: r - ((mu + b_y) + b_x).
    residual = ratings - ((global_mean + y_biases[y]) + x_biases[x])

    # Sparse index matrices hold each rating's 1-based position: E's CSR (rows y) and
    # E's CSC (rows x of E^T), both with sorted indices; duplicates would be summed.
    position = sp.csr_matrix((np.arange(1, len(x) + 1), (y, x)), shape=(n_y, n_x))
    if position.nnz != len(x):
        raise ValueError(_DUPLICATE)
    position.sort_indices()
    by_y = position.data - 1
    by_x_matrix = position.tocsc()
    by_x_matrix.sort_indices()
    by_x = by_x_matrix.data - 1
    rank = np.empty(len(x), dtype=np.int64)
    rank[by_y] = np.arange(len(x))
    args = (
        by_x_matrix.indptr.astype(np.int64), by_x_matrix.indices.astype(np.int64),
        residual[by_x], rank[by_x],  # per x: raters y ascending, e_yx, place in E's CSR
        position.indptr.astype(np.int64), position.indices.astype(np.int64),
        residual[by_y],  # per y: rated x ascending, e_yx
        float(max(2, min_support)), float(shrinkage),
    )  # fmt: skip

    sim = np.zeros((n_x, n_x))
    kernel, mirror = _kernels()
    kernel(*args, sim)
    mirror(sim, _MIRROR_TILE)
    np.fill_diagonal(sim, (np.diff(by_x_matrix.indptr) > 0).astype(np.float64))
    return sim


_LENGTHS = "x, y and ratings must have the same length (got {}, {} and {})."
_RANGE = "{} index out of range: must lie in [0, {}) for {} biases."
_DUPLICATE = "A (x, y) pair is rated twice: pearson_baseline needs each rating once."
_SHRINKAGE = "shrinkage={} must be >= 0."


def _check(x, y, ratings, n_x: int, n_y: int, shrinkage: float) -> None:
    if not len(x) == len(y) == len(ratings):
        raise ValueError(_LENGTHS.format(len(x), len(y), len(ratings)))
    for name, index, n in (("x", x, n_x), ("y", y, n_y)):
        if len(index) and (index.min() < 0 or index.max() >= n):
            raise ValueError(_RANGE.format(name, n, name))
    if not shrinkage >= 0:
        raise ValueError(_SHRINKAGE.format(shrinkage))


def _upper_rows(x_ptr, x_y, x_e, x_pos, y_ptr, y_x, y_e, support, shrinkage, out):
    """Fill the strict upper triangle of ``out`` (``j > i``), row by row.

    For row ``i``: for each rater ``y`` of ``i`` (ascending), for each ``j > i`` rated by
    ``y``, accumulate ``n_ij``, ``sum e_i e_j``, ``sum e_i^2``, ``sum e_j^2``; then
    write the touched ``j`` and reset them.
    """
    n_x = out.shape[1]
    acc = np.zeros((n_x, 4))  # n, sum e_i e_j, sum e_i^2, sum e_j^2
    touched = np.empty(n_x, dtype=np.int64)
    for i in range(n_x):
        n_touched = 0
        for k in range(x_ptr[i], x_ptr[i + 1]):
            rater, e_i = x_y[k], x_e[k]
            e_i2 = e_i * e_i
            for m in range(x_pos[k] + 1, y_ptr[rater + 1]):
                j, e_j = y_x[m], y_e[m]
                a = acc[j]
                if a[0] == 0.0:
                    touched[n_touched] = j
                    n_touched += 1
                a[0] += 1.0
                a[1] += e_i * e_j
                a[2] += e_i2
                a[3] += e_j * e_j
        row = out[i]
        for t in range(n_touched):
            a = acc[touched[t]]
            n = a[0]
            den = np.sqrt(a[2] * a[3])
            if n >= support and den > 0.0:
                row[touched[t]] = a[1] / den * ((n - 1.0) / (n - 1.0 + shrinkage))
            a[:] = 0.0


def _mirror_lower(out, tile):
    """Copy the strict upper triangle to the lower, in square tiles."""
    n = out.shape[0]
    for ti in range(0, n, tile):
        for tj in range(ti, n, tile):
            for i in range(ti, min(ti + tile, n)):
                for j in range(max(tj, i + 1), min(tj + tile, n)):
                    out[j, i] = out[i, j]


@cache
def _kernels():
    """Compile the two loops with numba on first use (cached on disk between runs)."""
    import numba

    def jit(func):
        return numba.njit(cache=True)(func)

    return jit(_upper_rows), jit(_mirror_lower)
