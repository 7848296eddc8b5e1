"""Approvers' signed decisions on a run's draft report, and the rule that turns them into a verdict.

Self-hosted Prefect shares one credential, so whoever reaches the server can resume a paused run with
any input: a decision counts only with its approver's own Ed25519 signature over exactly this run,
spec and draft. A standing approval is the same signature over the spec alone, with an expiry date:
it lets a scheduled run complete without a person while nothing in the spec changes.
"""

from __future__ import annotations

import base64
import json
from datetime import date, datetime, timezone
from enum import Enum

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from cleanroom.crypto.keys import signature_verifies
from cleanroom.spec.approval import Adjustments
from cleanroom.spec.models import CollaborationSpec

DECISION_CONTEXT = b"cleanroom-release-decision-v1\n"
STANDING_CONTEXT = b"cleanroom-standing-approval-v1\n"


class Decision(str, Enum):
    APPROVE = "approve"
    REJECT = "reject"
    RERUN = "rerun"  # compute again with the signed adjustments (stricter, within the spec's bounds)


class DecisionStatement(BaseModel):
    """What an approver signs: this run, this spec, this draft (sha256 of its signed manifest)."""

    run_id: str
    spec_sha256: str
    draft_sha256: str
    decision: Decision
    comment: str = ""
    adjustments: Adjustments | None = None  # with decision rerun

    def message(self) -> bytes:
        # No adjustments, no key: approvals and rejections sign the same bytes as before re-runs existed.
        fields = self.model_dump(mode="json", exclude={"adjustments"} if self.adjustments is None else set())
        return DECISION_CONTEXT + json.dumps(fields, sort_keys=True).encode()


class SignedDecision(DecisionStatement):
    approver: str
    signed_at: str
    signature: str  # base64 Ed25519 over DecisionStatement.message()

    def statement(self) -> DecisionStatement:
        return DecisionStatement.model_validate(self.model_dump(include=set(DecisionStatement.model_fields)))


class StandingApproval(BaseModel):
    """An approver's approval of every run of one spec until `expires_on` (inclusive, UTC)."""

    approver: str
    collaboration: str
    spec_sha256: str
    expires_on: date
    signature: str = ""

    def message(self) -> bytes:
        fields = self.model_dump(mode="json", exclude={"signature"})
        return STANDING_CONTEXT + json.dumps(fields, sort_keys=True).encode()


def sign_decision(approver: str, statement: DecisionStatement, key: Ed25519PrivateKey) -> SignedDecision:
    return SignedDecision(
        **statement.model_dump(),
        approver=approver,
        signed_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        signature=base64.b64encode(key.sign(statement.message())).decode(),
    )


def sign_standing(approval: StandingApproval, key: Ed25519PrivateKey) -> StandingApproval:
    signature = base64.b64encode(key.sign(approval.message())).decode()
    return approval.model_copy(update={"signature": signature})


def approver_of(key: Ed25519PrivateKey, spec: CollaborationSpec) -> str | None:
    """The spec's approver whose public key this private key belongs to."""
    from cleanroom.crypto.keys import public_key_b64

    public = public_key_b64(key.public_key())
    return next((a.name for a in spec.approvers if a.signing_key == public), None)


def decision_problem(signed: SignedDecision, spec: CollaborationSpec, expected: DecisionStatement) -> str | None:
    """Why a decision does not count (None when it does): unknown approver, another run, spec or draft,
    or a bad signature."""
    if signed.approver not in {a.name for a in spec.approvers}:
        return f"'{signed.approver}' is not an approver in the spec"
    for field in ("run_id", "spec_sha256", "draft_sha256"):
        if getattr(signed, field) != getattr(expected, field):
            return f"signed for another {field.replace('_', ' ')}"
    if not signature_verifies(
        spec.approver(signed.approver).signing_key, signed.signature, signed.statement().message()
    ):
        return "the signature does not verify under the approver's key in the spec"
    return None


def standing_problem(
    approval: StandingApproval, spec: CollaborationSpec, spec_sha256: str, today: date
) -> str | None:
    """Why a standing approval does not apply to a run of this spec today (None when it does)."""
    if not spec.approval.standing_approvals:
        return "the spec allows no standing approvals (approval.standing_approvals: false)"
    if approval.approver not in {a.name for a in spec.approvers}:
        return f"'{approval.approver}' is not an approver in the spec"
    if approval.spec_sha256 != spec_sha256:
        return "it approves another version of the spec"
    if approval.expires_on < today:
        return f"it expired on {approval.expires_on.isoformat()}"
    if not signature_verifies(
        spec.approver(approval.approver).signing_key, approval.signature, approval.message()
    ):
        return "the signature does not verify under the approver's key in the spec"
    return None


class Verdict(str, Enum):
    APPROVED = "approved"
    REJECTED = "rejected"
    WAITING = "waiting"


def verdict(spec: CollaborationSpec, approved_by: set[str], refusal: SignedDecision | None) -> Verdict:
    """One counted rejection ends it; else approved once the rule holds in every group."""
    if refusal is not None:
        return Verdict.REJECTED
    return Verdict.APPROVED if not still_needed(spec, approved_by) else Verdict.WAITING


def still_needed(spec: CollaborationSpec, approved_by: set[str]) -> dict[str, int]:
    """Approvals still missing per group (empty when the rule holds)."""
    by_party = spec.approvers_by_party
    missing = {}
    for group, needed in spec.approval.required(by_party).items():
        members = by_party.get(group, [a.name for a in spec.approvers])
        have = len(approved_by & set(members))
        if have < needed:
            missing[group] = needed - have
    return missing
