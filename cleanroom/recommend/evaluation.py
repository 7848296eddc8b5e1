"""Evaluation a data scientist can check: each retailer's top-N lists for its customers (by `implicit`'s
batched recommend, bought items excluded when asked), Recall@N and NDCG@N on the items each customer
bought first after the holdout date, and 95% bootstrap intervals over customers, paired when two
models are compared on the same customers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits


def top_n(
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    bought: sparse.csr_matrix,
    customers: np.ndarray,
    n: int,
    exclude_bought: bool = True,
    offered: np.ndarray | None = None,
) -> np.ndarray:
    """[customers, n] item indices, best first (-1 where fewer items are left), by implicit's recommend;
    only among the `offered` items when given (a retailer recommends what it sells)."""
    from implicit.cpu.als import AlternatingLeastSquares

    if customers.size == 0:
        return np.zeros((0, n), dtype=np.int64)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=item_factors.shape[1])  # holds the factors; never fitted
        model.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        model.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        ids, _ = model.recommend(
            customers,
            bought[customers],
            N=n,
            filter_already_liked_items=exclude_bought,
            filter_items=None if offered is None else np.flatnonzero(~offered),
        )
    return np.asarray(ids, dtype=np.int64).reshape(customers.size, -1)


def best_sellers(
    bought: sparse.csr_matrix, customers: np.ndarray, n: int, exclude_bought: bool = True
) -> np.ndarray:
    """The baseline: the retailer's own most bought items (by customers who bought them), per customer."""
    popularity = np.asarray((bought > 0).sum(axis=0)).ravel().astype(np.float32)
    return top_n(np.ones((bought.shape[0], 1)), popularity[:, None], bought, customers, n, exclude_bought)


@dataclass(frozen=True)
class Ranked:
    """Per evaluated customer: hits in its top N, the most it could hit (min(relevant, N)), its NDCG."""

    hits: np.ndarray
    possible: np.ndarray
    ndcg: np.ndarray

    @property
    def recall(self) -> float:
        return float(self.hits.sum() / self.possible.sum()) if self.possible.sum() else 0.0


def ranked(top: np.ndarray, relevant: sparse.csr_matrix, customers: np.ndarray) -> Ranked:
    """Score each customer's list against the items it bought after the holdout date (rows of `relevant`)."""
    n = top.shape[1]
    discount = 1.0 / np.log2(np.arange(2, n + 2))
    wanted = relevant[customers]
    hits, possible, ndcg = (np.zeros(customers.size) for _ in range(3))
    for row in range(customers.size):
        truth = wanted.indices[wanted.indptr[row] : wanted.indptr[row + 1]]
        hit = np.isin(top[row], truth)
        best = min(truth.size, n)
        hits[row], possible[row] = hit.sum(), best
        ndcg[row] = (discount[hit].sum() / discount[:best].sum()) if best else 0.0
    return Ranked(hits, possible, ndcg)


def bootstrap(ranked_: Ranked, draws: int = 1000, seed: int = 7) -> dict[str, tuple[float, float]]:
    """95% percentile intervals of Recall@N (pooled over customers) and mean NDCG@N."""
    picks = np.random.default_rng(seed).integers(0, ranked_.hits.size, (draws, ranked_.hits.size))
    recall = ranked_.hits[picks].sum(1) / np.maximum(ranked_.possible[picks].sum(1), 1)
    ndcg = ranked_.ndcg[picks].mean(1)
    return {
        "recall": tuple(float(v) for v in np.percentile(recall, [2.5, 97.5])),  # type: ignore[dict-item]
        "ndcg": tuple(float(v) for v in np.percentile(ndcg, [2.5, 97.5])),  # type: ignore[dict-item]
    }


def paired_lift(better: Ranked, baseline: Ranked, draws: int = 1000, seed: int = 7) -> tuple[float, float, float]:
    """Recall@N of `better` minus `baseline` on the same customers, with its paired 95% interval."""
    picks = np.random.default_rng(seed).integers(0, better.hits.size, (draws, better.hits.size))
    possible = np.maximum(better.possible[picks].sum(1), 1)
    lifts = (better.hits[picks].sum(1) - baseline.hits[picks].sum(1)) / possible
    low, high = np.percentile(lifts, [2.5, 97.5])
    return better.recall - baseline.recall, float(low), float(high)
