"""Each compute party's share of the noise, drawn on its own node for one run and staged beside its
grids for its player: no one else ever holds it, so the released sums are noised while any one compute
party is honest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleanroom.analyses import SUMMED
from cleanroom.privacy.calibration import calibrate, rho_spent, sample
from cleanroom.spec.models import CollaborationSpec


def noise_file(grid_file: str) -> str:
    """Where a compute party's player reads its noise for the analysis whose grid is `grid_file`."""
    return grid_file.removesuffix(".i64") + ".noise.i64"


def noised_analyses(spec: CollaborationSpec) -> list[Any]:
    return [a for a in spec.analyses if a.kind in SUMMED and getattr(a, "noise", None) is not None]


def rho_per_analysis(spec: CollaborationSpec) -> dict[str, float]:
    """What one release of the spec spends, per analysis id (the ledger's `privacy_budget_spent`)."""
    spends = {a.id: rho_spent(a.noise, a.measures) for a in noised_analyses(spec)}
    recommender = spec.joint_recommender
    if recommender is not None and recommender.rho is not None:  # the scalable mode's item statistics
        spends[recommender.id] = recommender.rho
    return spends


def noise_margin(analysis: Any, compute_parties: int, deviations: float = 6.0) -> list[float] | None:
    """Per cell, how far noise may plausibly move a released figure (`deviations` standard deviations:
    a check using it raises a false alarm about once in 10^9 cells); None without noise."""
    if getattr(analysis, "noise", None) is None:
        return None
    per_measure = SUMMED[analysis.kind].cells(analysis) // len(analysis.measures)
    calibrated = calibrate(analysis.noise, analysis.measures)
    return [deviations * m.released_sd(compute_parties) for m in calibrated for _ in range(per_measure)]


def write_noise_shares(spec: CollaborationSpec, party: str, folder: Path) -> list[Path]:
    """Draw and write this party's noise for every noised analysis (compute parties only)."""
    if party not in {p.name for p in spec.compute_parties}:
        return []
    written = []
    for analysis in noised_analyses(spec):
        per_measure = SUMMED[analysis.kind].cells(analysis) // len(analysis.measures)
        values = sample(calibrate(analysis.noise, analysis.measures), per_measure)
        path = folder / noise_file(SUMMED[analysis.kind].grid_file)
        path.write_bytes(values.astype("<i8").tobytes())
        written.append(path)
    return written
