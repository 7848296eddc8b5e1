"""What a report says about its noise: per noised figure the clip, the released noise's standard
deviation and its 95% interval, and what the run spent of the consortium's budget."""

from __future__ import annotations

from pydantic import BaseModel

from cleanroom.privacy.budget import BudgetStatus
from cleanroom.privacy.calibration import REPORTED_DELTA, calibrate, epsilon_of
from cleanroom.privacy.noise_shares import noised_analyses
from cleanroom.spec.models import CollaborationSpec


class NoisedMeasure(BaseModel):
    analysis: str
    measure: str  # sales_cents or units
    clip: int  # one customer's largest contribution (L2 over the cells), in the measure's integers
    released_sd: float  # standard deviation of a released figure's noise, same integers
    interval_95: float  # half-width of the 95% interval


class PrivacyStatement(BaseModel):
    measures: list[NoisedMeasure]
    compute_parties: int  # each adds its own full-scale noise
    run_rho: float
    run_epsilon: float  # at `delta`
    delta: float = REPORTED_DELTA
    budget: str | None = None  # the budget after this run, in words


def privacy_statement(spec: CollaborationSpec, budget: BudgetStatus | None) -> PrivacyStatement | None:
    analyses = noised_analyses(spec)
    if not analyses:
        return None
    draws = len(spec.compute_parties)
    measures = [
        NoisedMeasure(
            analysis=a.id,
            measure=m.measure,
            clip=m.clip,
            released_sd=m.released_sd(draws),
            interval_95=m.interval_95(draws),
        )
        for a in analyses
        for m in calibrate(a.noise, a.measures)
    ]
    rho = sum(m.rho for a in analyses for m in calibrate(a.noise, a.measures))
    return PrivacyStatement(
        measures=measures,
        compute_parties=draws,
        run_rho=rho,
        run_epsilon=epsilon_of(rho),
        budget=budget.line() if budget else None,
    )
