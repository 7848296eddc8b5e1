"""Phase 6: reporting — the HTML + JSON report, first as a draft sealed to the approvers (phase 5
reviews it), then, once approved, released: encrypted to the approvers and every member's node,
signed with the approvals, archived locally, then published to S3 (a failed upload waits in the
archive for `cleanroom publish`)."""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone

from prefect import get_run_logger, runtime, task

from cleanroom.errors import ReleaseRefused, StorageError
from cleanroom.exchange.messages import LEDGER_COMMITTED, LEDGER_ENTRY
from cleanroom.privacy.budget import BudgetStatus
from cleanroom.privacy.noise_shares import rho_per_analysis
from cleanroom.psi.overlap import RevealedOverlap
from cleanroom.recommend.retail import RecommenderOutcome
from cleanroom.release.drafts import Draft, keep_draft, offer_draft
from cleanroom.release.ledger import (
    GENESIS,
    LedgerEntry,
    SignedEntry,
    append_to_store,
    chain_problems,
    ledger_mirror,
    read_mirror,
    reconcile,
    released_figures,
    sign_entry,
    write_mirror,
)
from cleanroom.release.previous import ReleaseRecord, keep_record, previous_release, records_folder
from cleanroom.report.comparison import headline_figures
from cleanroom.report.content import Report, build_report
from cleanroom.report.publish import (
    MANIFEST,
    Destination,
    SealedReport,
    archive,
    publish,
    publish_archived,
    seal_report,
    unpublished_runs,
)
from cleanroom.secure import RevealedTotals
from cleanroom.secure.shared_sales import RevealedSharedSales
from cleanroom.spec import AnalysisKind
from cleanroom.spec.models import CollaborationSpec
from cleanroom.spec.signatures import SpecSignature
from tasks import PRIVATE
from tasks.context import RunContext
from tasks.review import Release


@dataclass(frozen=True)
class Insights:
    """The approved outputs besides the market totals (each None or empty when the spec does not
    approve it); `sums` holds every summed analysis's revealed cells by analysis id."""

    overlap: RevealedOverlap | None
    sums: dict[str, RevealedTotals]
    recommender: RecommenderOutcome | None = None
    shared_sales: RevealedSharedSales | None = None


@dataclass(frozen=True)
class DraftedReport:
    """The report as built (kept in memory until release) and its sealed draft."""

    report: Report
    draft: Draft
    shown: dict[str, list[bool]]  # each summed analysis's revealed cells, by analysis id (no values)


@dataclass(frozen=True)
class Publication:
    """Where the sealed report is: the local archive (its first copy) and the store; `problems` are the
    one-line reasons a copy is missing (the run fails with them once everything else is recorded)."""

    archive_dir: str | None
    uris: dict[str, str]
    problems: list[str]

    @property
    def manifest_uri(self) -> str | None:
        return self.uris.get(MANIFEST)


@task(name="draft-report", **PRIVATE)
def draft_report(
    context: RunContext,
    revealed: RevealedTotals,
    insights: Insights,
    verification: dict[str, bool],
    signatures: dict[str, SpecSignature],
    budget: BudgetStatus | None = None,
) -> DraftedReport:
    """Build the report and seal it as a draft to the approvers only: kept by the coordinator and
    uploaded beside the reports (never to them) for the approvers to review. Nothing is released."""
    pinned, settings = context.pinned, context.settings
    spec = pinned.spec
    released = read_mirror(ledger_mirror(settings.workspace, spec.collaboration))
    previous = previous_release(
        records_folder(settings.workspace, spec.collaboration),
        [signed.entry for signed in released],
        context.me,
        spec.reporting.signing_public_key,
        pinned.sha256,
    )
    report = build_report(
        spec,
        spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES),
        pinned.sha256,
        context.run_id,
        revealed,
        verification,
        overlap=insights.overlap,
        sums=insights.sums,
        recommender=insights.recommender,
        shared_sales=insights.shared_sales,
        signatures=signatures,
        plaintext_players=settings.dev_plaintext_players,
        budget=budget,
        previous=previous,
        ledger_read=True,
        rerun=context.rerun,
    )
    request = {"stage": "draft", "flow_run_id": str(runtime.flow_run.id or "")}
    draft = Draft(seal_report(report, spec, context.me.signing_key, metadata=request))
    keep_draft(draft, settings.drafts_root)
    offer_draft(draft, context.store, spec)
    get_run_logger().info("draft report sealed to %d approvers (sha256 %s)", len(spec.approvers), draft.sha256)
    return DraftedReport(report, draft, {analysis: totals.shown for analysis, totals in insights.sums.items()})


def seal_release(context: RunContext, drafted: DraftedReport, release: Release) -> SealedReport:
    """The approved report (the draft's very content) sealed for the approvers and every member's node,
    with the approvals and the draft's hash in its Ed25519-signed manifest."""
    spec = context.pinned.spec
    recipients = {a.name: a.public_key for a in spec.approvers}
    recipients |= {f"{p.name} (node)": p.public_key for p in spec.parties}
    metadata = {"stage": "release", "draft_sha256": drafted.draft.sha256, "approvals": release.approvals}
    return seal_report(drafted.report, spec, context.me.signing_key, recipients, metadata)


