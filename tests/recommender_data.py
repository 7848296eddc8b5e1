"""Purchases with a structure a recommender can learn: items fall into topics, each customer mostly
buys within its favourite topic; history (train) and later first purchases (test) per retailer."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def latent_purchases(
    customers: list[int], history: list[int], items: int = 300, topics: int = 10, later: int = 3, seed: int = 0
) -> tuple[list[sparse.csr_matrix], list[sparse.csr_matrix]]:
    """Per retailer: (train counts, later first purchases), `history[i]` purchases per customer."""
    rng = np.random.default_rng(seed)
    topic_of = np.arange(items) % topics
    popularity = 1.0 / np.arange(1, items + 1) ** 0.7
    trains, tests = [], []
    for count, length in zip(customers, history):
        favourite = rng.integers(0, topics, count)
        bought = np.zeros((count, items), dtype=np.float32)
        later_bought = np.zeros((count, items), dtype=np.float32)
        for customer in range(count):
            within = np.where(topic_of == favourite[customer], popularity, popularity * 0.05)
            within /= within.sum()
            picks = rng.choice(items, size=length + later * 3, p=within)
            np.add.at(bought[customer], picks[:length], 1)
            fresh = [i for i in picks[length:] if bought[customer, i] == 0][:later]
            later_bought[customer, fresh] = 1
        trains.append(sparse.csr_matrix(bought))
        tests.append(sparse.csr_matrix(later_bought))
    return trains, tests
