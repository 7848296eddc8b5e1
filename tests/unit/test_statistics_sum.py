"""The scalable recommender's statistics on the wire: fixed point, the noise calibrated (OpenDP) to what
one customer can move, and the secure sum of every party's vector plus every compute party's noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cleanroom.recommend.federated_als import AlsParams, Clipping, clipped_purchases, item_statistics, unit_norm
from cleanroom.recommend.statistics_noise import (
    Layout,
    calibrate_epoch,
    decode,
    encode,
    noise_share,
    sensitivities,
)
from cleanroom.secure.engine import InProcessEngine
from cleanroom.secure.vector_sum import VectorSumRequest
from cleanroom.spec import Protocol
from tests.unit.test_federated_als import purchases


def _statistics(seed: int, params: AlsParams):  # type: ignore[no-untyped-def]
    matrix = purchases(300, 40, seed=seed)
    factors = unit_norm(np.random.default_rng(seed).normal(size=(300, params.factors)))
    return item_statistics(factors, matrix, params)


def test_fixed_point_round_trip_keeps_the_released_items_only() -> None:
    params = AlsParams(factors=4)
    stats = _statistics(1, params)
    released = np.arange(40) % 3 != 0
    back = decode(encode(stats, released, 4), released, 4)
    np.testing.assert_allclose(back.gram, stats.gram, atol=1e-4)
    np.testing.assert_allclose(back.second[released], stats.second[released], atol=1e-4)
    assert not back.first[~released].any() and not back.second[~released].any()


def test_the_noise_is_calibrated_to_one_customers_reach() -> None:
    params, clipping = AlsParams(factors=8, alpha=4.0), Clipping(max_items=25, max_purchases=2.5)
    bounds = sensitivities(params, clipping)
    # c_max = 10: sqrt(25) x 9 and sqrt(25) x 10 in fixed point, plus the rounding of the entries touched.
    assert bounds["second"] == pytest.approx(5 * 9 * 2**16, rel=1e-3) and bounds["first"] > bounds["second"]
    measures = calibrate_epoch(0.3, params, clipping)
    assert [m.measure for m in measures] == ["gram", "second", "first"]
    assert sum(m.rho for m in measures) == pytest.approx(0.3, rel=1e-6)
    draw = noise_share(measures, Layout(8, 10))
    assert draw.dtype == np.int64 and draw.size == Layout(8, 10).size == 36 + 360 + 80


def test_a_part_no_customer_can_move_is_exact_and_takes_no_budget() -> None:
    """Confidence <= 1 for every purchase: c - 1 = 0, so every S_i is exactly zero in every retailer's
    vector; it gets no noise, and the epoch's rho goes to G and b_i (half each, not a third)."""
    params, clipping = AlsParams(factors=4, alpha=1.0), Clipping(max_items=10, max_purchases=1.0)
    factors = unit_norm(np.random.default_rng(2).normal(size=(300, 4)))
    stats = item_statistics(factors, clipped_purchases(purchases(300, 40, seed=2), clipping), params)
    released = np.ones(40, dtype=bool)
    layout = Layout(4, 40)
    _, second, first = np.split(encode(stats, released, 4), np.cumsum(layout.lengths)[:-1])
    assert not second.any() and first.any()
    measures = calibrate_epoch(0.4, params, clipping)
    assert [m.measure for m in measures] == ["gram", "first"] and [m.rho for m in measures] == pytest.approx(
        [0.2, 0.2]
    )
    noise = np.split(noise_share(measures, layout), np.cumsum(layout.lengths)[:-1])
    assert not noise[1].any() and noise[0].any() and noise[2].any()


def test_the_secure_sum_reveals_every_vector_plus_every_noise_share(tmp_path: Path, small_spec) -> None:
    players = [p.name for p in small_spec.spec.compute_parties]
    params = AlsParams(factors=4)
    released = np.ones(40, dtype=bool)
    vectors, noises, inputs, noise_files = [], [], {}, {}
    for i, party in enumerate(players):
        vectors.append(encode(_statistics(i, params), released, 4))
        noises.append(np.random.default_rng(i).integers(-1000, 1000, vectors[-1].size))
        inputs[party] = str(_write(tmp_path / f"{party}.i64", vectors[-1]))
        noise_files[party] = str(_write(tmp_path / f"{party}.noise.i64", noises[-1]))
    request = VectorSumRequest(
        protocol=Protocol.ABY3,
        players=players,
        length=vectors[0].size,
        input_paths=inputs,
        noise_paths=noise_files,
    )
    revealed, seconds = InProcessEngine().vector_sum(request)
    assert revealed.tolist() == (sum(vectors) + sum(noises)).tolist() and seconds > 0
    exact, _ = InProcessEngine().vector_sum(request.model_copy(update={"noised": False}))
    assert exact.tolist() == sum(vectors).tolist()
    # In chunks (a player holds one chunk's shares at a time), the last one shorter: the same sum.
    chunked, _ = InProcessEngine().vector_sum(request.model_copy(update={"chunk": 128}))
    assert request.length % 128 and chunked.tolist() == revealed.tolist()


def _write(path: Path, values: np.ndarray) -> Path:
    path.write_bytes(values.astype("<i8").tobytes())
    return path