@task(name="publish-report", **PRIVATE)
def publish_report(context: RunContext, sealed: SealedReport) -> Publication:
    """Archive the released report locally (atomically, before anything can fail on the store's
    account), then publish it with server-side encryption and read it back through presigned URLs.
    Reports of earlier runs still waiting in the archive are published first."""
    settings, run_id, store, spec = context.settings, context.run_id, context.store, context.pinned.spec
    destination, problems, uris = Destination.of(spec), [], {}
    run_dir = None
    try:
        run_dir = archive(sealed, settings.archive_root, destination)
    except StorageError as exc:
        problems.append(f"{exc.where}: {exc.message}")
    _publish_waiting(context, skip=run_id)
    try:
        if run_dir is not None:  # through the archive's lock: another run's outbox pass may see it too
            uris = publish_archived(run_dir, store, wait=settings.step_timeout)
        else:  # the archive failed: the copy in memory is the only one
            uris = publish(run_id, sealed.files(), store, destination)
        get_run_logger().info("released report published and verified")
    except StorageError as exc:
        problems.append(f"not published, {exc.where}: {exc.message}")
    return Publication(str(run_dir) if run_dir else None, uris, problems)


@task(name="record-release", **PRIVATE)
def _model_choices(spec: CollaborationSpec, report: Report) -> dict[str, dict]:
    choice = report.recommender.choice() if report.recommender else None
    analysis = spec.joint_recommender
    return {analysis.id: choice} if choice and analysis else {}


def record_release(context: RunContext, drafted: DraftedReport, release: Release, sealed: SealedReport) -> int:
    """Append the release to the ledger before anything is archived or published: the entry, signed by
    the coordinator, goes to every data party's node, which checks it (run, spec, chain, approvals)
    and countersigns; the countersigned entry is written once to the consortium bucket and mirrored by
    the coordinator and every node. A node that refuses stops the release."""
    spec, settings, logger = context.pinned.spec, context.settings, get_run_logger()
    mirror = ledger_mirror(settings.workspace, spec.collaboration)
    with context.ledger_lock():
        committed = reconcile(context.store, spec.exchange_bucket, spec.collaboration, mirror)
        report = drafted.report
        entry = LedgerEntry(
            index=len(committed),
            previous_sha256=committed[-1].entry.sha256() if committed else GENESIS,
            collaboration=spec.collaboration,
            run_id=context.run_id,
            spec_sha256=context.pinned.sha256,
            released_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            draft_sha256=drafted.draft.sha256,
            report_manifest_sha256=hashlib.sha256(sealed.manifest).hexdigest(),
            figures=released_figures(drafted.shown, report.disclosure_rule),
            privacy_budget_spent=rho_per_analysis(spec),
            approvals=release.approvals,
            model_choices=_model_choices(spec, report),
        )
        offered = SignedEntry(
            entry=entry, coordinator_signature=sign_entry(entry, context.me.signing_key), countersignatures={}
        )
        context.exchange.send(LEDGER_ENTRY, offered.model_dump_json().encode(), to=context.parties)
        # A session of its own, started now: no node session waited through the approval window.
        statuses = context.nodes.run("countersign", context.parties, phase="release")
        signed = offered.model_copy(update={"countersignatures": {p: s["signature"] for p, s in statuses.items()}})
        problems = chain_problems([signed], spec, first_index=entry.index)
        if problems:
            raise ReleaseRefused("; ".join(problems), where=f"run {context.run_id}", fix="nothing was released")
        append_to_store(context.store, spec.exchange_bucket, signed)
        write_mirror(mirror, signed)
    record = ReleaseRecord(
        run_id=context.run_id,
        ledger_index=entry.index,
        report_manifest_sha256=entry.report_manifest_sha256,
        spec_sha256=entry.spec_sha256,
        figures=headline_figures(report),
    )
    keep_record(records_folder(settings.workspace, spec.collaboration), record, context.me)  # for the next report
    context.exchange.send(LEDGER_COMMITTED, signed.model_dump_json().encode(), to=context.parties)
    context.nodes.wait("mirror", context.parties)
    logger.info("release recorded as ledger entry %d, countersigned by %d nodes", entry.index, len(statuses))
    return entry.index


def publication_failed(run_id: str, publication: Publication) -> StorageError:
    """The run's one error when a copy of its report is missing, with what to do about it."""
    if publication.archive_dir and not publication.uris:
        fix = (
            f"`cleanroom publish --run {run_id}` uploads it from {publication.archive_dir} (so does the next run)"
        )
    elif publication.uris:
        fix = f"it is published ({publication.manifest_uri}); free space for the local archive"
    else:
        fix = "free space for the archive and check the store: this run's report could not be kept"
    return StorageError("; ".join(publication.problems), where=f"run {run_id}", fix=fix)


def _publish_waiting(context: RunContext, skip: str) -> None:
    """The outbox: earlier runs' reports whose upload failed go out with this run (a failure is logged
    and they keep waiting)."""
    logger = get_run_logger()
    for run_dir in unpublished_runs(context.settings.archive_root):
        if run_dir.name == skip:
            continue
        try:
            publish_archived(run_dir, context.store)
            logger.info("published the report of earlier run %s, which was waiting in the archive", run_dir.name)
        except StorageError as exc:
            logger.warning("the report of run %s still waits in the archive: %s", run_dir.name, exc.one_line())
