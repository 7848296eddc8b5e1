"""The whole lifecycle on a consortium of separate hosts (network namespaces), each node under its own
Unix user, the coordinator under another: results equal plaintext exactly; what crosses the network
is TLS and sealed messages only; runs at the same time give the solo result; a node that dies fails
the run at once, naming it; a node refuses a spec its party did not sign."""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from cleanroom.analyses.category_month_sales import GRID_FILE
from cleanroom.party.versions import current_version
from cleanroom.release.ledger import chain_problems, ledger_mirror, read_mirror
from cleanroom.settings import Settings
from cleanroom.spec import pin_spec
from cleanroom.spec.kinds import AnalysisKind
from tests.e2e.conftest import (
    COORDINATOR_SILENCE,
    COORDINATOR_USER,
    PLAYER_PORT,
    Consortium,
    players_running,
    report_of,
    standing_approvals,
)
from tests.e2e.hosts import Capture, own_privately, run_on
from tests.plaintext_oracle import disclosed, plaintext_disclosure, plaintext_segments
from tests.unit.test_psi import plaintext_overlap

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM"
SOLO: dict[str, object] = {}  # the solo run's report, for the comparisons below


def figures(report) -> dict:  # type: ignore[no-untyped-def]
    """Everything a run reveals that must not depend on what else ran at the same time."""
    return {
        "category_month": report.category_month.sales_cents,
        "category_units": report.category_month.units,
        "sections": [section.model_dump() for section in report.sections],  # segments, lift, baskets
        "overlap": [(tuple(r.parties), r.customers) for r in report.overlap],
        "shared_sales": report.shared_sales.model_dump(exclude={"seconds"}) if report.shared_sales else None,
    }


def test_lifecycle_across_hosts_equals_plaintext_and_sends_no_plaintext(
    consortium: Consortium, small_spec
) -> None:
    spec = small_spec.spec
    bridge = consortium.network.bridge
    # Whole packets to and from the Prefect server and the object store (plain HTTP here); the
    # players' and the secure client's traffic cut to its first bytes (a gRPC connection in the clear
    # would show the HTTP/2 preface there; its tensors are binary, not text to search for).
    services = Capture(bridge, consortium.root / "services.pcap", "tcp port 4200 or tcp port 5000")
    players = Capture(bridge, consortium.root / "players.pcap", f"tcp port {PLAYER_PORT}", snap=160)
    with services, players:
        outcome = consortium.run()
    assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-3000:]
    report, archive = report_of(consortium, outcome.stdout)
    SOLO["report"] = report
    assert report.first_release and report.previous_release is None  # a fresh consortium's ledger is empty

    # Revealed totals equal plaintext (exact, integer cents) under k and the dominance rule.
    raw = [consortium.node_folder(p) / "raw" for p in consortium.parties]
    privacy, analysis = spec.privacy, spec.category_month_sales
    rule = privacy.dominance
    sales, shown = plaintext_disclosure(
        raw, analysis, privacy.min_group_size, rule.min_contributors, rule.max_share_percent
    )
    revealed = [s if ok else None for s, ok in zip(sales, shown)]  # sales cells, then units sold
    trend = report.category_month
    assert [v for row in trend.sales_cents for v in row] == revealed[: analysis.grid_cells]
    assert trend.units is not None and [v for row in trend.units for v in row] == revealed[analysis.grid_cells :]
    assert 0 < report.headline.cells_suppressed < len(shown)
    expected_segments = disclosed(
        [plaintext_segments(r, spec.customer_segments) for r in raw],
        privacy.min_group_size,
        rule.min_contributors,
        rule.max_share_percent,
    )
    segments = report.section(AnalysisKind.CUSTOMER_SEGMENTS)
    assert [c for by_f in segments.customers for by_m in by_f for c in by_m] == expected_segments
    keys = {
        p: pl.read_parquet(current_version(consortium.node_folder(p)) / "join_keys.parquet")
        for p in consortium.parties
    }
    display = {spec.party(p).display_name: p for p in consortium.parties}
    for row in report.overlap:
        expected = plaintext_overlap(keys, tuple(display[p] for p in row.parties))
        assert row.customers == (expected if expected >= privacy.min_group_size else None), row
    assert report.shared_sales is not None and report.shared_sales.shown
    assert all(report.verification.values()) and report.recommender is not None
    assert all(report.recommender.delivered.values()) and set(report.recommender.recall) == set(display)
    # The scalable recommender ran its search through the players: every candidate scored, one chosen.
    recommender = report.recommender
    assert recommender.mode == "scalable" and 0 < (recommender.items_modelled or 0) <= recommender.items
    assert len(recommender.search) == 4 and sum(t.chosen for t in recommender.search) == 1
    assert all(0 < t.recall < 1 for t in recommender.search)
    assert {s.party for s in report.signatures} == set(display) and report.notice is None

    # Each party's outputs exist only in its own run folder; the player's inputs are gone.
    run_id = archive.name
    for party in consortium.parties:
        run = consortium.node_folder(party) / "runs" / run_id
        assert (run / "reports" / "market_share.json").exists() and (
            run / "reports" / "recommendations.parquet"
        ).exists()
        assert (run / "outputs" / "user_factors.npy").exists() and not (run / "player").exists()
    assert not list(consortium.coordinator_workspace.rglob("user_factors*"))

    # On the wire: TLS between players, sealed messages through the store; no gRPC in the clear, no
    # party's emails, names or per-party figures.
    between_players, messages = players.payload(), services.payload()
    assert len(between_players) > 100_000 and len(messages) > 100_000, "the captures must have seen the run"
    assert HTTP2_PREFACE not in between_players and HTTP2_PREFACE not in messages
    leaks = _secrets_of(consortium, run_id)
    assert len(leaks) > 100 and not [s for s in leaks if s in messages]

    # Nobody keeps serving; the run's exchange is gone; Prefect holds no identifier or figure.
    assert players_running() == []
    assert not [k for k in _store_keys(consortium) if k.startswith(f"{spec.exchange.prefix}/{run_id}/")]
    logs = "\n".join(asyncio.run(_log_messages(consortium.api_url)))
    assert logs and not [s for s in leaks if s.decode() in logs]

    # The coordinator (its own user) cannot even list a party's workspace.
    listing = run_on(
        consortium.network,
        "coordinator",
        ["ls", str(consortium.node_folder("harbor"))],
        consortium.environment(),
        COORDINATOR_USER,
    )
    assert listing.returncode != 0 and "Permission denied" in listing.stderr


