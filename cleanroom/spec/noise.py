"""Differential privacy in the spec: the noise an analysis's released figures carry, and the consortium's
budget across runs. The privacy unit is one customer at one retailer: each retailer clips every
customer's contribution to the analysis (an L2 bound per measure) before anything is shared, and the
noise is calibrated to that bound. Privacy loss is zero-concentrated DP (rho), which adds up across
releases; an (epsilon, delta) target is converted to rho by the calibration library."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from cleanroom.spec.base import Strict


class Noise(Strict):
    """Discrete Gaussian noise on every released figure of the analysis: give `rho` (zCDP per release),
    or `epsilon` and `delta`; `clip` bounds one customer's contribution per measure (its L2 norm over
    the analysis's cells, in the measure's integers: cents for sales)."""

    rho: float | None = Field(default=None, gt=0, le=10, description="zCDP privacy loss of one release")
    epsilon: float | None = Field(default=None, gt=0, le=20)
    delta: float | None = Field(default=None, gt=0, lt=1e-3)
    clip: dict[str, int] = Field(description="per measure: one customer's largest contribution (L2 norm)")

    @model_validator(mode="after")
    def _one_target(self) -> Noise:
        if self.rho is not None and (self.epsilon is not None or self.delta is not None):
            raise ValueError("give rho, or epsilon with delta, not both")
        if self.rho is None and (self.epsilon is None or self.delta is None):
            raise ValueError("give rho (e.g. rho: 0.25), or epsilon with delta (e.g. epsilon: 1, delta: 1e-7)")
        if any(bound < 1 for bound in self.clip.values()):
            raise ValueError("clip: every bound is a positive integer (cents for sales, units for units)")
        return self


class BudgetPeriod(str, Enum):
    MONTH = "month"  # calendar months, UTC
    QUARTER = "quarter"
    YEAR = "year"


class PrivacyBudget(Strict):
    """What the consortium may spend: per calendar period (UTC) and in total. A run that would exceed
    either is refused before anything is computed."""

    period: BudgetPeriod = BudgetPeriod.MONTH
    rho_per_period: float = Field(gt=0, le=100)
    lifetime_rho: float = Field(gt=0, le=10_000)

    @model_validator(mode="after")
    def _lifetime_covers_a_period(self) -> PrivacyBudget:
        if self.lifetime_rho < self.rho_per_period:
            raise ValueError("lifetime_rho: at least rho_per_period (the lifetime cap covers every period)")
        return self
