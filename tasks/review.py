"""Phase 5: review — every party cross-verifies the revealed outputs against its own data, then the
approvers decide on the draft report: nothing is released without their signed approval."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from secrets import token_hex
from typing import TYPE_CHECKING, Any, NoReturn

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import ValidationError

from cleanroom.errors import ReleaseRefused, SecureComputationError
from cleanroom.exchange.messages import REVEALED_TOTALS
from cleanroom.release.approvals import (
    Decision,
    DecisionStatement,
    SignedDecision,
    StandingApproval,
    Verdict,
    decision_problem,
    standing_problem,
    still_needed,
    verdict,
)
from cleanroom.release.drafts import record_outcome
from cleanroom.release.rerun import Rerun, RerunRequested, adjustment_problems, changes
from cleanroom.secure import RevealedTotals
from cleanroom.spec.approval import Adjustments
from cleanroom.spec.models import CollaborationSpec
from tasks import PRIVATE
from tasks.context import RunContext

if TYPE_CHECKING:
    from cleanroom.report.content import Report
    from tasks.reporting import DraftedReport


def share_revealed_totals(context: RunContext, revealed: RevealedTotals) -> None:
    """The revealed market totals, sealed to the data parties as soon as they are known: each node
    checks them against its own data while the other analyses run."""
    payload = revealed.model_dump_json(include={"sales_cents", "shown"}).encode()
    context.exchange.send(REVEALED_TOTALS, payload, to=context.parties)


@task(name="cross-verify", **PRIVATE)
def cross_verify(context: RunContext, revealed: RevealedTotals) -> dict[str, bool]:
    """Combine the in-MPC check (each party's shares reconstruct to its own input, checked on its own
    player) with each party's check, on its node, that every revealed total is at least its own
    figure (`share_revealed_totals` sealed the totals to them); stop if any fails."""
    checks = {f"{p}: shares reconstruct to its input": ok for p, ok in revealed.contribution_consistent.items()}
    statuses = context.nodes.run("verify", context.parties)
    checks |= {
        f"{p}: revealed totals consistent with its own data": bool(s.get("consistent"))
        for p, s in statuses.items()
    }
    failed = [name for name, ok in checks.items() if not ok]
    get_run_logger().info("cross-verification: %d checks, %d failed", len(checks), len(failed))
    if failed:
        raise SecureComputationError(
            f"cross-verification failed: {'; '.join(failed)}",
            where="review",
            fix="do not publish; the named party inspects its logs and the run is repeated",
        )
    return checks


class ApprovalInput(RunInput):
    """One approver's decision on the draft, signed with their own key over this run, spec and draft
    (`cleanroom approve` resumes the run with it; `cleanroom approve --print` gives the fields to paste
    into this form). Unsigned or forged input is logged and ignored: the run keeps waiting."""

    approver: str
    decision: Decision
    comment: str = ""
    adjustments: Adjustments | None = None  # with decision rerun: what to tighten, within the spec's bounds
    signed_at: str
    signature: str


@dataclass(frozen=True)
class Release:
    """What allowed the release: the counted approvals (signed decisions and standing approvals), as
    recorded in the report's manifest and the ledger."""

    approvals: list[dict]


