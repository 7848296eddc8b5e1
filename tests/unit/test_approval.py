"""Nothing is released without approval: signed decisions resume a really paused flow run (Prefect
server in its own process); forged or unsigned input is ignored; a rejection or the timeout ends the
run unreleased; standing approvals count only for their spec version and until they expire."""

from __future__ import annotations

import base64
import contextvars
import json
import re
import threading
import time
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prefect import flow, runtime
from typer.testing import CliRunner

from cleanroom.crypto.keys import load_signing_key
from cleanroom.errors import ReleaseRefused
from cleanroom.release.approvals import (
    Decision,
    DecisionStatement,
    SignedDecision,
    StandingApproval,
    Verdict,
    decision_problem,
    sign_decision,
    sign_standing,
    verdict,
)
from cleanroom.release.drafts import OUTCOME, Draft, keep_draft
from cleanroom.release.rerun import Rerun, RerunRequested, adjusted, adjustment_problems, combined, with_reruns
from cleanroom.report.content import build_report
from cleanroom.report.publish import seal_report
from cleanroom.settings import Settings
from cleanroom.spec import AnalysisKind
from cleanroom.spec.approval import Adjustments, ApprovalPolicy, ApprovalRule, ApprovalScope, RerunBounds
from flows.approval_client import resume_with, signed_decision
from flows.cli import app
from tasks import review
from tasks.reporting import DraftedReport
from tests.unit.test_report_sealing import _revealed

pytestmark = pytest.mark.slow
ANA, BO = "ana-lopez", "bo-jensen"


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.consortium import PrefectServer, _send_pending_logs

    server = PrefectServer(tmp_path_factory.mktemp("prefect")).start()
    try:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server.api_url
            _send_pending_logs()  # while the server is still there to take them
    finally:
        server.stop()


def key(workspace: Settings, approver: str):  # type: ignore[no-untyped-def]
    return load_signing_key(workspace.keys_root / "approvers" / f"{approver}.signing.pem")


class Gate:
    """One paused run of the real approval step: the flow drafts a report sealed to the approvers and
    waits; `decide` plays approvers from another thread; `finish` returns what the flow returned."""

    def __init__(self, pinned: Any, workspace: Path, keys: Settings, minutes: float = 1.5) -> None:
        # A test that fails to decide ends in minutes, not in the spec's default of days.
        policy = pinned.spec.approval.model_copy(update={"timeout_minutes": minutes})
        self.pinned = replace(pinned, spec=pinned.spec.model_copy(update={"approval": policy}))
        self.keys = keys
        self.errors: list[BaseException] = []
        self.settings = Settings(workspace=workspace)
        self.run_id = f"run-{workspace.name}"
        self.flow_run_id: str | None = None
        self.draft: Draft | None = None
        self.ready = threading.Event()

    def run(self) -> list[str]:
        gate = self

        @flow(name="approval-gate", persist_result=False, validate_parameters=False)
        def approval_gate() -> list[str]:
            spec = gate.pinned.spec
            analysis = spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
            report = build_report(spec, analysis, gate.pinned.sha256, gate.run_id, _revealed(analysis.cells), {})
            gate.flow_run_id = str(runtime.flow_run.id)
            metadata = {"stage": "draft", "flow_run_id": gate.flow_run_id}
            gate.draft = Draft(
                seal_report(report, spec, load_signing_key(gate.keys.signing_key_path), None, metadata)
            )
            keep_draft(gate.draft, gate.settings.drafts_root)
            gate.ready.set()
            context = SimpleNamespace(pinned=gate.pinned, settings=gate.settings, run_id=gate.run_id)
            release = review.await_approval(context, DraftedReport(report, gate.draft, {}))  # type: ignore[arg-type]
            return [a["approver"] for a in release.approvals]

        return approval_gate()

    def statement(self, decision: Decision, comment: str = "") -> DecisionStatement:
        assert self.draft is not None
        return DecisionStatement(
            run_id=self.run_id,
            spec_sha256=self.pinned.sha256,
            draft_sha256=self.draft.sha256,
            decision=decision,
            comment=comment,
        )

    @property
    def outcome(self) -> dict:
        return json.loads((self.settings.drafts_root / self.run_id / OUTCOME).read_text())


