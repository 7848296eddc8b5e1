"""What a report says about its noise: per noised figure the clip, the released noise's standard
deviation and its 95% interval, and what the run spent of the consortium's budget."""

from __future__ import annotations

from pydantic import BaseModel

from cleanroom.privacy.budget import BudgetStatus
from cleanroom.privacy.calibration import REPORTED_DELTA, calibrate, epsilon_of
from cleanroom.privacy.noise_shares import noised_analyses, rho_per_analysis
from cleanroom.recommend.retail import budgeted_epochs
from cleanroom.spec.models import CollaborationSpec


class NoisedMeasure(BaseModel):
    analysis: str
    measure: str  # sales_cents or units
    clip: int  # one customer's largest contribution (L2 over the cells), in the measure's integers
    released_sd: float  # standard deviation of a released figure's noise, same integers
    interval_95: float  # half-width of the 95% interval


class PrivacyStatement(BaseModel):
    measures: list[NoisedMeasure]  # the released figures' noise (empty when only the recommender is noised)
    compute_parties: int  # each adds its own full-scale noise
    run_rho: float
    run_epsilon: float  # at `delta`
    delta: float = REPORTED_DELTA
    budget: str | None = None  # the budget after this run, in words
    recommender_rho: float | None = None  # the scalable recommender's training (item statistics)
    recommender_epochs: int = 0  # every epoch the run may train, the search's included


def privacy_statement(spec: CollaborationSpec, budget: BudgetStatus | None) -> PrivacyStatement | None:
    analyses = noised_analyses(spec)
    recommender = spec.joint_recommender
    recommender_rho = recommender.rho if recommender is not None else None
    if not analyses and recommender_rho is None:
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
    rho = sum(rho_per_analysis(spec).values())
    return PrivacyStatement(
        measures=measures,
        compute_parties=draws,
        run_rho=rho,
        run_epsilon=epsilon_of(rho),
        budget=budget.line() if budget else None,
        recommender_rho=recommender_rho,
        recommender_epochs=budgeted_epochs(recommender) if recommender_rho is not None and recommender else 0,
    )
