"""Where collaboration should help, it does: a small retailer whose customers have short histories
gains Recall@10 from item factors learned with two large retailers (the paired interval excludes zero)
and beats its own best sellers. Without noise; with it, see the note in federated_training."""

from __future__ import annotations

import numpy as np

from cleanroom.recommend.evaluation import best_sellers, paired_lift, ranked, top_n
from cleanroom.recommend.federated_als import AlsParams, Clipping
from cleanroom.recommend.federated_training import released_items, train
from tests.recommender_data import latent_purchases

PARAMS = AlsParams(factors=12, regularization=0.5, alpha=8.0, epochs=6, seed=1)
CLIPPING = Clipping(max_items=30, max_purchases=5)


def _evaluate(trained, party: int, trains, tests):  # type: ignore[no-untyped-def]
    customers = np.flatnonzero(np.diff(tests[party].indptr) > 0)
    lists = top_n(trained.user_factors[party], trained.item_factors, trains[party], customers, 10)
    return ranked(lists, tests[party], customers), customers


def test_a_small_retailer_with_short_histories_gains_from_the_joint_model() -> None:
    trains, tests = latent_purchases([1500, 1500, 600], [20, 20, 2], seed=3)
    supports = [np.diff(t.tocsc().indptr) for t in trains]
    released = released_items(supports, min_customers=10, min_retailers=2)
    assert released.mean() > 0.9
    joint = train(trains, PARAMS, CLIPPING, released)
    alone = train([trains[2]], PARAMS, CLIPPING, released_items([supports[2]], 1, 1))
    small_joint, customers = _evaluate(joint, 2, trains, tests)
    small_alone, _ = _evaluate(alone, 0, [trains[2]], [tests[2]])
    popular = ranked(best_sellers(trains[2], customers, 10), tests[2], customers)
    gain, low, high = paired_lift(small_joint, small_alone)
    assert low > 0, (gain, low, high)  # the collaboration measurably helps the small retailer
    assert small_joint.recall > popular.recall
    # A large retailer with long histories has little to gain: no claim is made for it here.


def test_noise_enters_every_epoch_and_shrinks_with_a_larger_budget() -> None:
    trains, _ = latent_purchases([300, 300, 300], [10, 10, 10], items=60, seed=5)
    released = np.ones(60, dtype=bool)
    params = AlsParams(factors=6, regularization=1.0, alpha=4.0, epochs=2, seed=2)
    exact = train(trains, params, Clipping(10, 1), released).item_factors
    distance = {
        rho: np.abs(train(trains, params, Clipping(10, 1), released, rho_per_epoch=rho).item_factors - exact).max()
        for rho in (1.0, 10_000.0)
    }
    assert distance[10_000.0] > 0  # noise was added
    assert distance[10_000.0] < distance[1.0] / 10  # and calibrated: 10,000 times the budget, far less of it
