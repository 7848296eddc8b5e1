"""Matrix factorization by full-batch gradient descent, dense and data-oblivious: the same arithmetic
the secure version runs on secret shares, here in numpy (the reference and the per-party baselines).

Ratings are centred on a public constant so that unobserved entries (0) carry no signal:
R_c = M * (R - centre); E = M * (U V^T) - R_c; U -= lr (E V + reg U); V -= lr (E^T U + reg V).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cleanroom.recommend.movielens import PartyRatings


@dataclass(frozen=True)
class MFConfig:
    factors: int = 10
    epochs: int = 60
    learning_rate: float = 0.01
    regularization: float = 0.1
    centre: float = 3.5  # public: the middle of the rating scale, not a statistic of anyone's data
    init_scale: float = 0.1
    seed: int = 17


def initial_factors(users: int, items: int, config: MFConfig) -> tuple[np.ndarray, np.ndarray]:
    """Public random start (independent of any data), shared by plaintext and secure training."""
    rng = np.random.default_rng(config.seed)
    return (
        rng.normal(0, config.init_scale, (users, config.factors)),
        rng.normal(0, config.init_scale, (items, config.factors)),
    )


def centred(ratings: np.ndarray, mask: np.ndarray, config: MFConfig) -> np.ndarray:
    return mask * (ratings - config.centre)


def epoch(u: np.ndarray, v: np.ndarray, r_c: np.ndarray, mask: np.ndarray, config: MFConfig) -> None:
    """One full-batch step, in place."""
    error = mask * (u @ v.T) - r_c
    grad_u = error @ v + config.regularization * u
    grad_v = error.T @ u + config.regularization * v
    u -= config.learning_rate * grad_u
    v -= config.learning_rate * grad_v


def train(ratings: np.ndarray, mask: np.ndarray, config: MFConfig) -> tuple[np.ndarray, np.ndarray]:
    u, v = initial_factors(*ratings.shape, config)
    r_c = centred(ratings, mask, config)
    for _ in range(config.epochs):
        epoch(u, v, r_c, mask, config)
    return u, v


def rmse(u: np.ndarray, v: np.ndarray, test: np.ndarray, config: MFConfig) -> float:
    rows, items, truth = test[:, 0].astype(int), test[:, 1].astype(int), test[:, 2]
    predicted = np.clip(np.sum(u[rows] * v[items], axis=1) + config.centre, 1, 5)
    return float(np.sqrt(np.mean((predicted - truth) ** 2)))


def recall_at(u: np.ndarray, v: np.ndarray, party: PartyRatings, k: int = 10) -> float:
    """Share of each user's held-out items rated >= 4 that appear in their top-k unseen items."""
    liked = party.test[party.test[:, 2] >= 4]
    return recall(u @ v.T, party.train_mask > 0, liked[:, :2].astype(np.int64), k)


def top_unseen(scores: np.ndarray, seen: np.ndarray, k: int) -> np.ndarray:
    """[rows, k] item indices, best first, among the items each row has not seen."""
    masked = np.where(seen, -np.inf, scores)
    top = np.argpartition(-masked, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(masked, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def recall(scores: np.ndarray, seen: np.ndarray, relevant: np.ndarray, k: int = 10) -> float:
    """Recall@k: hits of each row's top-k unseen items among its relevant (row, item) pairs, divided
    by the sum over rows of min(relevant items, k)."""
    return recall_of(recall_parts(scores, seen, relevant, k))


def recall_of(parts: tuple[np.ndarray, np.ndarray]) -> float:
    hits, possible = parts
    return float(hits.sum() / possible.sum()) if possible.sum() else 0.0


def recall_parts(
    scores: np.ndarray, seen: np.ndarray, relevant: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row with relevant items: (hits in its top-k, min(relevant items, k)), rows in ascending order."""
    if relevant.size == 0:
        return np.zeros(0), np.zeros(0)
    rows = np.unique(relevant[:, 0])
    top = top_unseen(scores[rows], seen[rows], k)
    hit = np.zeros(scores.shape, dtype=bool)
    hit[rows[:, None], top] = True
    hits = np.bincount(relevant[:, 0], weights=hit[relevant[:, 0], relevant[:, 1]], minlength=scores.shape[0])
    per_row = np.bincount(relevant[:, 0], minlength=scores.shape[0])
    return hits[rows], np.minimum(per_row[rows], k).astype(np.float64)


def lift_interval(
    joint: tuple[np.ndarray, np.ndarray], alone: tuple[np.ndarray, np.ndarray], draws: int = 1000, seed: int = 3
) -> tuple[float, float]:
    """95% paired bootstrap interval (over customers) of recall(joint) - recall(alone)."""
    (joint_hits, possible), (alone_hits, _) = joint, alone
    if possible.size == 0:
        return 0.0, 0.0
    picks = np.random.default_rng(seed).integers(0, possible.size, (draws, possible.size))
    lifts = (joint_hits[picks].sum(1) - alone_hits[picks].sum(1)) / possible[picks].sum(1)
    low, high = np.percentile(lifts, [2.5, 97.5])
    return float(low), float(high)


def pooled(parties: list[PartyRatings]) -> tuple[np.ndarray, np.ndarray]:
    """All parties' rows stacked in party order (what the secure version holds as shares)."""
    return np.vstack([p.train_ratings for p in parties]), np.vstack([p.train_mask for p in parties])
