"""The scalable recommender's algorithm: implicit ALS split along the consortium's boundary. Customers'
factors are solved by each retailer with `implicit`; the item update from the retailers' summed
statistics equals the pooled model's, so without noise the clean room loses nothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from cleanroom.recommend.federated_als import (
    AlsParams,
    Clipping,
    clipped_purchases,
    initial_item_factors,
    item_statistics,
    solve_items,
    unit_norm,
    user_factors,
)


def purchases(users: int, items: int, seed: int = 1) -> sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    counts = (rng.random((users, items)) < 0.03) * rng.integers(1, 4, (users, items))
    counts[np.arange(users), rng.integers(0, items, users)] += 1  # everyone bought something
    return sparse.csr_matrix(counts.astype(np.float32))


def federated(parts: list[sparse.csr_matrix], items: int, params: AlsParams) -> np.ndarray:
    y = initial_item_factors(items, params)
    for _ in range(params.epochs):
        summed = None
        for part in parts:  # each retailer on its own: its customers' factors stay with it
            stats = item_statistics(user_factors(y, part, params), part, params)
            summed = stats if summed is None else summed + stats
        assert summed is not None
        y = solve_items(summed, params, y)
    return y


def test_the_summed_statistics_give_the_pooled_models_item_factors() -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    matrix, items = purchases(3000, 400), 400
    params = AlsParams(factors=8, regularization=0.1, alpha=5.0, epochs=3, seed=3, exact_users=True)
    joint = federated([matrix[:1000], matrix[1000:1800], matrix[1800:]], items, params)
    pooled = AlternatingLeastSquares(factors=8, regularization=0.1, alpha=5.0, use_cg=False, iterations=3)
    pooled.item_factors = initial_item_factors(items, params)  # the same public start
    pooled.user_factors = np.zeros((3000, 8), dtype=np.float32)
    pooled.fit(matrix, show_progress=False)
    assert np.abs(joint).max() > 0.05  # trained, not the 0.01-scale start
    np.testing.assert_allclose(joint, pooled.item_factors, atol=2e-5)


def test_one_customer_moves_the_statistics_by_a_bounded_amount() -> None:
    """With its factor's norm at most 1, purchases capped and at most max_items items, removing one
    customer changes G by at most 1 (Frobenius), sum S_i and b_i by at most sqrt(max_items) x the
    confidence terms: the bounds the noise is calibrated to."""
    params = AlsParams(factors=6, alpha=4.0)
    clipping = Clipping(max_items=5, max_purchases=3)
    matrix = clipped_purchases(purchases(200, 60, seed=5) * 4, clipping)
    assert np.diff(matrix.indptr).max() <= 5 and matrix.data.max() <= 3
    factors = unit_norm(np.random.default_rng(2).normal(size=(200, 6)) * 3)
    assert np.linalg.norm(factors, axis=1).max() <= 1 + 1e-9
    everyone = item_statistics(factors, matrix, params)
    for customer in range(0, 200, 37):
        keep = np.arange(200) != customer
        without = item_statistics(factors[keep], matrix[keep], params)
        c_max = params.alpha * clipping.max_purchases
        assert np.linalg.norm(everyone.gram - without.gram) <= 1 + 1e-9
        assert np.linalg.norm(everyone.first - without.first) <= np.sqrt(5) * c_max + 1e-9
        # Only the upper triangle travels: its norm is at most the full matrices' Frobenius norm.
        assert np.linalg.norm(everyone.second - without.second) <= np.sqrt(5) * (c_max - 1) + 1e-9


@pytest.mark.parametrize("max_items", [1, 3])
def test_clipping_keeps_each_customers_most_bought_items(max_items: int) -> None:
    row = sparse.csr_matrix(np.array([[1, 7, 2, 0, 5]], dtype=np.float32))
    kept = clipped_purchases(row, Clipping(max_items=max_items, max_purchases=6)).toarray()[0]
    expected = {1: [0, 6, 0, 0, 0], 3: [0, 6, 2, 0, 5]}[max_items]
    assert kept.tolist() == expected