def play(gate: Gate, *moves: Any) -> threading.Thread:
    """Run each move (a callable) in another thread once the flow is paused; Prefect's settings (the
    server's URL) go with it."""

    def approvers() -> None:
        try:
            assert gate.ready.wait(120)
            for move in moves:
                move()
        except BaseException as exc:  # the test asserts there were none
            gate.errors.append(exc)

    thread = threading.Thread(target=contextvars.copy_context().run, args=(approvers,), daemon=True)
    thread.start()
    return thread


def signed_by(gate: Gate, approver: str, decision: Decision, comment: str = "", key_of: str | None = None):  # type: ignore[no-untyped-def]
    return lambda: resume_with(
        gate.flow_run_id or "",
        sign_decision(approver, gate.statement(decision, comment), key(gate.keys, key_of or approver)),
    )


def test_released_only_when_every_approver_signed_forged_input_ignored(
    prefect_api, small_spec, small_workspace, tmp_path, monkeypatch
) -> None:
    gate = Gate(small_spec, tmp_path / "all", small_workspace)
    forged = signed_by(gate, ANA, Decision.APPROVE, key_of=BO)  # Bo signs in Ana's name

    def unsigned() -> None:  # the form filled in by hand, with no real signature
        statement = gate.statement(Decision.APPROVE).model_dump()
        resume_with(
            gate.flow_run_id or "", SignedDecision(**statement, approver=ANA, signed_at="now", signature="AAAA")
        )

    def ana_with_the_cli() -> None:  # `cleanroom approve` finds the draft, signs and resumes
        monkeypatch.setenv("CLEANROOM_WORKSPACE", str(gate.settings.workspace))
        identity = small_workspace.keys_root / "approvers" / f"{ANA}.signing.pem"
        result = CliRunner().invoke(
            app, ["approve", "--run", gate.run_id, "--spec", str(small_spec.path), "--identity", str(identity)]
        )
        assert result.exit_code == 0, result.output
        assert f"approve of draft {gate.draft.sha256[:16]} by {ANA} sent" in result.output  # type: ignore[union-attr]

    thread = play(gate, forged, unsigned, ana_with_the_cli, signed_by(gate, BO, Decision.APPROVE))
    assert gate.run() == [ANA, BO]
    thread.join(30)
    assert not gate.errors
    outcome = gate.outcome
    assert outcome["outcome"] == "approved" and [a["approver"] for a in outcome["approvals"]] == [ANA, BO]


def test_a_signed_rejection_releases_nothing(prefect_api, small_spec, small_workspace, tmp_path) -> None:
    gate = Gate(small_spec, tmp_path / "rejected", small_workspace)
    play(gate, signed_by(gate, BO, Decision.APPROVE), signed_by(gate, ANA, Decision.REJECT, "apparel looks off"))
    with pytest.raises(ReleaseRefused, match=r"not released: rejected by ana-lopez \(apparel looks off\)"):
        gate.run()
    assert gate.outcome["outcome"] == "not released" and "rejected by ana-lopez" in gate.outcome["reason"]
    assert not (gate.settings.archive_root).exists()  # nothing archived for publication
    # What the Prefect UI showed the approvers: the hashes, counts and commands, never a market figure.
    markdown = _artifact(f"approval-{gate.run_id.lower()}")
    assert gate.draft.sha256 in markdown and "trend cells shown / withheld by disclosure control: " in markdown  # type: ignore[union-attr]
    assert "differential-privacy budget spent: none: this spec adds no noise" in markdown
    assert not re.search(r"\d,\d{3}|€|EUR", markdown)  # the draft's sales (e.g. 1,001.37) stay sealed


def _artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    assert found, f"no artifact {key}"
    return str(found[0].data)


def test_no_decision_in_time_releases_nothing(prefect_api, small_spec, small_workspace, tmp_path) -> None:
    gate = Gate(small_spec, tmp_path / "late", small_workspace, minutes=0.1)
    started = time.monotonic()
    with pytest.raises(ReleaseRefused, match=r"no decision within 0.1 minutes"):
        gate.run()
    assert time.monotonic() - started < 60
    assert gate.outcome["outcome"] == "not released"