def test_two_runs_at_once_each_equal_the_solo_run(consortium: Consortium) -> None:
    assert "report" in SOLO, "runs after the solo lifecycle test"
    outcomes: list = [None, None]

    def run(index: int) -> None:
        outcomes[index] = consortium.run()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(2)  # distinct run ids, overlapping runs
    for thread in threads:
        thread.join()
    solo = figures(SOLO["report"])
    for outcome in outcomes:
        assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-3000:]
        report, _ = report_of(consortium, outcome.stdout)
        assert figures(report) == solo
        # Each compares with the release before it (the solo run's, or the other one's): same data, same figures.
        previous = report.previous_release
        assert previous is not None and previous.figures is not None and previous.same_spec
        changes = {row.name: row.change for row in report.compared()}
        assert changes["Market sales (revealed cells)"] == "unchanged" and set(changes.values()) <= {
            "unchanged",
            "not comparable",
        }
    # Three releases so far (the solo run, then these two at once): three ledger entries, chained in
    # the order they were appended, signed, countersigned by every node, and the same in every mirror.
    spec = pin_spec(consortium.spec_path).spec
    ledger = read_mirror(ledger_mirror(consortium.coordinator_workspace, spec.collaboration))
    assert [e.index for e in ledger] == [0, 1, 2] and chain_problems(ledger, spec) == []
    assert {e.entry.run_id for e in ledger[1:]} == {report_of(consortium, o.stdout)[1].name for o in outcomes}
    for party in consortium.parties:
        mirror = read_mirror(ledger_mirror(consortium.node_folder(party), spec.collaboration))
        assert [e.entry.sha256() for e in mirror] == [e.entry.sha256() for e in ledger]