def await_approval(context: RunContext, drafted: DraftedReport) -> Release:
    """Phase 5.3: release only under the spec's approval rule. Standing approvals count first; then the
    run pauses for signed decisions (Prefect's `pause_flow_run` with a typed form) until the rule holds,
    a counted rejection arrives or the spec's timeout passes. The outcome is recorded beside the draft;
    a rejection or the timeout ends the run with nothing released."""
    spec, settings, logger = context.pinned.spec, context.settings, get_run_logger()
    draft = drafted.draft
    expected = DecisionStatement(
        run_id=context.run_id, spec_sha256=context.pinned.sha256, draft_sha256=draft.sha256, decision="approve"
    )
    approvals = standing_approvals(settings.standing_approvals_root, spec, context.pinned.sha256, logger)
    deadline = time.monotonic() + spec.approval.timeout_minutes * 60
    _approval_artifact(context, drafted, {a["approver"] for a in approvals})
    refusal: SignedDecision | None = None
    while (state := verdict(spec, approved_by := {a["approver"] for a in approvals}, refusal)) is Verdict.WAITING:
        missing = ", ".join(f"{n} from {group}" for group, n in still_needed(spec, approved_by).items())
        logger.info("waiting for approval of draft %s: %s still needed", draft.sha256[:16], missing)
        remaining = deadline - time.monotonic()
        try:
            given = (
                pause_flow_run(
                    wait_for_input=ApprovalInput,
                    timeout=max(int(remaining), 1),
                    poll_interval=2,
                    key=f"approval-{token_hex(4)}",
                )
                if remaining > 0
                else None
            )
        except FlowPauseTimeout:
            given = None
        if given is None:
            reason = f"no decision within {spec.approval.timeout_minutes:g} minutes (approval.timeout_minutes)"
            _refuse(context, approvals, reason)
        bound = expected.model_dump(include={"run_id", "spec_sha256", "draft_sha256"})
        signed = SignedDecision(**bound, **given.model_dump())
        problem = decision_problem(signed, spec, expected)
        if problem:
            logger.warning("ignored a decision given as '%s': %s", given.approver, problem)
            continue
        logger.info("%s: %s", signed.approver, signed.decision.value)
        if signed.decision is Decision.RERUN:
            _rerun(context, signed, approvals)  # returns only if the request leaves the spec's bounds
            continue
        if signed.decision is Decision.REJECT:
            refusal = signed
        else:  # a person's decision replaces their standing approval
            approvals = [a for a in approvals if a["approver"] != signed.approver] + [
                signed.model_dump(mode="json")
            ]
    if state is Verdict.REJECTED:
        assert refusal is not None
        comment = f" ({refusal.comment})" if refusal.comment else ""
        _refuse(context, [*approvals, refusal.model_dump(mode="json")], f"rejected by {refusal.approver}{comment}")
    record_outcome(settings.drafts_root, context.run_id, {"outcome": "approved", "approvals": approvals})
    return Release(approvals)


def standing_approvals(folder: Path, spec: CollaborationSpec, spec_sha256: str, logger: Any) -> list[dict]:
    """The standing approvals in the coordinator's folder that apply to this spec today (one per
    approver); the others are logged with the reason and do not count."""
    found: dict[str, dict] = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            approval = StandingApproval.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            logger.warning("ignored %s: not a standing approval (`cleanroom approve --standing` writes one)", path)
            continue
        problem = standing_problem(approval, spec, spec_sha256, datetime.now(timezone.utc).date())
        if problem:
            if approval.spec_sha256 == spec_sha256:  # another spec's approvals are not worth a line
                logger.warning("standing approval of %s does not count: %s", approval.approver, problem)
            continue
        found[approval.approver] = {"standing": True, **approval.model_dump(mode="json")}
    if found:
        logger.info("standing approvals by %s", ", ".join(sorted(found)))
    return list(found.values())


def _rerun(context: RunContext, signed: SignedDecision, approvals: list[dict]) -> None:
    """A signed request to compute again, stricter: ends this run unreleased and hands the lifecycle the
    adjustments. One outside the spec's bounds is logged and ignored (the run keeps waiting)."""
    spec = context.pinned.spec
    adjustments = signed.adjustments or Adjustments()
    problems = adjustment_problems(spec, adjustments)
    if problems:
        get_run_logger().warning("ignored %s's re-run request: %s", signed.approver, "; ".join(problems))
        return
    rerun = Rerun(context.run_id, signed.approver, adjustments, changes(spec, adjustments), signed.comment)
    record_outcome(
        context.settings.drafts_root,
        context.run_id,
        {
            "outcome": "re-run requested",
            "reason": "; ".join(rerun.changes),
            "decisions": [*approvals, signed.model_dump(mode="json")],
        },
    )
    raise RerunRequested(rerun)


