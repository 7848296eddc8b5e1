"""Phase 6: reporting — HTML + JSON report, encrypted to the approvers, signed, pushed to S3."""

from dataclasses import dataclass

from prefect import get_run_logger, task

from cleanroom.psi.overlap import RevealedOverlap
from cleanroom.recommend.retail import RecommenderOutcome
from cleanroom.report.content import build_report
from cleanroom.report.publish import MANIFEST, archive, seal_report, upload, verify_delivery
from cleanroom.secure import RevealedTotals
from cleanroom.secure.shared_sales import RevealedSharedSales
from cleanroom.spec import AnalysisKind
from cleanroom.spec.signatures import SpecSignature
from tasks import PRIVATE
from tasks.context import RunContext


@dataclass(frozen=True)
class Insights:
    """The approved outputs besides the market totals (each None when the spec does not approve it)."""

    overlap: RevealedOverlap | None
    segments: RevealedTotals | None
    copurchase: RevealedTotals | None
    recommender: RecommenderOutcome | None = None
    baskets: RevealedTotals | None = None
    shared_sales: RevealedSharedSales | None = None


@task(name="publish-report", **PRIVATE)
def publish_report(
    context: RunContext,
    revealed: RevealedTotals,
    insights: Insights,
    verification: dict[str, bool],
    signatures: dict[str, SpecSignature],
) -> dict[str, str]:
    """Seal the report for every approver (age) with an Ed25519-signed manifest, upload it with
    server-side encryption, fetch it back through a presigned URL, verify it and archive that copy."""
    pinned, settings, run_id, store = context.pinned, context.settings, context.run_id, context.store
    spec = pinned.spec
    analysis = spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    report = build_report(
        spec,
        analysis,
        pinned.sha256,
        run_id,
        revealed,
        verification,
        overlap=insights.overlap,
        segments=insights.segments,
        copurchase=insights.copurchase,
        recommender=insights.recommender,
        baskets=insights.baskets,
        shared_sales=insights.shared_sales,
        signatures=signatures,
        plaintext_players=settings.dev_plaintext_players,
    )
    sealed = seal_report(report, spec, context.me.signing_key)
    uris = upload(sealed, store, spec.reporting.bucket, spec.reporting.prefix)
    delivered = verify_delivery(sealed, store, spec)
    archive_dir = archive(delivered, settings.archive_root)
    get_run_logger().info("report sealed for %d approvers, uploaded and verified", len(spec.approvers))
    return {"manifest_uri": uris[MANIFEST], "archive": str(archive_dir), **uris}
