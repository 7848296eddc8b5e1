"""Phase 6: reporting — HTML + JSON report, encrypted to the approvers, signed, pushed to S3."""

from dataclasses import dataclass

from prefect import get_run_logger, task

from cleanroom.crypto.keys import load_signing_key
from cleanroom.psi.overlap import RevealedOverlap
from cleanroom.recommend.retail import RecommenderOutcome
from cleanroom.report.content import build_report
from cleanroom.report.publish import MANIFEST, archive, seal_report, upload, verify_delivery
from cleanroom.secure import RevealedTotals
from cleanroom.secure.shared_sales import RevealedSharedSales
from cleanroom.settings import Adapters
from cleanroom.spec import AnalysisKind, PinnedSpec
from cleanroom.storage.s3 import object_store
from tasks import PRIVATE


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
    pinned: PinnedSpec,
    revealed: RevealedTotals,
    insights: Insights,
    verification: dict[str, bool],
    adapters: Adapters,
    run_id: str,
) -> dict[str, str]:
    """Seal the report for every approver (age) with an Ed25519-signed manifest, upload it with
    server-side encryption, fetch it back through a presigned URL, verify it and archive that copy."""
    spec, settings = pinned.spec, adapters.settings
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
    )
    sealed = seal_report(report, spec, load_signing_key(settings.signing_key_path))
    with object_store(
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.aws_access_key_id,
        settings.aws_secret_access_key,
        log_dir=settings.runs_root / run_id,
    ) as store:
        uris = upload(sealed, store, spec.reporting.bucket, spec.reporting.prefix)
        delivered = verify_delivery(sealed, store, spec)
    archive_dir = archive(delivered, settings.archive_root)
    get_run_logger().info("report sealed for %d approvers, uploaded and verified", len(spec.approvers))
    return {"manifest_uri": uris[MANIFEST], "archive": str(archive_dir), **uris}