def test_a_node_that_dies_fails_the_run_naming_it_and_a_rerun_succeeds(consortium: Consortium) -> None:
    outcome: list = [None]
    thread = threading.Thread(target=lambda: outcome.__setitem__(0, consortium.run()))
    thread.start()
    deadline = time.monotonic() + 300
    while not any(" harbor " in f" {p} " for p in players_running()):  # harbor's player serves
        assert time.monotonic() < deadline and thread.is_alive(), "the run never reached the secure phase"
        time.sleep(0.5)
    killed_at = time.monotonic()
    consortium.nodes["harbor"].kill(signal.SIGKILL)
    thread.join(timeout=300)
    failed = outcome[0]
    assert failed is not None and failed.returncode == 2, failed.stdout[-2000:] if failed else "still running"
    assert time.monotonic() - killed_at < 120
    message = failed.stderr + failed.stdout
    assert "party harbor" in message and "Traceback" not in failed.stderr.split("error:")[-1]
    assert "Local archive" not in failed.stdout  # nothing was released
    deadline = time.monotonic() + 90
    while players_running():  # every other node's player returns to idle
        assert time.monotonic() < deadline, players_running()
        time.sleep(1)
    consortium.start_node("harbor")
    consortium.wait_online()
    rerun = consortium.run()
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert figures(report_of(consortium, rerun.stdout)[0]) == figures(SOLO["report"])


def test_players_stop_when_the_coordinator_dies(consortium: Consortium) -> None:
    coordinator = consortium.start_run()
    deadline = time.monotonic() + 300
    while len(players_running()) < len(consortium.parties):  # every player serves
        assert time.monotonic() < deadline and coordinator.process.poll() is None, "no secure phase"
        time.sleep(0.5)
    coordinator.kill(signal.SIGKILL)  # no release, no closing message: only its heartbeats stop
    killed_at = time.monotonic()
    while players_running():
        assert time.monotonic() - killed_at < COORDINATOR_SILENCE + 40, players_running()
        time.sleep(1)
    assert all(node.process.poll() is None for node in consortium.nodes.values())  # the nodes themselves go on


def test_a_node_refuses_a_spec_its_party_did_not_sign(consortium: Consortium) -> None:
    from cleanroom.spec import pin_spec

    raw = yaml.safe_load(consortium.spec_path.read_text())
    raw["version"] += 1
    changed = consortium.coordinator_workspace / "consortium-v2.yaml"
    changed.write_text(yaml.safe_dump(raw, sort_keys=False))
    pinned = pin_spec(changed)
    _sign_on_nodes(consortium, changed, [p for p in consortium.parties if p != "harbor"])
    refused = consortium.run(spec=changed, timeout=120)
    assert refused.returncode == 2
    assert f"not signed by harbor (spec sha256 {pinned.sha256[:16]})" in refused.stderr.replace("\n", " ")
    # The node itself refuses too, whoever asks it (here: straight through the Prefect API).
    state = _run_session(consortium, "harbor", pinned.sha256)
    assert f"party harbor has not signed spec {pinned.sha256[:16]}" in state.message and state.is_failed()


def _sign_on_nodes(consortium: Consortium, spec_path: Path, parties: list[str]) -> None:
    """Each party reviews and signs the spec on its own host, as its own user."""
    for party in parties:
        config = consortium.node_folder(party) / "node.yaml"
        command = [sys.executable, "-m", "flows.cli", "spec", "sign", "--party", party, "--spec", str(spec_path)]
        environment = consortium.environment(HOME=str(consortium.node_folder(party)))
        signed = run_on(consortium.network, party, [*command, "--config", str(config)], environment, f"cr-{party}")
        assert signed.returncode == 0 and "signature published" in signed.stdout, signed.stdout + signed.stderr


