"""The scalable recommender's training loop, as one place that says what happens each epoch; where the
sum runs is a parameter (the secure sum between the players in a run; a plain sum in tests and
benchmarks, which the secure sum equals, see tests/unit/test_statistics_sum.py):

1. each retailer solves its customers' factors from the public item factors (they stay with it),
   clips them to norm 1 and computes its per-item statistics over its clipped purchases;
2. each retailer's statistics for the released items become one fixed-point vector; every compute
   party draws its noise share (calibrated to one customer's reach and the epoch's rho);
3. the vectors and noise shares are summed and revealed; the item factors follow from the sum.

Items are released (modelled) only when enough customers at enough retailers bought them: the
support check runs once, before training, through the secure totals with disclosure control.

Noise costs accuracy where customers are few: on 3,600 synthetic customers (tests/recommender_data.py)
the small retailer's Recall@10 fell from 0.26-0.29 without noise to 0.02-0.14 at rho 0.5-2 per epoch
(the noise per entry is fixed by one customer's reach, the signal grows with the customers)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
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
from cleanroom.recommend.statistics_noise import Layout, calibrate_epoch, decode, encode, noise_share

Summer = Callable[[list[np.ndarray]], np.ndarray]  # the retailers' vectors plus noise shares -> their sum


def plain_sum(vectors: list[np.ndarray]) -> np.ndarray:
    return np.sum(vectors, axis=0)


@dataclass
class Trained:
    item_factors: np.ndarray
    user_factors: list[np.ndarray]  # per retailer: stays with it
    released: np.ndarray  # items modelled


def released_items(supports: list[np.ndarray], min_customers: int, min_retailers: int) -> np.ndarray:
    """Items bought by at least `min_customers` customers in all and at `min_retailers` retailers."""
    customers = np.sum(supports, axis=0)
    retailers = np.sum([s > 0 for s in supports], axis=0)
    return (customers >= min_customers) & (retailers >= min_retailers)


def item_support(purchases: sparse.csr_matrix, clipping: Clipping | None) -> np.ndarray:
    """Per item, the customers who bought it (after clipping): one retailer's input to the support check."""
    return np.diff(clipped_purchases(purchases, clipping).tocsc().indptr).astype(np.int64)


@dataclass
class RetailerSide:
    """What one retailer computes each epoch, on its own node: its customers' factors (kept here, warm
    starting the next epoch) and its statistics vector for the secure sum."""

    purchases: sparse.csr_matrix  # its customers x the catalogue, purchase counts before the holdout
    params: AlsParams
    clipping: Clipping | None
    released: np.ndarray
    factors: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.clipped = clipped_purchases(self.purchases, self.clipping)

    def statistics(self, item_factors: np.ndarray) -> np.ndarray:
        self.factors = user_factors(item_factors, self.purchases, self.params, self.factors)
        stats = item_statistics(unit_norm(self.factors), self.clipped, self.params)
        return encode(stats, self.released, self.params.factors)

    def final_factors(self, item_factors: np.ndarray) -> np.ndarray:
        return user_factors(item_factors, self.purchases, self.params, self.factors)


def next_item_factors(
    summed: np.ndarray, released: np.ndarray, params: AlsParams, previous: np.ndarray
) -> np.ndarray:
    """The coordinator's half of an epoch: the item factors from the revealed (noisy) sum. Items not
    released have no factors (zero: they are never recommended)."""
    solved = solve_items(decode(summed, released, params.factors), params, previous)
    solved[~released] = 0.0
    return solved


def train(
    purchases: list[sparse.csr_matrix],
    params: AlsParams,
    clipping: Clipping | None,
    released: np.ndarray,
    *,
    rho_per_epoch: float | None = None,
    compute_parties: int = 3,
    summed: Summer = plain_sum,
) -> Trained:
    """Train over `params.epochs`; with `rho_per_epoch`, every compute party adds its noise share."""
    items = purchases[0].shape[1]
    retailers = [RetailerSide(p, params, clipping, released) for p in purchases]
    y = initial_item_factors(items, params)
    layout = Layout(params.factors, int(released.sum()))
    if rho_per_epoch and clipping is None:
        raise ValueError("noise is calibrated to a clipping: give one")
    noise = calibrate_epoch(rho_per_epoch, params, clipping) if rho_per_epoch and clipping else None
    for _ in range(params.epochs):
        vectors = [retailer.statistics(y) for retailer in retailers]
        if noise is not None:
            vectors += [noise_share(noise, layout) for _ in range(compute_parties)]
        y = next_item_factors(summed(vectors), released, params, y)
    return Trained(y, [retailer.final_factors(y) for retailer in retailers], released)


def alone_model(purchases: sparse.csr_matrix, params: AlsParams, clipping: Clipping | None) -> Trained:
    """The same method on one retailer's data alone, over every product it sold: the baseline it compares
    the joint model with, and its fallback."""
    return train([purchases], params, clipping, released_items([item_support(purchases, clipping)], 1, 1))
