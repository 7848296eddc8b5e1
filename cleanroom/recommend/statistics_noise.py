"""The item statistics as the secure sum carries them: fixed-point int64 in one vector per retailer
(G's upper triangle, then each released item's S_i upper triangle and b_i), and the differential-privacy
noise calibrated to what one customer can move in it (its factor's norm <= 1, confidences <= c_max,
at most `max_items` items; see `federated_als.Clipping`).

Sensitivity in the integers: one customer changes the exact float sums by at most the bounds below,
times SCALE; each retailer rounds its own sums once, which can move each entry the customer touches by
one more unit, so the square root of the number of those entries is added."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cleanroom.privacy.calibration import MeasureNoise, calibrated, draw
from cleanroom.recommend.federated_als import AlsParams, Clipping, ItemStatistics
from cleanroom.recommend.retail import rho_per_epoch, scalable_settings, search_candidates
from cleanroom.spec.analyses import JointRecommender

Draws = Callable[[float, int], np.ndarray]  # (scale, count) -> that many fresh draws

SCALE = 2**16  # fixed point: factors have norm <= 1, so sums stay far inside int64
PARTS = ("gram", "second", "first")


def triangle(k: int) -> int:
    return k * (k + 1) // 2


@dataclass(frozen=True)
class Layout:
    """Where each part sits in the vector for `items` released items of `k` factors."""

    k: int
    items: int

    @property
    def lengths(self) -> list[int]:
        return [triangle(self.k), self.items * triangle(self.k), self.items * self.k]

    @property
    def size(self) -> int:
        return sum(self.lengths)


def encode(stats: ItemStatistics, released: np.ndarray, k: int) -> np.ndarray:
    """One retailer's statistics for the released items, rounded to fixed point."""
    upper = np.triu_indices(k)
    parts = [stats.gram[upper], stats.second[released].ravel(), stats.first[released].ravel()]
    return np.rint(np.concatenate(parts) * SCALE).astype(np.int64)


def decode(vector: np.ndarray, released: np.ndarray, k: int) -> ItemStatistics:
    """The summed statistics for every item of the catalogue (zero where not released)."""
    layout = Layout(k, int(released.sum()))
    values = vector.astype(np.float64) / SCALE
    gram_part, second_part, first_part = np.split(values, np.cumsum(layout.lengths)[:-1])
    upper = np.triu_indices(k)
    gram = np.zeros((k, k))
    gram[upper] = gram_part
    gram[upper[1], upper[0]] = gram_part
    items = released.size
    second, first = np.zeros((items, triangle(k))), np.zeros((items, k))
    second[released] = second_part.reshape(-1, triangle(k))
    first[released] = first_part.reshape(-1, k)
    return ItemStatistics(gram, second, first, released.astype(np.int64))


def sensitivities(params: AlsParams, clipping: Clipping) -> dict[str, int]:
    """Per part, the L2 distance in fixed-point integers that adding or removing one customer can make.
    A part no customer can move (S_i when every confidence is at most 1: c - 1 = 0) has 0."""
    k, m = params.factors, clipping.max_items
    c_max = params.alpha * clipping.max_purchases
    exact = {"gram": 1.0, "second": math.sqrt(m) * max(c_max - 1, 0.0), "first": math.sqrt(m) * c_max}
    touched = {"gram": triangle(k), "second": m * triangle(k), "first": m * k}
    return {
        part: math.ceil(exact[part] * SCALE + math.sqrt(touched[part])) if exact[part] else 0 for part in PARTS
    }


def calibrate_epoch(rho_per_epoch: float, params: AlsParams, clipping: Clipping) -> list[MeasureNoise]:
    """Each movable part's discrete Gaussian scale (OpenDP), the epoch's rho split equally over them."""
    bounds = {part: bound for part, bound in sensitivities(params, clipping).items() if bound}
    return [calibrated(part, bound, rho_per_epoch / len(bounds)) for part, bound in bounds.items()]


def noise_share(measures: list[MeasureNoise], layout: Layout, draws: Draws = draw) -> np.ndarray:
    """One compute party's noise for one epoch's vector (each compute party draws its own); zero for a
    part no customer can move (it is exactly zero in every retailer's vector: nothing to hide). `draws`
    may serve them from the node's reserve (`privacy.noise_reserve`)."""
    by_part = {m.measure: m for m in measures}
    parts = [
        draws(by_part[part].scale, length) if part in by_part else np.zeros(length, dtype=np.int64)
        for part, length in zip(PARTS, layout.lengths)
    ]
    return np.concatenate(parts)


def run_needs(analysis: JointRecommender, items: int) -> dict[float, int]:
    """Per discrete Gaussian scale, the draws one compute party's noise may take in one run over a
    catalogue of `items`: every candidate's epochs, and a final training that may be any candidate's
    (none without noise)."""
    rate = rho_per_epoch(analysis)
    own, clipping = scalable_settings(analysis)
    if rate is None or clipping is None:
        return {}
    candidates = search_candidates(analysis)
    needs: dict[float, int] = {}
    for params in [*candidates, *candidates] if candidates else [own]:
        lengths = dict(zip(PARTS, Layout(params.factors, items).lengths))
        for measure in calibrate_epoch(rate, params, clipping):
            needs[measure.scale] = needs.get(measure.scale, 0) + lengths[measure.measure] * params.epochs
    return needs
