"""The release ledger: a tampered, reordered, truncated or re-signed ledger is detected; a node refuses
to countersign an entry without valid approvals or one that does not continue its mirror; the
coordinator restores entries a reset bucket lost from its mirror and refuses a ledger that differs."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleanroom.crypto.keys import load_signing_key
from cleanroom.errors import StorageError
from cleanroom.release.approvals import DecisionStatement, StandingApproval, sign_decision, sign_standing
from cleanroom.release.countersign import entry_problem
from cleanroom.release.ledger import (
    GENESIS,
    LedgerEntry,
    ReleasedFigures,
    SignedEntry,
    against_mirror,
    append_to_store,
    chain_problems,
    read_store,
    reconcile,
    sign_entry,
    write_mirror,
)
from flows.cli import app
from tests.conftest import home

ANA, BO = "ana-lopez", "bo-jensen"


def approver_key(workspace, name):  # type: ignore[no-untyped-def]
    return load_signing_key(workspace.keys_root / "approvers" / f"{name}.signing.pem")


def approvals(workspace, pinned, run_id: str, draft: str) -> list[dict]:  # type: ignore[no-untyped-def]
    statement = DecisionStatement(run_id=run_id, spec_sha256=pinned.sha256, draft_sha256=draft, decision="approve")
    standing = StandingApproval(
        approver=BO,
        collaboration=pinned.spec.collaboration,
        spec_sha256=pinned.sha256,
        expires_on=date.today() + timedelta(days=5),
    )
    return [
        sign_decision(ANA, statement, approver_key(workspace, ANA)).model_dump(mode="json"),
        {"standing": True, **sign_standing(standing, approver_key(workspace, BO)).model_dump(mode="json")},
    ]


def entry(workspace, pinned, index: int, previous: str) -> LedgerEntry:  # type: ignore[no-untyped-def]
    run_id, draft = f"run-{index}", f"{index:x}" * 64
    return LedgerEntry(
        index=index,
        previous_sha256=previous,
        collaboration=pinned.spec.collaboration,
        run_id=run_id,
        spec_sha256=pinned.sha256,
        released_at=f"2026-0{index + 1}-01T00:00:00+00:00",
        draft_sha256=draft[:64],
        report_manifest_sha256="f" * 64,
        figures=[ReleasedFigures(analysis="category-month-sales", released=[0, 2], withheld=1, rule="k >= 10")],
        privacy_budget_spent={},
        approvals=approvals(workspace, pinned, run_id, draft[:64]),
    )


def countersigned(workspace, pinned, unsigned: LedgerEntry) -> SignedEntry:  # type: ignore[no-untyped-def]
    coordinator = load_signing_key(workspace.signing_key_path)
    parties = {
        p.name: sign_entry(unsigned, load_signing_key(home(workspace, p.name) / "keys" / "signing.pem"))
        for p in pinned.spec.data_parties
    }
    return SignedEntry(
        entry=unsigned, coordinator_signature=sign_entry(unsigned, coordinator), countersignatures=parties
    )


@pytest.fixture()
def ledger(small_workspace, small_spec) -> list[SignedEntry]:
    entries: list[SignedEntry] = []
    for index in range(3):
        previous = entries[-1].entry.sha256() if entries else GENESIS
        entries.append(
            countersigned(small_workspace, small_spec, entry(small_workspace, small_spec, index, previous))
        )
    return entries


def test_a_whole_ledger_verifies(ledger, small_spec) -> None:
    assert chain_problems(ledger, small_spec.spec) == []
    assert against_mirror(ledger, [e.entry for e in ledger], "northwind") == []


def test_tampering_reordering_truncation_and_rewrites_are_detected(ledger, small_spec, small_workspace) -> None:
    spec = small_spec.spec
    altered = ledger[1].model_copy(deep=True)
    altered.entry.figures[0].released.append(1)  # one more cell claimed released
    problems = chain_problems([ledger[0], altered, ledger[2]], spec)
    assert any("entry 1" in p and "coordinator's signature does not verify" in p for p in problems)
    assert any("entry 2" in p and "does not chain" in p for p in problems)

    reordered = chain_problems([ledger[0], ledger[2], ledger[1]], spec)
    assert any("entry 2" in p and "found at position 1" in p for p in reordered)

    truncated = ledger[:2]
    assert chain_problems(truncated, spec) == []  # a shorter chain is still a chain ...
    assert against_mirror(truncated, [e.entry for e in ledger], "harbor") == [
        "1 entries missing at the end, which harbor's mirror holds"
    ]  # ... which a member's mirror exposes

    # The coordinator's key alone cannot rewrite history: the nodes' countersignatures no longer fit.
    rewritten = entry(small_workspace, small_spec, 2, ledger[1].entry.sha256()).model_copy(
        update={"run_id": "run-x"}
    )
    forged = ledger[2].model_copy(
        update={
            "entry": rewritten,
            "coordinator_signature": sign_entry(rewritten, load_signing_key(small_workspace.signing_key_path)),
        }
    )
    problems = chain_problems([*ledger[:2], forged], spec)
    assert {p.split(": ")[1] for p in problems} == {
        f"{p.name}'s countersignature does not verify" for p in spec.data_parties
    }
    assert against_mirror([*ledger[:2], forged], [e.entry for e in ledger], "alpine") == [
        "entry 2 differs from alpine's mirror"
    ]


def test_a_node_countersigns_only_an_approved_entry_that_continues_its_mirror(
    ledger, small_spec, small_workspace
) -> None:
    spec, sha = small_spec.spec, small_spec.sha256
    coordinator = load_signing_key(small_workspace.signing_key_path)

    def offered(unsigned: LedgerEntry) -> SignedEntry:
        return SignedEntry(
            entry=unsigned, coordinator_signature=sign_entry(unsigned, coordinator), countersignatures={}
        )

    fresh = entry(small_workspace, small_spec, 3, ledger[2].entry.sha256())
    assert entry_problem(offered(fresh), spec, sha, "run-3", ledger) is None
    assert "another run" in (entry_problem(offered(fresh), spec, sha, "run-4", ledger) or "")
    assert "does not continue" in (entry_problem(offered(fresh), spec, sha, "run-3", ledger[:2]) or "")
    only_ana = fresh.model_copy(update={"approvals": fresh.approvals[:1]})
    assert entry_problem(offered(only_ana), spec, sha, "run-3", ledger) == (
        "the approvals do not satisfy the spec's approval rule"
    )
    other_draft = fresh.model_copy(update={"draft_sha256": "0" * 64})  # approvals were for another draft
    assert "approval by ana-lopez: signed for another draft sha256" in (
        entry_problem(offered(other_draft), spec, sha, "run-3", ledger) or ""
    )
    unsigned = SignedEntry(
        entry=fresh, coordinator_signature=ledger[0].coordinator_signature, countersignatures={}
    )
    assert "coordinator's signature" in (entry_problem(unsigned, spec, sha, "run-3", ledger) or "")
    underreported = fresh.model_copy(update={"privacy_budget_spent": {"category-month-sales": 0.1}})
    assert (
        "the entry records privacy budget {'category-month-sales': 0.1}, but a release of this spec spends none"
        in (entry_problem(offered(underreported), spec, sha, "run-3", ledger) or "")
    )


def test_the_coordinator_restores_a_reset_bucket_and_refuses_a_different_one(
    ledger, small_spec, object_store, tmp_path
) -> None:
    collaboration, mirror = small_spec.spec.collaboration, tmp_path / "mirror"
    bucket = f"ledger-{tmp_path.name[-20:].lower().replace('_', '-')}"
    for signed in ledger:
        write_mirror(mirror, signed)
    append_to_store(object_store, bucket, ledger[0])  # the rest was lost (a store that was reset)
    assert [e.index for e in reconcile(object_store, bucket, collaboration, mirror)] == [0, 1, 2]
    assert [e.entry.sha256() for e in read_store(object_store, bucket, collaboration)] == [
        e.entry.sha256() for e in ledger
    ]
    other = tmp_path / "other"
    write_mirror(other, ledger[0])
    write_mirror(other, ledger[2].model_copy(update={"entry": ledger[2].entry.model_copy(update={"index": 1})}))
    with pytest.raises(StorageError, match="differs from the coordinator's mirror: entry 1 differs"):
        reconcile(object_store, bucket, collaboration, other)


def test_ledger_verify_and_show_on_mirrors(ledger, small_spec, tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("CLEANROOM_S3_ENDPOINT_URL", raising=False)
    good, bad = tmp_path / "good", tmp_path / "bad"
    for signed in ledger:
        write_mirror(good, signed)
        write_mirror(bad, signed)
    tampered = ledger[1].model_copy(deep=True)
    tampered.entry.approvals = tampered.entry.approvals[:1]
    write_mirror(bad, tampered)
    runner, spec = CliRunner(), ["--spec", str(small_spec.path)]
    verified = runner.invoke(app, ["ledger", "verify", *spec, "--mirror", str(good)])
    assert verified.exit_code == 0 and "3 entries: chained, signed and countersigned" in verified.output
    shown = runner.invoke(app, ["ledger", "show", *spec, "--mirror", str(good)])
    assert shown.exit_code == 0 and "run-2" in shown.output and "(standing)" in shown.output
    refused = runner.invoke(app, ["ledger", "verify", *spec, "--mirror", str(bad), "--mirror", str(good)])
    assert (
        refused.exit_code == 2 and "entry 1 differs from" in refused.output and "does not chain" in refused.output
    )
    assert Path(good).is_dir()


def test_a_rebuilt_demo_consortium_starts_its_own_ledger(tmp_path) -> None:
    """`make demo` rebuilds its consortium with new keys when its template changes: the coordinator's
    records signed with the old keys go with them, so the new ledger does not continue the old one."""
    from cleanroom.demo_setup import demo_spec_path, ensure_demo_workspace
    from cleanroom.privacy.budget import budget_folder
    from cleanroom.release.ledger import ledger_mirror
    from cleanroom.release.previous import records_folder
    from cleanroom.settings import Settings
    from cleanroom.spec import load_spec

    settings = Settings(workspace=tmp_path)
    collaboration = load_spec(ensure_demo_workspace(settings, scale=0.005)).collaboration
    old = [
        ledger_mirror(tmp_path, collaboration),
        budget_folder(tmp_path, collaboration),
        records_folder(tmp_path, collaboration),
        settings.standing_approvals_root,
    ]
    for folder in old:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "old.json").write_text("{}")
    old_key = settings.signing_key_path.read_bytes()
    spec_path = demo_spec_path(settings)
    spec_path.write_text(spec_path.read_text().replace("# template sha256:", "# template sha256: older"))
    ensure_demo_workspace(settings, scale=0.005)
    assert settings.signing_key_path.read_bytes() != old_key  # a new consortium
    assert not any((folder / "old.json").exists() for folder in old)
