"""A retailer's blend of the joint model and its own: one factor model that ranks every customer's
products like the sum of the two models' scores, each standardized per customer over the offered products."""

from __future__ import annotations

import numpy as np

from cleanroom.recommend.blend import blended, score_spread


def test_the_blend_ranks_like_the_sum_of_standardized_scores() -> None:
    rng = np.random.default_rng(3)
    joint = (rng.normal(size=(50, 4)), rng.normal(size=(30, 4)))
    own = (rng.normal(size=(50, 6)) * 5, rng.normal(size=(30, 6)))  # on another scale: standardizing matters
    offered = rng.random(30) < 0.8
    users, items = blended(joint, own, offered)

    def standardized(model: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        scores = (model[0] @ model[1].T)[:, offered]
        return (scores - scores.mean(axis=1, keepdims=True)) / scores.std(axis=1, keepdims=True)

    expected = standardized(joint) + standardized(own)
    got = (users @ items.T)[:, offered]
    # Equal up to a constant per customer: the same ranking.
    np.testing.assert_allclose(got - got.mean(axis=1, keepdims=True), expected, atol=1e-9)
    assert (np.argsort(-got, axis=1) == np.argsort(-expected, axis=1)).all()
    # Unstandardized, the own model's larger scale would decide alone: the blend is not that.
    raw = (joint[0] @ joint[1].T + own[0] @ own[1].T)[:, offered]
    assert (np.argsort(-raw, axis=1)[:, 0] != np.argsort(-expected, axis=1)[:, 0]).any()


def test_a_customer_a_model_scores_flat_takes_the_other_models_ranking() -> None:
    items = np.eye(3)
    flat = np.zeros((1, 3))
    assert score_spread(flat, items, np.ones(3, dtype=bool)).tolist() == [1.0]
    users, blend_items = blended((flat, items), (np.array([[3.0, 1.0, 2.0]]), items), np.ones(3, dtype=bool))
    assert np.argsort(-(users @ blend_items.T)[0]).tolist() == [0, 2, 1]