def test_standing_approvals_count_for_their_spec_until_they_expire(
    prefect_api, small_spec, small_workspace, tmp_path
) -> None:
    gate = Gate(small_spec, tmp_path / "standing", small_workspace)
    folder = gate.settings.standing_approvals_root
    folder.mkdir(parents=True)

    def standing(approver: str, expires_on: date, sha: str = small_spec.sha256) -> StandingApproval:
        approval = StandingApproval(
            approver=approver, collaboration=small_spec.spec.collaboration, spec_sha256=sha, expires_on=expires_on
        )
        return sign_standing(approval, key(small_workspace, approver))

    (folder / "ana.json").write_text(standing(ANA, date.today() + timedelta(days=30)).model_dump_json())
    (folder / "bo-expired.json").write_text(standing(BO, date.today() - timedelta(days=1)).model_dump_json())
    (folder / "bo-other.json").write_text(
        standing(BO, date.today() + timedelta(days=30), "0" * 64).model_dump_json()
    )
    (folder / "junk.json").write_text("{}")
    play(gate, signed_by(gate, BO, Decision.APPROVE))  # the only decision a person had to make
    assert gate.run() == [ANA, BO]
    assert [a.get("standing", False) for a in gate.outcome["approvals"]] == [True, False]

    (folder / "bo.json").write_text(standing(BO, date.today() + timedelta(days=30)).model_dump_json())
    unattended = Gate(small_spec, tmp_path / "standing", small_workspace)
    unattended.run_id = "run-unattended"
    assert unattended.run() == [ANA, BO]  # released without pausing


def test_decisions_bind_run_spec_draft_and_key(small_spec, small_workspace) -> None:
    spec = small_spec.spec
    expected = DecisionStatement(
        run_id="r1", spec_sha256=small_spec.sha256, draft_sha256="d" * 64, decision="approve"
    )
    good = sign_decision(ANA, expected, key(small_workspace, ANA))
    assert decision_problem(good, spec, expected) is None
    for field, value in (("run_id", "r2"), ("draft_sha256", "e" * 64), ("spec_sha256", "0" * 64)):
        other = sign_decision(ANA, expected.model_copy(update={field: value}), key(small_workspace, ANA))
        assert decision_problem(other, spec, expected) == f"signed for another {field.replace('_', ' ')}"
    flipped = good.model_copy(update={"decision": Decision.REJECT})  # the signature covers the decision
    assert "does not verify" in (decision_problem(flipped, spec, expected) or "")
    assert "not an approver" in (
        decision_problem(good.model_copy(update={"approver": "eve"}), spec, expected) or ""
    )
    junk = good.model_copy(update={"signature": base64.b64encode(b"x").decode()})
    assert "does not verify" in (decision_problem(junk, spec, expected) or "")


@pytest.mark.parametrize(
    ("policy", "approved", "state"),
    [
        (ApprovalPolicy(), {ANA}, Verdict.WAITING),
        (ApprovalPolicy(), {ANA, BO}, Verdict.APPROVED),
        (ApprovalPolicy(rule=ApprovalRule.QUORUM, quorum=1), {BO}, Verdict.APPROVED),
        (ApprovalPolicy(rule=ApprovalRule.QUORUM, quorum=2), {BO}, Verdict.WAITING),
        (
            ApprovalPolicy(scope=ApprovalScope.PER_PARTY, rule=ApprovalRule.QUORUM, quorum=1),
            {ANA},
            Verdict.WAITING,
        ),
        (
            ApprovalPolicy(scope=ApprovalScope.PER_PARTY, rule=ApprovalRule.QUORUM, quorum=1),
            {ANA, BO},
            Verdict.APPROVED,
        ),
    ],
)
def test_the_rule(small_spec, policy, approved, state) -> None:
    spec = small_spec.spec.model_copy(update={"approval": policy})
    assert verdict(spec, approved, None) is state


