"""A data party's own check of a release before it countersigns the ledger entry: this run and the
spec it signed, the coordinator's signature, the chain continuing its own mirror, the privacy budget
the spec spends per release (a coordinator cannot record less), and approvals that satisfy the spec's
rule, each verified under the approvers' keys. A node refuses otherwise, and then nothing is released."""

from __future__ import annotations

from datetime import datetime, timezone

from cleanroom.privacy.budget import released_spending, spending_status
from cleanroom.privacy.noise_shares import rho_per_analysis
from cleanroom.release.approvals import (
    DecisionStatement,
    SignedDecision,
    StandingApproval,
    Verdict,
    decision_problem,
    standing_problem,
    verdict,
)
from cleanroom.release.ledger import GENESIS, SignedEntry, signed_by
from cleanroom.spec.models import CollaborationSpec


def entry_problem(
    offered: SignedEntry, spec: CollaborationSpec, spec_sha256: str, run_id: str, mirror: list[SignedEntry]
) -> str | None:
    entry = offered.entry
    if entry.run_id != run_id or entry.spec_sha256 != spec_sha256:
        return "the entry is for another run or spec"
    if not signed_by(spec.reporting.signing_public_key, offered.coordinator_signature, entry):
        return "the coordinator's signature on the entry does not verify"
    head = mirror[-1].entry if mirror else None
    expected_index, expected_previous = (
        (head.index + 1, head.sha256()) if head else (entry.index, entry.previous_sha256)
    )
    if head is None and entry.index == 0 and entry.previous_sha256 != GENESIS:
        return "the first entry does not start the chain"
    if (entry.index, entry.previous_sha256) != (expected_index, expected_previous):
        return f"the entry does not continue this node's mirror (its head is entry {head.index if head else '-'})"
    spends = rho_per_analysis(spec)
    recorded = entry.privacy_budget_spent
    if set(recorded) != set(spends) or any(abs(recorded[a] - rho) > 1e-9 for a, rho in spends.items()):
        return (
            f"the entry records privacy budget {recorded or 'none'}, "
            f"but a release of this spec spends {spends or 'none'}"
        )
    budget = spec.privacy.budget
    if budget is not None and spends:  # what the ledger alone proves: released runs within the budget
        released = datetime.fromisoformat(entry.released_at)
        after = spending_status(released_spending([m.entry for m in mirror] + [entry]), budget, released)
        if after.period_spent > budget.rho_per_period + 1e-9 or after.lifetime_spent > budget.lifetime_rho + 1e-9:
            return f"with this release the ledger would exceed the privacy budget ({after.line()})"
    return approvals_problem(entry.approvals, spec, spec_sha256, run_id, entry.draft_sha256)


def approvals_problem(
    approvals: list[dict], spec: CollaborationSpec, spec_sha256: str, run_id: str, draft_sha256: str
) -> str | None:
    """Why these approvals do not allow the release (None when every one verifies and the rule holds)."""
    expected = DecisionStatement(
        run_id=run_id, spec_sha256=spec_sha256, draft_sha256=draft_sha256, decision="approve"
    )
    today = datetime.now(timezone.utc).date()
    approved_by = set()
    for approval in approvals:
        if approval.get("standing"):
            standing = StandingApproval.model_validate({k: v for k, v in approval.items() if k != "standing"})
            problem = standing_problem(standing, spec, spec_sha256, today)
        else:
            signed = SignedDecision.model_validate(approval)
            problem = decision_problem(signed, spec, expected) or (
                None if signed.decision.value == "approve" else "a counted decision is not an approval"
            )
        if problem:
            return f"approval by {approval.get('approver')}: {problem}"
        approved_by.add(approval["approver"])
    if verdict(spec, approved_by, None) is not Verdict.APPROVED:
        return "the approvals do not satisfy the spec's approval rule"
    return None
