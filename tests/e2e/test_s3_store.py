"""The sealed report in a real S3-compatible server (moto's server mode, its own process)."""

from __future__ import annotations

import pytest

from cleanroom.crypto.keys import load_signing_key
from cleanroom.report.content import build_report
from cleanroom.report.publish import HTML_OBJECT, Destination, publish, seal_report
from cleanroom.secure import RevealedTotals
from cleanroom.spec import AnalysisKind, Protocol
from cleanroom.storage.s3 import object_store

pytestmark = pytest.mark.slow


def test_object_in_s3_is_ciphertext_with_sse(small_workspace, small_spec, tmp_path) -> None:
    spec = small_spec.spec
    analysis = spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    cells = analysis.cells
    revealed = RevealedTotals(
        sales_cents=[123_456_00 + i for i in range(cells)],
        shown=[True] * cells,
        contribution_consistent={},
        protocol=Protocol.ABY3,
        seconds=0.5,
    )
    report = build_report(spec, analysis, small_spec.sha256, "run-s3", revealed, {})
    sealed = seal_report(report, spec, load_signing_key(small_workspace.signing_key_path))
    settings = small_workspace
    with object_store(
        None, settings.s3_region, settings.aws_access_key_id, settings.aws_secret_access_key, tmp_path
    ) as store:
        uris = publish(
            sealed.run_id, sealed.files(), store, Destination.of(spec)
        )  # read back through presigned URLs
        key = uris[HTML_OBJECT].removeprefix(f"s3://{spec.reporting.bucket}/")
        stored = store.client().get_object(Bucket=spec.reporting.bucket, Key=key)
        body = stored["Body"].read()
        assert stored["ServerSideEncryption"] == "AES256"
        assert body == sealed.objects[HTML_OBJECT]
        for text in ("Grocery", "Market sales", report.title, "123,456.00", "12345600"):
            assert text.encode() not in body