def test_cli_signs_a_decision_for_the_form_without_a_server(
    small_spec, small_workspace, tmp_path, monkeypatch
) -> None:
    settings = Settings(workspace=tmp_path)
    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    report = build_report(small_spec.spec, analysis, small_spec.sha256, "run-9", _revealed(analysis.cells), {})
    draft = Draft(seal_report(report, small_spec.spec, load_signing_key(small_workspace.signing_key_path)))
    keep_draft(draft, settings.drafts_root)
    identity = small_workspace.keys_root / "approvers" / f"{BO}.signing.pem"
    signed, _ = signed_decision(small_spec, "run-9", identity, Decision.REJECT, "too early", settings)
    assert signed.approver == BO and signed.draft_sha256 == draft.sha256
    monkeypatch.setenv("CLEANROOM_WORKSPACE", str(tmp_path))
    printed = CliRunner().invoke(
        app,
        [
            "approve",
            "--run",
            "run-9",
            "--spec",
            str(small_spec.path),
            "--identity",
            str(identity),
            "--reject",
            "--print",
        ],
    )
    assert printed.exit_code == 0 and "decision: reject" in printed.output and "signature: " in printed.output
    stranger = tmp_path / "stranger.pem"
    from cleanroom.crypto.keys import new_signing_key

    new_signing_key(stranger)
    refused = CliRunner().invoke(
        app, ["approve", "--run", "run-9", "--spec", str(small_spec.path), "--identity", str(stranger)]
    )
    assert refused.exit_code == 2 and "belongs to none of the spec's approvers" in refused.output
    missing = CliRunner().invoke(
        app, ["approve", "--run", "run-8", "--spec", str(small_spec.path), "--identity", str(identity)]
    )
    assert missing.exit_code == 2 and "no draft of run run-8" in missing.output


def test_a_signed_rerun_request_within_bounds_ends_the_run_with_its_adjustments(
    prefect_api, small_spec, small_workspace, tmp_path, monkeypatch
) -> None:
    """Phase 5.2: one out of the spec's bounds is ignored (the run keeps waiting); one within them, made
    with the CLI, ends this run unreleased and hands the lifecycle the stricter parameters."""
    bounds = small_spec.spec.approval.rerun_bounds
    assert bounds.min_group_size_up_to == 25 and bounds.max_share_percent_down_to == 60  # the demo's
    gate = Gate(small_spec, tmp_path / "rerun", small_workspace)

    def too_loose() -> None:  # k below the spec's: a re-run may only tighten
        statement = gate.statement(Decision.RERUN).model_copy(
            update={"adjustments": Adjustments(min_group_size=5)}
        )
        resume_with(gate.flow_run_id or "", sign_decision(BO, statement, key(small_workspace, BO)))

    def ana_with_the_cli() -> None:
        monkeypatch.setenv("CLEANROOM_WORKSPACE", str(gate.settings.workspace))
        identity = small_workspace.keys_root / "approvers" / f"{ANA}.signing.pem"
        command = ["approve", "--run", gate.run_id, "--spec", str(small_spec.path), "--identity", str(identity)]
        refused = CliRunner().invoke(app, [*command, "--rerun", "--min-group-size", "40"])
        assert refused.exit_code == 2 and "min_group_size: 40 is outside 10..25" in refused.output
        sent = CliRunner().invoke(
            app, [*command, "--rerun", "--min-group-size", "15", "--max-share-percent", "70", "--comment", "thin"]
        )
        assert sent.exit_code == 0, sent.output

    thread = play(gate, too_loose, ana_with_the_cli)
    with pytest.raises(RerunRequested) as requested:
        gate.run()
    thread.join(30)
    assert not gate.errors
    rerun = requested.value.rerun
    assert (rerun.requested_by, rerun.comment, rerun.previous_run) == (ANA, "thin", gate.run_id)
    assert rerun.adjustments == Adjustments(min_group_size=15, max_share_percent=70)
    assert rerun.changes == ["minimum group size 10 -> 15", "largest retailer share 80% -> 70%"]
    assert gate.outcome["outcome"] == "re-run requested"


def test_a_rerun_applies_its_adjustments_to_the_runs_copy_of_the_spec(small_spec) -> None:
    spec = small_spec.spec
    first = Rerun("run-1", ANA, Adjustments(min_group_size=15), ["..."])
    stricter = adjusted(spec, first.adjustments)
    assert stricter.privacy.min_group_size == 15 and stricter.privacy.dominance == spec.privacy.dominance
    assert spec.privacy.min_group_size == 10  # the signed spec is untouched
    # A re-run of the re-run keeps what it does not tighten further; the changes read against the spec.
    second = combined(first, Rerun("run-2", BO, Adjustments(max_share_percent=60), []), spec)
    assert second.adjustments == Adjustments(min_group_size=15, max_share_percent=60)
    assert second.changes == ["minimum group size 10 -> 15", "largest retailer share 80% -> 60%"]
    assert adjustment_problems(spec, Adjustments()) == [
        "nothing to adjust: give min_group_size and/or max_share_percent"
    ]
    assert adjustment_problems(spec, Adjustments(max_share_percent=65.25)) == [
        "max_share_percent: 65.25 is outside 60..80 (in steps of 0.1)"
    ]
    closed = spec.model_copy(update={"approval": spec.approval.model_copy(update={"rerun_bounds": RerunBounds()})})
    assert "the spec allows no change" in adjustment_problems(closed, Adjustments(min_group_size=12))[0]
    # The signature covers the adjustments; a decision without them signs the same bytes as before.
    statement = DecisionStatement(run_id="r", spec_sha256="s", draft_sha256="d", decision="approve")
    assert b"adjustments" not in statement.message()
    rerun = statement.model_copy(
        update={"decision": Decision.RERUN, "adjustments": Adjustments(min_group_size=12)}
    )
    assert b'"min_group_size": 12' in rerun.message()


