"""The collaboration lifecycle: seven phases, each a task module in `tasks/`. The coordinator runs it;
every party-side step runs on that party's own node (see `flows/party_steps.py`)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from secrets import token_hex

from prefect import flow, get_run_logger
from pydantic import BaseModel

from cleanroom.exchange.heartbeat import Heartbeats
from cleanroom.history import KpiChange
from cleanroom.privacy.budget import give_back_unspent
from cleanroom.release.rerun import Rerun, with_reruns
from cleanroom.spec import PinnedSpec
from tasks import analysis, improvement, objectives, preparation, reporting, review, secure_setup
from tasks.context import RunContext, open_run


class LifecycleOutcome(BaseModel):
    """What the run hands back: locations and run metadata, no figures (they are in the sealed report)."""

    run_id: str
    spec_sha256: str
    report_uris: dict[str, str]  # name -> s3 URI
    archive_dir: str
    kpi_changes: list[KpiChange]
    approvals: list[str]  # who released it, e.g. "ana-lopez (standing approval until 2027-03-01)"
    ledger_index: int


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + token_hex(4)


@flow(name="collaboration-lifecycle", persist_result=False)
def collaboration_lifecycle(spec_path: Path) -> LifecycleOutcome:
    """Run one collaboration end to end: pin the spec and check every party signed it, prepare each
    party's data on its own node, count the shared customers, compute the approved analyses under MPC
    between the nodes' players, cross-verify, wait for the approvers' signed approval of the draft
    report, release it sealed, and record KPIs."""
    started = time.monotonic()
    pinned = objectives.pin_collaboration_spec(spec_path)

    def attempt(run_pinned: PinnedSpec, rerun: Rerun | None) -> LifecycleOutcome:
        context = open_run(run_pinned, new_run_id(), rerun=rerun)
        try:
            with Heartbeats(context.exchange, to=context.parties):  # nodes give up on a coordinator that died
                return _phases(context, started)
        finally:
            _close(context)

    # An approver's signed request to compute again, stricter, starts a new run at once (phase 5.2).
    return with_reruns(pinned, attempt, get_run_logger().info)


def _phases(context: RunContext, started: float) -> LifecycleOutcome:
    signatures = objectives.check_consortium(context)
    budget = objectives.reserve_privacy_budget(context)  # refused here, before anything is computed
    spec = context.pinned.spec
    # One session per node runs every party step of the run (flows/party_steps.py): after preparation,
    # PSI and the player start at once (players start while PSI runs), verify and recommend when their
    # inputs come.
    preparation.prepare_all_parties(context)
    with secure_setup.player_session(context) as players:
        overlap, indicator_shares = analysis.customer_overlap(context)
        sums = analysis.secure_sums(context, players)
        revealed = sums[spec.category_month_sales.id]
        review.share_revealed_totals(context, revealed)  # the nodes verify while the rest computes
        trained = analysis.train_joint_recommender(context, players)
        shared_sales = analysis.shared_customer_sales(context, players, indicator_shares)
    recommending = analysis.deliver_recommendations.submit(context, trained)
    verification = review.cross_verify(context, revealed)
    recommender = recommending.result()
    insights = reporting.Insights(overlap, sums, recommender, shared_sales)
    drafted = reporting.draft_report(context, revealed, insights, verification, signatures, budget)
    release = review.await_approval(context, drafted)  # paused until the approvers' rule holds
    sealed = reporting.seal_release(context, drafted, release)
    ledger_index = reporting.record_release(context, drafted, release, sealed)  # every node countersigns
    publication = reporting.publish_report(context, sealed)
    changes = improvement.record_kpis(context, revealed, verification, time.monotonic() - started)
    if publication.problems:  # recorded, archived (or uploaded): the run still fails, saying what to do
        raise reporting.publication_failed(context.run_id, publication)
    assert publication.archive_dir is not None
    return LifecycleOutcome(
        run_id=context.run_id,
        spec_sha256=context.pinned.sha256,
        report_uris=publication.uris,
        archive_dir=publication.archive_dir,
        kpi_changes=changes,
        approvals=[_approval_line(a) for a in release.approvals],
        ledger_index=ledger_index,
    )


def _approval_line(approval: dict) -> str:
    if approval.get("standing"):
        return f"{approval['approver']} (standing approval until {approval['expires_on']})"
    return f"{approval['approver']} (signed {approval['signed_at']})"


def _close(context: RunContext) -> None:
    """Whatever happened: the nodes stop waiting, unfinished party sessions are cancelled, and the run's
    exchange prefix is removed (a lifecycle rule expires it should this fail too). A failure here is
    logged, never raised over the run's own outcome."""

    def give_back_privacy_budget() -> None:  # only if nothing was computed; spent budget stays spent
        give_back_unspent(context.budget_folder, context.run_id)

    for step in (
        context.exchange.close,
        context.nodes.cancel_all,
        context.exchange.remove,
        give_back_privacy_budget,
    ):
        try:
            step()
        except Exception as exc:
            get_run_logger().warning("closing the run: %s failed (%s)", step.__name__, type(exc).__name__)
