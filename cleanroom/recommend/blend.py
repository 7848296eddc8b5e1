"""A retailer's blend of two models: the joint model and the same method on its own data, each customer's
scores standardized per model (mean 0, standard deviation 1 over the products it offers) and added with
equal weight. Neither model is retrained and nothing leaves the node.

Ranking only needs each customer's scores up to a constant, so the blend is one factor model: customer
factors [u_joint / s_joint(u), u_own / s_own(u)] against product factors [v_joint, v_own], where s(u)^2 =
u^T Cov(V) u (the variance of u . v over the offered products) — no customers x products matrix."""

from __future__ import annotations

import numpy as np

Factors = tuple[np.ndarray, np.ndarray]  # (customers x k, products x k)


def score_spread(users: np.ndarray, items: np.ndarray, offered: np.ndarray) -> np.ndarray:
    """Per customer, the standard deviation of its scores over the offered products (1 where they are all
    equal, so such a customer's model adds nothing instead of dividing by zero)."""
    covariance = np.atleast_2d(np.cov(items[offered].astype(np.float64), rowvar=False, bias=True))
    variance = np.einsum("ij,jk,ik->i", users.astype(np.float64), covariance, users.astype(np.float64))
    spread = np.sqrt(np.maximum(variance, 0.0))
    return np.where(spread > 1e-12, spread, 1.0)


def blended(joint: Factors, own: Factors, offered: np.ndarray) -> Factors:
    """One factor model whose scores rank like the sum of the two models' standardized scores."""
    (users_joint, items_joint), (users_own, items_own) = joint, own
    users = np.hstack(
        [
            users_joint / score_spread(users_joint, items_joint, offered)[:, None],
            users_own / score_spread(users_own, items_own, offered)[:, None],
        ]
    )
    return users, np.hstack([items_joint, items_own])