def test_the_rerun_report_says_what_it_repeats_and_why(small_spec) -> None:
    from cleanroom.report.html import summary_lines

    spec = small_spec.spec
    rerun = combined(None, Rerun("run-1", ANA, Adjustments(min_group_size=15), [], "thin cells"), spec)
    stricter = adjusted(spec, rerun.adjustments)
    trend = stricter.category_month_sales
    report = build_report(stricter, trend, small_spec.sha256, "run-2", _revealed(trend.cells), {}, rerun=rerun)
    assert summary_lines(report)[0] == (
        'This is a re-run of run run-1, requested by ana-lopez ("thin cells") with stricter disclosure control '
        "than the spec's: minimum group size 10 -> 15. Nothing of the earlier run was released."
    )
    assert report.min_group_size == 15 and "a cell needs >= 15 customers" in report.disclosure_rule


def test_the_lifecycle_reruns_with_the_combined_adjustments_up_to_the_spec_limit(small_spec) -> None:
    """The loop the lifecycle runs its attempts in: each request starts the next run at once, on a copy
    of the spec with every adjustment so far; a request past max_reruns ends it unreleased."""
    requests = [
        Rerun("run-a", ANA, Adjustments(min_group_size=15), []),
        Rerun("run-b", BO, Adjustments(max_share_percent=60), []),
    ]
    seen: list[tuple[int, float, str | None]] = []

    def attempt(pinned, rerun):  # type: ignore[no-untyped-def]
        privacy = pinned.spec.privacy
        seen.append((privacy.min_group_size, privacy.dominance.max_share_percent, rerun and rerun.requested_by))
        assert pinned.sha256 == small_spec.sha256  # the hash every party signed stays
        if len(seen) <= len(requests):
            raise RerunRequested(requests[len(seen) - 1])
        return "released"

    logged: list[str] = []
    assert with_reruns(small_spec, attempt, logged.append) == "released"
    assert seen == [(10, 80, None), (15, 80, ANA), (15, 60, BO)]
    assert logged[1] == "re-running run-b: minimum group size 10 -> 15; largest retailer share 80% -> 60%"
    once = small_spec.spec.approval.model_copy(
        update={"rerun_bounds": small_spec.spec.approval.rerun_bounds.model_copy(update={"max_reruns": 1})}
    )
    strict = replace(small_spec, spec=small_spec.spec.model_copy(update={"approval": once}))
    seen.clear()
    with pytest.raises(ReleaseRefused, match=r"the spec allows 1 re-run\(s\) of one run"):
        with_reruns(strict, attempt, logged.append)
    assert len(seen) == 2


def test_a_decision_sent_while_the_run_is_still_pausing_is_sent_again(
    prefect_api, small_spec, small_workspace, tmp_path, monkeypatch
) -> None:
    import prefect.flow_runs

    real = prefect.flow_runs.resume_flow_run
    refused: list[str] = []

    def pausing_then_real(flow_run_id, run_input=None):  # type: ignore[no-untyped-def]
        if not refused:  # what the server answers between the paused state and the saved form
            refused.append(str(flow_run_id))
            raise RuntimeError("Cannot resume this run: Run input schema not found.")
        return real(flow_run_id, run_input=run_input)

    monkeypatch.setattr(prefect.flow_runs, "resume_flow_run", pausing_then_real)
    gate = Gate(small_spec, tmp_path / "pausing", small_workspace)
    thread = play(gate, signed_by(gate, ANA, Decision.APPROVE), signed_by(gate, BO, Decision.APPROVE))
    assert gate.run() == [ANA, BO]
    thread.join(30)
    assert not gate.errors and refused == [gate.flow_run_id]  # Ana's decision was refused once, then arrived