def _refuse(context: RunContext, decisions: list[dict], reason: str) -> NoReturn:
    record_outcome(
        context.settings.drafts_root,
        context.run_id,
        {"outcome": "not released", "reason": reason, "decisions": decisions},
    )
    raise ReleaseRefused(
        f"not released: {reason}",
        where=f"run {context.run_id}",
        fix="the draft stays with the coordinator, sealed to the approvers; address the comments and run again",
    )


def _approval_artifact(context: RunContext, drafted: DraftedReport, approved_by: set[str]) -> None:
    """What the approvers review, without a market figure: what was computed, how many cells were shown
    or withheld, the rule, and the commands that open the draft and sign a decision."""
    spec, run_id = context.pinned.spec, context.run_id
    report = drafted.report
    rule = spec.approval
    needed = ", ".join(f"{n} of {group}" for group, n in rule.required(spec.approvers_by_party).items())
    approvers = "\n".join(
        f"| {a.name} | {a.party} | {'standing approval' if a.name in approved_by else 'to decide'} |"
        for a in spec.approvers
    )
    analyses = "\n".join(f"- {a.id} ({a.kind.value})" for a in spec.analyses)
    cli = Path(sys.executable).parent / "cleanroom"
    shown, withheld = report.headline.cells_shown, report.headline.cells_suppressed
    spec_path = context.pinned.path.resolve()
    # Prefect's UI breaks a paragraph at every newline: each paragraph is one line here.
    markdown = f"""# Draft report of run {run_id} awaits approval

Nothing is released until the approval rule holds: **{rule.rule.value}** ({needed}), within \
{rule.timeout_minutes:g} minutes. One signed rejection ends the run unreleased.

- spec sha256: `{context.pinned.sha256}`
- draft sha256 (what you sign): `{drafted.draft.sha256}`
- trend cells shown / withheld by disclosure control: {shown} / {withheld}
- differential-privacy budget spent: {_budget_spent(report)}

Computed under MPC:
{analyses}

| approver | party | status |
|---|---|---|
{approvers}

**Review** the draft (sealed to the approvers only):
`{cli} decrypt --draft --run {run_id} --spec {spec_path} --identity <your .age file> --html draft.html`

**Decide** with your own signing key (this resumes the run):
`{cli} approve --run {run_id} --spec {spec_path} --identity <your .signing.pem>`
(add `--reject --comment "why"` to reject{_rerun_hint(spec)}). To use the form here instead, run the \
same command with `--print` and paste the fields it prints: a decision without a valid signature is ignored.
"""
    create_markdown_artifact(markdown, key=f"approval-{run_id.lower()}", description="draft awaiting approval")


def _rerun_hint(spec: CollaborationSpec) -> str:
    bounds = spec.approval.rerun_bounds
    options = []
    if bounds.min_group_size_up_to is not None:
        options.append(f"--min-group-size {spec.privacy.min_group_size}..{bounds.min_group_size_up_to}")
    if bounds.max_share_percent_down_to is not None:
        p = spec.privacy.dominance.max_share_percent
        options.append(f"--max-share-percent {bounds.max_share_percent_down_to:g}..{p:g}")
    if not options or not bounds.max_reruns:
        return ""
    return f", or `--rerun {' '.join(options)}` to compute again with stricter disclosure control"


def _budget_spent(report: Report) -> str:
    privacy = report.privacy
    if privacy is None:
        return "none: this spec adds no noise"
    after = f"; after it, {privacy.budget}" if privacy.budget else ""
    return f"rho {privacy.run_rho:.3g} (epsilon {privacy.run_epsilon:.3g} at delta {privacy.delta:.0e}){after}"
