"""Noise calibration from OpenDP (core, no polars extra): the discrete Gaussian scale that gives an
analysis's rho at its clipping bound, the rho an (epsilon, delta) target allows, and the epsilon a
rho amounts to. Nothing here is a hand-derived constant; OpenDP's measurements and binary search do it.

Each compute party adds its own full-scale noise (any one honest party's noise alone gives the
guarantee), so the released figure carries the sum of `compute_parties` independent draws."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

from pydantic import BaseModel

from cleanroom.spec.noise import Noise

REPORTED_DELTA = 1e-7  # the delta at which the report states each rho as an epsilon


def opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")  # the discrete Gaussian's calibration is in contrib in 0.16
    return dp


def _gaussian(scale: float) -> Any:
    dp = opendp()
    return dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T=int)), dp.l2_distance(T=int), scale=scale)


class MeasureNoise(BaseModel):
    """One measure's noise: each compute party's discrete Gaussian scale, and what it spends."""

    measure: str
    clip: int
    scale: float  # per compute party
    rho: float

    def released_sd(self, compute_parties: int) -> float:
        """Standard deviation of a released figure's noise: the sum of every compute party's draw."""
        return self.scale * math.sqrt(compute_parties)

    def interval_95(self, compute_parties: int) -> float:
        """Half-width of the 95% interval around a released figure (the summed draws are close to normal)."""
        return 1.959964 * self.released_sd(compute_parties)


@cache
def rho_of_target(rho: float | None, epsilon: float | None, delta: float | None) -> float:
    """The zCDP rho of a spec's target: as given, or the largest whose (epsilon, delta) fits."""
    if rho is not None:
        return rho
    assert epsilon is not None and delta is not None
    dp = opendp()

    def as_approx(scale: float) -> Any:
        return dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(_gaussian(scale)), delta)

    scale = dp.binary_search_param(as_approx, d_in=1, d_out=(epsilon, delta))
    return float(_gaussian(scale).map(1))


@cache
def _calibrated(clip: int, rho: float) -> tuple[float, float]:
    dp = opendp()
    scale = dp.binary_search_param(_gaussian, d_in=clip, d_out=rho)
    return float(scale), float(_gaussian(scale).map(clip))


def calibrated(name: str, sensitivity: int, rho: float) -> MeasureNoise:
    """The discrete Gaussian scale spending `rho` on a vector whose L2 sensitivity is `sensitivity`."""
    scale, spent = _calibrated(sensitivity, rho)
    return MeasureNoise(measure=name, clip=sensitivity, scale=scale, rho=spent)


def calibrate(noise: Noise, measures: list[str]) -> list[MeasureNoise]:
    """Per measure, in order: the scale spending an equal part of the analysis's rho at its clip."""
    share = rho_of_target(noise.rho, noise.epsilon, noise.delta) / len(measures)
    return [calibrated(measure, noise.clip[measure], share) for measure in measures]


def rho_spent(noise: Noise, measures: list[str]) -> float:
    """The analysis's zCDP loss per release: the measures' losses add up (zCDP composition)."""
    return sum(m.rho for m in calibrate(noise, measures))


def epsilon_of(rho: float, delta: float = REPORTED_DELTA) -> float:
    """The epsilon a total rho amounts to at `delta` (OpenDP's zCDP-to-approximate-DP conversion)."""
    dp = opendp()
    scale = dp.binary_search_param(_gaussian, d_in=1, d_out=rho)  # any measurement spending rho will do
    measurement = dp.c.make_fix_delta(dp.c.make_zCDP_to_approxDP(_gaussian(scale)), delta)
    return float(measurement.map(1)[0])


def draw(scale: float, count: int) -> Any:
    """`count` int64 draws of OpenDP's discrete Gaussian at `scale` (its own secure randomness)."""
    import numpy as np

    return np.asarray(_gaussian(scale)([0] * count), dtype=np.int64)


def sample(measures: list[MeasureNoise], cells_per_measure: int | list[int]) -> Any:
    """This compute party's noise: int64, measures in order, each `cells_per_measure` long (or its own
    length)."""
    import numpy as np

    lengths = cells_per_measure if isinstance(cells_per_measure, list) else [cells_per_measure] * len(measures)
    return np.concatenate([draw(m.scale, n) for m, n in zip(measures, lengths)])
