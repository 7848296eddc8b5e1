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
    scores = u @ v.T
    scores[party.train_mask > 0] = -np.inf
    top = np.argsort(-scores, axis=1)[:, :k]
    liked = party.test[party.test[:, 2] >= 4]
    hits, total = 0, 0
    for row in np.unique(liked[:, 0]).astype(int):
        relevant = set(liked[liked[:, 0] == row][:, 1].astype(int).tolist())
        hits += len(relevant & set(top[row].tolist()))
        total += min(len(relevant), k)
    return hits / total if total else 0.0


def pooled(parties: list[PartyRatings]) -> tuple[np.ndarray, np.ndarray]:
    """All parties' rows stacked in party order (what the secure version holds as shares)."""
    return np.vstack([p.train_ratings for p in parties]), np.vstack([p.train_mask for p in parties])
