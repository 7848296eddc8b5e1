"""The comparison with the previous release: the coordinator's sealed record of each release's headline,
used only when it matches the ledger's last entry, and the report's table and summary sentence."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyrage import x25519

from cleanroom.crypto.keys import public_key_b64
from cleanroom.crypto.sealed import Member
from cleanroom.release.ledger import LedgerEntry
from cleanroom.release.previous import ReleaseRecord, keep_record, previous_release
from cleanroom.report.comparison import HeadlineFigures, PreviousRelease
from cleanroom.report.content import build_report
from cleanroom.report.html import render_html, summary_lines
from tests.unit.test_report_sealing import _revealed

FIGURES = HeadlineFigures(
    periods="2025-01 to 2025-12",
    market_sales_cents=10_000_000,
    units=11_000_000,
    cells_shown=95,
    cells_withheld=13,
    top_category="Grocery",
    peak_period="2025-11",
    distinct_customers=None,
    shared_customers=None,
)


def _member() -> Member:
    return Member("coordinator", Ed25519PrivateKey.generate(), x25519.Identity.generate())


def _entry(index: int, run_id: str, manifest: str = "c" * 64) -> LedgerEntry:
    return LedgerEntry(
        index=index,
        previous_sha256="0" * 64,
        collaboration="demo",
        run_id=run_id,
        spec_sha256="a" * 64,
        released_at="2026-11-02T09:00:00+00:00",
        draft_sha256="b" * 64,
        report_manifest_sha256=manifest,
        figures=[],
        privacy_budget_spent={},
        approvals=[],
    )


def _record(run_id: str, index: int) -> ReleaseRecord:
    return ReleaseRecord(
        run_id=run_id, ledger_index=index, report_manifest_sha256="c" * 64, spec_sha256="a" * 64, figures=FIGURES
    )


def test_the_record_of_the_ledgers_last_release_is_found(tmp_path: Path) -> None:
    me = _member()
    key = public_key_b64(me.signing_key.public_key())
    keep_record(tmp_path, _record("run-0", 0), me)
    keep_record(tmp_path, _record("run-1", 1), me)
    found = previous_release(tmp_path, [_entry(0, "run-0"), _entry(1, "run-1")], me, key, "a" * 64)
    assert found is not None and found.run_id == "run-1" and found.figures == FIGURES and found.same_spec
    assert previous_release(tmp_path, [], me, key, "a" * 64) is None  # the first release
    assert list(tmp_path.glob(".*")) == []  # nothing half-written
    assert b"Grocery" not in (tmp_path / "run-1.age").read_bytes()  # sealed, not plaintext


@pytest.mark.parametrize("how", ["another manifest", "another coordinator", "damaged", "missing"])
def test_a_record_that_does_not_match_the_ledger_is_not_used(tmp_path: Path, how: str) -> None:
    me = _member()
    key = public_key_b64(me.signing_key.public_key())
    keep_record(tmp_path, _record("run-1", 1), _member() if how == "another coordinator" else me)
    path = tmp_path / "run-1.age"
    if how == "damaged":
        path.write_bytes(path.read_bytes()[:-10])
    if how == "missing":
        path.unlink()
    manifest = "d" * 64 if how == "another manifest" else "c" * 64
    found = previous_release(tmp_path, [_entry(0, "run-0"), _entry(1, "run-1", manifest)], me, key, "f" * 64)
    assert found is not None and found.run_id == "run-1" and found.figures is None and not found.same_spec


def test_the_report_compares_every_headline_figure(small_spec, tmp_path: Path) -> None:
    spec = small_spec.spec
    trend = spec.category_month_sales
    previous = PreviousRelease(
        run_id="run-1", ledger_index=4, released_at="2026-11-02T09:00:00+00:00", same_spec=True, figures=FIGURES
    )
    report = build_report(spec, trend, "a" * 64, "run-2", _revealed(trend.cells), {}, previous=previous)
    rows = {row.name: row for row in report.compared()}
    now = report.headline.market_sales_cents
    assert rows["Market sales (revealed cells)"].change == f"{(now - 10_000_000) / 10_000_000:+.1%}"
    assert rows["Periods covered"].change == "unchanged" and rows["Distinct customers"].change == "not comparable"
    assert rows["Distinct customers"].previous == "not released"  # withheld, or not computed then: not "withheld"
    change = rows["Market sales (revealed cells)"].change
    assert summary_lines(report)[0].startswith(
        f"Since the previous release (run run-1, 2026-11-02): market sales {change} (€100,000.00 to "
    )
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", render_html(report).decode())).split())
    assert "Compared with the previous release" in text and "Release 4 of the ledger: run run-1" in text
    first = build_report(spec, trend, "a" * 64, "run-0", _revealed(trend.cells), {}, ledger_read=True)
    assert (
        summary_lines(first)[0]
        == "This is the consortium's first release: there is nothing earlier to compare with."
    )
    assert "Compared with the previous release" not in render_html(first).decode()
    unread = build_report(spec, trend, "a" * 64, "run-0", _revealed(trend.cells), {})
    assert not summary_lines(unread)[0].startswith(("This is", "Since"))
