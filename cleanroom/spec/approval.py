"""Who must approve a run's draft report before anything is released, and for how long the run waits."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from cleanroom.spec.base import Strict


class ApprovalRule(str, Enum):
    ALL = "all"  # every listed approver (of the scope) approves
    QUORUM = "quorum"  # at least `quorum` approvers (of the scope) approve


class ApprovalScope(str, Enum):
    CONSORTIUM = "consortium"  # the rule counts approvers over the whole consortium
    PER_PARTY = "per_party"  # the rule holds within every party that names approvers


class RerunBounds(Strict):
    """How far an approver may tighten disclosure control when asking for a re-run (phase 5.2): never
    looser than the spec, never stricter than these bounds. Absent: that parameter stays as in the spec."""

    min_group_size_up_to: int | None = Field(default=None, ge=2, description="raise privacy.min_group_size up to")
    max_share_percent_down_to: float | None = Field(
        default=None, gt=0, le=100, description="lower privacy.dominance.max_share_percent down to"
    )
    max_reruns: int = Field(default=2, ge=0, le=10, description="re-runs one lifecycle run may make")


class Adjustments(Strict):
    """What a re-run changes, each within the spec's `approval.rerun_bounds`."""

    min_group_size: int | None = None
    max_share_percent: float | None = None

    def lines(self, before_k: int, before_p: float) -> list[str]:
        changed = []
        if self.min_group_size is not None:
            changed.append(f"minimum group size {before_k} -> {self.min_group_size}")
        if self.max_share_percent is not None:
            changed.append(f"largest retailer share {before_p:g}% -> {self.max_share_percent:g}%")
        return changed


class ApprovalPolicy(Strict):
    """Release needs approvals by this rule; one signed rejection or the timeout ends the run unreleased."""

    rule: ApprovalRule = ApprovalRule.ALL
    quorum: int | None = Field(default=None, ge=1, description="m of n; with rule: quorum")
    scope: ApprovalScope = ApprovalScope.CONSORTIUM
    timeout_minutes: float = Field(default=72 * 60, gt=0, le=60 * 24 * 30, description="then nothing is released")
    standing_approvals: bool = Field(
        default=True,
        description="approvers may sign a standing approval of this spec with an expiry date, so a scheduled "
        "run completes without a person while nothing in the spec changed",
    )
    rerun_bounds: RerunBounds = RerunBounds()

    @model_validator(mode="after")
    def _quorum_matches_rule(self) -> ApprovalPolicy:
        if self.rule is ApprovalRule.QUORUM and self.quorum is None:
            raise ValueError("quorum: rule quorum needs the number of approvals (e.g. quorum: 2)")
        if self.rule is ApprovalRule.ALL and self.quorum is not None:
            raise ValueError("quorum: only with rule: quorum (rule: all needs every approver)")
        return self

    def required(self, approvers_by_party: dict[str, list[str]]) -> dict[str, int]:
        """Approvals needed per group (one group 'consortium', or one per party with approvers)."""
        groups = (
            approvers_by_party
            if self.scope is ApprovalScope.PER_PARTY
            else {"consortium": [a for names in approvers_by_party.values() for a in names]}
        )
        return {group: len(names) if self.quorum is None else self.quorum for group, names in groups.items()}