def test_noise_is_added_inside_mpc_and_the_budget_refuses_the_next_run(
    consortium: Consortium, small_workspace: Settings
) -> None:
    """A spec whose trend carries differential-privacy noise, with a monthly budget of one run: the first
    run releases noisy figures (close to the clipped sums every party's grid adds up to, never equal to
    all of them), the ledger records its rho, and the next run is refused before anything is computed."""
    raw = yaml.safe_load(consortium.spec_path.read_text())
    raw["version"] += 10
    trend = next(a for a in raw["analyses"] if a["kind"] == "category_month_sales")
    trend["noise"] = {"rho": 2, "clip": {"sales_cents": 50_000, "units": 50}}
    raw["privacy"]["budget"] = {"period": "month", "rho_per_period": 2, "lifetime_rho": 10}
    noised = consortium.coordinator_workspace / "consortium-dp.yaml"
    noised.write_text(yaml.safe_dump(raw, sort_keys=False))
    pinned = pin_spec(noised)
    _sign_on_nodes(consortium, noised, consortium.parties)
    standing_approvals(small_workspace, noised, consortium.coordinator_workspace)
    own_privately(Settings(workspace=consortium.coordinator_workspace).standing_approvals_root, COORDINATOR_USER)

    first = consortium.run(spec=noised)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    report, archive = report_of(consortium, first.stdout, noised)
    analysis = pinned.spec.category_month_sales
    clipped = sum(
        np.frombuffer((current_version(consortium.node_folder(p)) / GRID_FILE).read_bytes(), dtype="<i8").reshape(
            2, analysis.cells
        )[0]
        for p in consortium.parties
    )
    released = [v for row in report.category_month.sales_cents for v in row]
    shown = [(v, int(c)) for v, c in zip(released, clipped[: analysis.grid_cells]) if v is not None]
    sd = next(m.released_sd for m in report.privacy.measures if m.measure == "sales_cents")
    assert shown and all(abs(v - c) <= 6 * sd for v, c in shown)
    assert sum(v != c for v, c in shown) >= len(shown) - 1  # a draw of exactly 0 is possible, twice is not
    assert report.privacy.run_rho == pytest.approx(2, rel=1e-6) and report.category_month.interval_95
    entry = read_mirror(ledger_mirror(consortium.coordinator_workspace, pinned.spec.collaboration))[-1].entry
    assert entry.run_id == archive.name and entry.privacy_budget_spent == {analysis.id: pytest.approx(2, rel=1e-6)}

    second = consortium.run(spec=noised, timeout=300)
    assert second.returncode == 2, second.stdout[-3000:] + second.stderr[-3000:]
    said = " ".join(second.stderr.split())
    assert "this run needs privacy budget rho 2; 0 left in period" in said and "resets" in said
    assert "Traceback" not in second.stderr
    after = read_mirror(ledger_mirror(consortium.coordinator_workspace, pinned.spec.collaboration))
    assert after[-1].entry.run_id == archive.name  # nothing was released


def test_without_tls_the_same_capture_shows_grpc(consortium: Consortium) -> None:
    """The development flag switches TLS off on every node and the coordinator: the check above can fail."""
    consortium.restart_nodes(CLEANROOM_DEV_PLAINTEXT_PLAYERS="1")
    try:
        capture = Capture(
            consortium.network.bridge, consortium.root / "plain.pcap", f"tcp port {PLAYER_PORT}", snap=160
        )
        with capture:
            outcome = consortium.run(CLEANROOM_DEV_PLAINTEXT_PLAYERS="1")
        assert outcome.returncode == 0, outcome.stdout[-3000:] + outcome.stderr[-3000:]
        report, _ = report_of(consortium, outcome.stdout)
        assert report.notice and "plaintext gRPC" in report.notice
        assert HTTP2_PREFACE in capture.payload()
    finally:
        consortium.restart_nodes()


def _secrets_of(consortium: Consortium, run_id: str) -> list[bytes]:
    """Emails, names and phone numbers of every party's customers, and each party's own per-cell
    sales (as the decimal strings a leak would carry), long enough not to occur by chance."""
    found: list[bytes] = []
    for party in consortium.parties:
        folder = consortium.node_folder(party)
        customers = next((folder / "raw").glob("kunden.csv"), folder / "raw" / "customers.csv")
        text = customers.read_text(encoding="utf-8").splitlines()[1:40]
        found += [field.encode() for line in text for field in line.split(",") if "@" in field or len(field) > 12]
        grid = np.frombuffer((current_version(folder) / "category_month.i64").read_bytes(), "<i8").reshape(2, -1)
        found += [str(v).encode() for v in grid[0] if v >= 1_000_000]
    return [s for s in found if len(s) >= 7]


def _store_keys(consortium: Consortium) -> list[str]:
    import boto3

    from cleanroom.settings import Settings

    settings = Settings()
    client = boto3.client(
        "s3",
        endpoint_url=consortium.s3_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.aws_access_key_id.get_secret_value(),
        aws_secret_access_key=settings.aws_secret_access_key.get_secret_value(),
    )
    keys = []
    for bucket in client.list_buckets()["Buckets"]:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            keys += [item["Key"] for item in page.get("Contents", [])]
    return keys


async def _log_messages(api_url: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    messages: list[str] = []
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        async with get_client() as client:
            while page := await client.read_logs(limit=200, offset=len(messages)):
                messages += [log.message for log in page]
    return messages


def _run_session(consortium: Consortium, party: str, spec_sha256: str):  # type: ignore[no-untyped-def]
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: consortium.api_url}):
        flow_run = run_deployment(
            f"party-session/{party}",
            parameters={"run_id": "20261201T000000Z-0bad", "spec_sha256": spec_sha256},
            timeout=120,
            poll_interval=1,
            as_subflow=False,
        )
    return flow_run.state
