"""Implicit-feedback ALS (Hu, Koren and Volinsky) split along the consortium's boundary: every retailer
solves its own customers' factors locally with `implicit` (they never leave its node), and the item
update needs only per-item sums over customers, which add up across retailers because each customer
(at a retailer) is a row of exactly one of them:

    y_i = (G + S_i + lambda I)^-1 b_i,   G = sum_u x_u x_u^T,
    S_i = sum_{u bought i} (c_ui - 1) x_u x_u^T,   b_i = sum_{u bought i} c_ui x_u,

with confidence c_ui = alpha * r_ui, as `implicit` weighs a bought item (negatives weigh 1). So the
sums of the retailers' statistics give exactly the pooled model's item update: the secure sum adds
them (and its noise) and reveals nothing else. S_i is symmetric: only its upper triangle travels.

Clipping bounds what one customer moves: its factor's norm to 1, its confidences to `max_confidence`,
its items to `max_items` (the most bought); the noise is calibrated to those bounds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits


@dataclass(frozen=True)
class AlsParams:
    factors: int = 32
    regularization: float = 0.05
    alpha: float = 10.0  # confidence of one purchase
    epochs: int = 10
    seed: int = 0  # the initial item factors are public: every party derives them from the spec
    exact_users: bool = False  # customers by Cholesky; else implicit's default, 3 warm-started CG steps


@dataclass(frozen=True)
class Clipping:
    """What one customer may contribute (None: unclipped, e.g. for the pooled reference)."""

    max_items: int = 50  # distinct items per customer in training
    max_purchases: float = 5.0  # purchases of one item counted per customer (its confidence <= alpha x this)


def initial_item_factors(items: int, params: AlsParams) -> np.ndarray:
    """The public starting point, as `implicit` starts (uniform * 0.01), from the spec's seed."""
    return np.random.default_rng(params.seed).random((items, params.factors), dtype=np.float32) * 0.01


def clipped_purchases(user_items: sparse.csr_matrix, clipping: Clipping | None) -> sparse.csr_matrix:
    """Each customer's purchase counts capped, and only its `max_items` most bought items kept."""
    matrix = sparse.csr_matrix(user_items, dtype=np.float32, copy=True)
    if clipping is None:
        return matrix
    np.minimum(matrix.data, clipping.max_purchases, out=matrix.data)
    counts = np.diff(matrix.indptr)
    for row in np.flatnonzero(counts > clipping.max_items):  # few customers buy that many distinct items
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        values = matrix.data[start:end]
        values[np.argsort(-values, kind="stable")[clipping.max_items :]] = 0
    matrix.eliminate_zeros()
    return matrix


def user_factors(
    item_factors: np.ndarray,
    user_items: sparse.csr_matrix,
    params: AlsParams,
    previous: np.ndarray | None = None,
) -> np.ndarray:
    """Every customer's factors given the (public) item factors, by `implicit`'s own solver: the user
    half of its ALS epoch (Cholesky with `exact_users`, else CG warm-started from `previous`)."""
    from implicit.cpu.als import AlternatingLeastSquares

    y = np.ascontiguousarray(item_factors, dtype=np.float32)
    users = user_items.shape[0]
    x = np.zeros((users, params.factors), dtype=np.float32) if previous is None else previous.astype(np.float32)
    if users:
        confidence = sparse.csr_matrix(user_items, dtype=np.float32) * np.float32(params.alpha)
        with threadpool_limits(1, "blas"):  # implicit's threads solve the customers; BLAS's would fight them
            model = AlternatingLeastSquares(
                factors=params.factors,
                regularization=params.regularization,
                alpha=params.alpha,
                use_cg=not params.exact_users,
            )
            model.solver(confidence, x, y, params.regularization, num_threads=0)
    return x


def unit_norm(factors: np.ndarray) -> np.ndarray:
    """Factors scaled down to norm 1 at most (a customer's bounded contribution to the sums)."""
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    return factors / np.maximum(norms, 1.0)


@dataclass
class ItemStatistics:
    """One retailer's (or the consortium's summed) sufficient statistics for the item update."""

    gram: np.ndarray  # (k, k): G
    second: np.ndarray  # (items, k (k + 1) / 2): the upper triangle of each S_i
    first: np.ndarray  # (items, k): b_i
    customers: np.ndarray  # (items,): customers who bought it (support)

    def __add__(self, other: ItemStatistics) -> ItemStatistics:
        return ItemStatistics(
            self.gram + other.gram,
            self.second + other.second,
            self.first + other.first,
            self.customers + other.customers,
        )


def item_statistics(
    factors: np.ndarray, user_items: sparse.csr_matrix, params: AlsParams, chunk: int = 1 << 18
) -> ItemStatistics:
    """G, S_i, b_i and support over this retailer's customers, in float64. Item by item, its buyers'
    factors are gathered (at most `chunk` at a time: memory stays flat however popular the item) and
    S_i is one BLAS product of them (no loop over purchases)."""
    with threadpool_limits(1, "blas"):  # many small products: BLAS threads cost more than they give
        return _item_statistics(factors, user_items, params, chunk)


def _item_statistics(
    factors: np.ndarray, user_items: sparse.csr_matrix, params: AlsParams, chunk: int
) -> ItemStatistics:
    k = params.factors
    x = factors.astype(np.float64)
    by_item = sparse.csc_matrix(user_items)
    indptr, indices, data = by_item.indptr, by_item.indices, by_item.data
    items = by_item.shape[1]
    upper = np.triu_indices(k)
    second, first = np.zeros((items, len(upper[0]))), np.zeros((items, k))
    for item in range(items):
        outer = np.zeros((k, k))
        for lo in range(indptr[item], indptr[item + 1], chunk):
            hi = min(lo + chunk, indptr[item + 1])
            rows = x[indices[lo:hi]]  # this item's buyers' factors
            confidence = params.alpha * data[lo:hi].astype(np.float64)
            first[item] += confidence @ rows
            outer += (rows * (confidence - 1.0)[:, None]).T @ rows  # S_i = X_i^T diag(c - 1) X_i
        second[item] = outer[upper]
    customers = np.diff(indptr).astype(np.int64)
    return ItemStatistics(x.T @ x, second, first, customers)


def solve_items(summed: ItemStatistics, params: AlsParams, previous: np.ndarray) -> np.ndarray:
    """The item update from the summed statistics; an item nobody bought keeps its previous factors
    (the pooled model would zero them; an item without support is not released here)."""
    k = params.factors
    upper = np.triu_indices(k)
    items = summed.first.shape[0]
    matrices = np.zeros((items, k, k))
    matrices[:, upper[0], upper[1]] = summed.second
    matrices[:, upper[1], upper[0]] = summed.second
    matrices += summed.gram + params.regularization * np.eye(k)
    solved = np.linalg.solve(matrices, summed.first[:, :, None])[:, :, 0]
    bought = summed.customers > 0
    return np.where(bought[:, None], solved, previous).astype(np.float32)
