"""Sealed reports: approvers open them, others cannot, tampering is caught, no text leaks."""

from __future__ import annotations

from pathlib import Path

import pytest
from markupsafe import escape

from cleanroom.crypto.keys import load_age_identity, load_signing_key, new_age_identity
from cleanroom.errors import ConfigurationError, CryptoError
from cleanroom.report.content import PLAINTEXT_NOTICE, build_report
from cleanroom.report.html import render_html
from cleanroom.report.publish import HTML_OBJECT, JSON_OBJECT, MANIFEST, open_report, seal_report
from cleanroom.secure import RevealedTotals
from cleanroom.spec import AnalysisKind, Protocol
from tests.conftest import home


def _revealed(cells: int) -> RevealedTotals:
    sales = [None if i % 10 == 0 else 1_000_00 + 137 * i for i in range(cells)]
    return RevealedTotals(
        sales_cents=sales,
        shown=[s is not None for s in sales],
        contribution_consistent={"northwind": True},
        protocol=Protocol.ABY3,
        seconds=1.0,
    )


@pytest.fixture()
def report(small_spec):
    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    cells = analysis.cells
    return build_report(small_spec.spec, analysis, small_spec.sha256, "run-1", _revealed(cells), {"check": True})


def test_headline_figures(report) -> None:
    assert report.headline.cells_suppressed == 11 and report.headline.cells_shown == 97
    assert report.headline.peak_period == "2025-12"
    assert report.notice is None


def test_approver_opens_and_outsider_cannot(small_workspace, small_spec, report) -> None:
    sealed = seal_report(report, small_spec.spec, load_signing_key(small_workspace.signing_key_path))
    for approver in small_spec.spec.approvers:
        identity = load_age_identity(small_workspace.keys_root / "approvers" / f"{approver.name}.age")
        assert open_report(sealed.files(), small_spec.spec, small_spec.sha256, identity) == report
    outsider = load_age_identity(home(small_workspace, "alpine") / "keys" / "party.age")
    with pytest.raises(CryptoError, match="not one of the recipients"):
        open_report(sealed.files(), small_spec.spec, small_spec.sha256, outsider)


def test_ciphertext_contains_no_report_text(small_workspace, small_spec, report) -> None:
    sealed = seal_report(report, small_spec.spec, load_signing_key(small_workspace.signing_key_path))
    html = render_html(report).decode()
    probes = [
        "Grocery",
        "Watches",
        report.title,
        "Market sales",
        f"{report.headline.market_sales_cents / 100:,.2f}",
    ]
    assert all(p in html for p in probes)
    for data in sealed.objects.values():
        assert data.startswith(b"age-encryption.org/v1")
        assert not any(p.encode() in data for p in probes)
    assert not any(p.encode() in sealed.manifest for p in probes)


def test_tampering_and_wrong_spec_are_caught(small_workspace, small_spec, report) -> None:
    sealed = seal_report(report, small_spec.spec, load_signing_key(small_workspace.signing_key_path))
    identity = load_age_identity(small_workspace.keys_root / "approvers" / "ana-lopez.age")
    files = sealed.files()
    flipped = bytearray(files[JSON_OBJECT])
    flipped[-5] ^= 1
    with pytest.raises(CryptoError, match="does not match the signed manifest"):
        open_report({**files, JSON_OBJECT: bytes(flipped)}, small_spec.spec, small_spec.sha256, identity)
    forged = files[MANIFEST].replace(b"run-1", b"run-2")
    with pytest.raises(CryptoError, match="signature does not verify"):
        open_report({**files, MANIFEST: forged}, small_spec.spec, small_spec.sha256, identity)
    with pytest.raises(CryptoError, match="different spec"):
        open_report(files, small_spec.spec, "0" * 64, identity)
    assert HTML_OBJECT in files


def test_plaintext_players_run_says_so_first(small_spec) -> None:
    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    args = (small_spec.spec, analysis, small_spec.sha256, "r", _revealed(analysis.cells), {})
    assert build_report(*args).notice is None
    report = build_report(*args, plaintext_players=True)
    assert report.notice == PLAINTEXT_NOTICE
    assert render_html(report).decode().splitlines()[0] == f"<!-- {escape(PLAINTEXT_NOTICE)} -->"


def test_bad_identity_file(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("hello\n")
    with pytest.raises(ConfigurationError, match="not an age identity file"):
        load_age_identity(tmp_path / "key.txt")
    new_age_identity(tmp_path / "real.age")
    assert (tmp_path / "real.age").stat().st_mode & 0o077 == 0
