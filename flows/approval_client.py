"""What an approver runs (`cleanroom approve`): sign a decision on a run's draft with their own key and
resume the paused run with it, or print the fields for the Prefect UI's form; or sign a standing
approval of a spec for scheduled runs."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path
from uuid import UUID

from cleanroom.crypto.keys import load_signing_key
from cleanroom.errors import ConfigurationError, ReleaseRefused
from cleanroom.release.approvals import (
    Decision,
    DecisionStatement,
    SignedDecision,
    StandingApproval,
    approver_of,
    sign_decision,
    sign_standing,
)
from cleanroom.release.drafts import fetch_draft
from cleanroom.release.rerun import adjustment_problems
from cleanroom.settings import Settings
from cleanroom.spec import PinnedSpec
from cleanroom.spec.approval import Adjustments
from cleanroom.storage.s3 import S3ObjectStore

RESUME_PATIENCE_SECONDS = 60.0  # the run takes a moment to pause again after another approver's decision


def signed_decision(
    pinned: PinnedSpec,
    run_id: str,
    identity: Path,
    decision: Decision,
    comment: str,
    settings: Settings,
    adjustments: Adjustments | None = None,
) -> tuple[SignedDecision, str]:
    """The approver's signed decision on the run's draft (fetched and verified first) and the flow run
    to resume with it."""
    key = load_signing_key(identity)
    approver = _approver(key, pinned, identity)
    store = store_if_configured(settings)
    _, draft = fetch_draft(run_id, pinned.spec, pinned.sha256, settings.drafts_root, store)
    statement = DecisionStatement(
        run_id=run_id,
        spec_sha256=pinned.sha256,
        draft_sha256=draft.sha256,
        decision=decision,
        comment=comment,
        adjustments=adjustments,
    )
    return sign_decision(approver, statement, key), str(draft.manifest.get("flow_run_id", ""))


def rerun_adjustments(
    pinned: PinnedSpec, reject: bool, rerun: bool, min_group_size: int | None, max_share_percent: float | None
) -> Adjustments | None:
    """The adjustments a --rerun asks for, checked against the spec's bounds here (the run checks again)."""
    given = min_group_size is not None or max_share_percent is not None
    if reject and rerun:
        raise ConfigurationError("--reject and --rerun both given", where="cleanroom approve", fix="choose one")
    if given and not rerun:
        raise ConfigurationError(
            "--min-group-size and --max-share-percent go with --rerun",
            where="cleanroom approve",
            fix="add --rerun",
        )
    if not rerun:
        return None
    adjustments = Adjustments(min_group_size=min_group_size, max_share_percent=max_share_percent)
    problems = adjustment_problems(pinned.spec, adjustments)
    if problems:
        raise ConfigurationError(
            "; ".join(problems),
            where="cleanroom approve --rerun",
            fix="stay within the spec's approval.rerun_bounds",
        )
    return adjustments


def form_fields(signed: SignedDecision) -> dict:
    """The fields of the run's approval form (ApprovalInput), as the decision was signed."""
    fields = ["approver", "decision", "comment", "signed_at", "signature"]
    return signed.model_dump(mode="json", include={*fields, "adjustments"} if signed.adjustments else set(fields))


def resume_with(flow_run_id: str, signed: SignedDecision, patience: float = RESUME_PATIENCE_SECONDS) -> None:
    """Resume the paused run with the decision (the form's fields); waits while the run is busy with
    another approver's decision, and says so when it no longer waits for any."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import FlowPauseTimeout, NotPausedError
    from prefect.flow_runs import resume_flow_run

    fields = form_fields(signed)
    deadline = time.monotonic() + patience
    while True:
        try:
            resume_flow_run(UUID(flow_run_id), run_input=fields)
            return
        except RuntimeError as exc:
            # Prefect marks a run paused before it saves its form: a decision sent in between is
            # refused ("Run input schema not found") and must be sent again, not lost.
            if "schema not found" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
        except NotPausedError:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(UUID(flow_run_id)).state
            if state is not None and state.is_final():
                raise ReleaseRefused(
                    f"the run no longer waits for decisions (it is {state.name})",
                    where=f"flow run {flow_run_id}",
                    fix="nothing to do; a new run makes a new draft",
                ) from None
            if time.monotonic() > deadline:
                raise ReleaseRefused(
                    "the run is not paused for approval", where=f"flow run {flow_run_id}", fix="try again shortly"
                ) from None
            time.sleep(1)
        except FlowPauseTimeout:
            raise ReleaseRefused(
                "the run's approval window has passed: nothing was released",
                where=f"flow run {flow_run_id}",
                fix="a new run makes a new draft",
            ) from None


def standing_approval(
    pinned: PinnedSpec, identity: Path, until: date, out: Path | None, settings: Settings
) -> Path:
    """Sign a standing approval of this spec version until `until`; written to `out` or into the
    coordinator's folder of standing approvals (one file per approver and spec version)."""
    key = load_signing_key(identity)
    approver = _approver(key, pinned, identity)
    if until < date.today():
        raise ConfigurationError(f"{until} has passed", where="--until", fix="give a future date (YYYY-MM-DD)")
    approval = StandingApproval(
        approver=approver, collaboration=pinned.spec.collaboration, spec_sha256=pinned.sha256, expires_on=until
    )
    target = out or settings.standing_approvals_root / f"{approver}-{pinned.sha256[:16]}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(sign_standing(approval, key).model_dump_json(indent=2))
    partial.replace(target)
    return target


def _approver(key: object, pinned: PinnedSpec, identity: Path) -> str:
    approver = approver_of(key, pinned.spec)  # type: ignore[arg-type]
    if approver is None:
        raise ConfigurationError(
            "this key belongs to none of the spec's approvers",
            where=str(identity),
            fix="use your <name>.signing.pem; its public half is approvers[*].signing_key in the spec",
        )
    return approver


def store_if_configured(settings: Settings) -> S3ObjectStore | None:
    if not settings.s3_endpoint_url:
        return None
    from tasks.context import object_store

    return object_store(settings)
