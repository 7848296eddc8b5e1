"""Evaluation of the scalable recommender: top-N lists equal a brute-force ranking (bought items left
out), Recall@N and NDCG@N by their definitions on a hand-checked case, and bootstrap intervals that
hold the estimate and exclude zero only when the gain is real."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from cleanroom.recommend.evaluation import Ranked, best_sellers, bootstrap, paired_lift, ranked, top_n


def test_top_n_is_the_best_unbought_items() -> None:
    rng = np.random.default_rng(4)
    users, items = rng.normal(size=(30, 5)), rng.normal(size=(50, 5))
    bought = sparse.csr_matrix((rng.random((30, 50)) < 0.2).astype(np.float32))
    customers = np.array([0, 7, 29])
    lists = top_n(users, items, bought, customers, 10)
    scores = users @ items.T
    for row, customer in enumerate(customers):
        allowed = np.flatnonzero(bought[customer].toarray()[0] == 0)
        expected = allowed[np.argsort(-scores[customer, allowed], kind="stable")[:10]]
        assert lists[row].tolist() == expected.tolist()
    with_bought = top_n(users, items, bought, customers, 10, exclude_bought=False)
    assert with_bought[0].tolist() == np.argsort(-scores[0], kind="stable")[:10].tolist()


def test_recall_and_ndcg_by_their_definitions() -> None:
    top = np.array([[3, 1, 4, 0], [2, 0, 1, 3]])
    relevant = sparse.csr_matrix(np.array([[0, 1, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]], dtype=np.float32))
    scored = ranked(top, relevant, np.array([0, 1]))
    # Customer 0: items 1 and 4 at ranks 2 and 3 of 4; customer 1: item 5 not listed.
    assert scored.hits.tolist() == [2, 0] and scored.possible.tolist() == [2, 1]
    ideal = 1 + 1 / np.log2(3)
    assert scored.ndcg[0] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / ideal) and scored.ndcg[1] == 0
    assert scored.recall == pytest.approx(2 / 3)


def test_best_sellers_are_the_retailers_own_and_unbought() -> None:
    bought = sparse.csr_matrix(np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 0, 0, 0]], dtype=np.float32))
    lists = best_sellers(bought, np.array([2]), 2)
    assert lists.tolist() == [[1, 2]] or lists.tolist() == [[2, 1]]  # item 0 bought; 1 and 2 tie


def test_intervals_hold_the_estimate_and_see_a_real_gain() -> None:
    rng = np.random.default_rng(0)
    possible = np.full(2000, 5.0)
    baseline = Ranked(rng.binomial(5, 0.2, 2000).astype(float), possible, rng.random(2000))
    better = Ranked(np.minimum(baseline.hits + rng.binomial(1, 0.5, 2000), 5), possible, rng.random(2000))
    same = Ranked(baseline.hits.copy(), possible, baseline.ndcg)
    low, high = bootstrap(baseline)["recall"]
    assert low < baseline.recall < high
    gain, low, high = paired_lift(better, baseline)
    assert gain > 0 and low > 0  # a real gain: the interval excludes zero
    gain, low, high = paired_lift(same, baseline)
    assert gain == 0 and low <= 0 <= high  # no gain: it includes zero
