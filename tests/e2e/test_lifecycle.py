"""The whole lifecycle on real components: party worker processes, TF Encrypted players over gRPC,
moto's S3 server, Prefect (test harness). Checks results against plaintext and looks for leaks."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cleanroom.crypto.keys import load_age_identity
from cleanroom.report.publish import open_report, read_archive
from cleanroom.spec import AnalysisKind
from flows.cli import app
from tests.plaintext_oracle import disclosed, plaintext_disclosure, plaintext_grid, plaintext_segments
from tests.unit.test_psi import plaintext_overlap
from tests.unit.test_shared_sales import plaintext_shared_sales

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

_OPENED: list[str] = []
_RECORDING: list[bool] = [False]


def _audit(event: str, args: tuple) -> None:
    if _RECORDING[0] and event == "open" and isinstance(args[0], (str, bytes, Path)):
        _OPENED.append(str(Path(args[0] if not isinstance(args[0], bytes) else args[0].decode()).resolve()))


sys.addaudithook(_audit)  # audit hooks cannot be removed; it records only while _RECORDING is set


def _players_running(marker: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "cleanroom.secure.player" in text and marker in text:
            pids.append(int(cmdline.parent.name))
    return pids


@pytest.fixture()
def workspace_env(small_workspace, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CLEANROOM_WORKSPACE", str(small_workspace.workspace))
    return small_workspace


def test_lifecycle_end_to_end(prefect_harness, workspace_env, small_spec) -> None:
    from flows.lifecycle import collaboration_lifecycle

    settings = workspace_env
    _OPENED.clear()
    _RECORDING[0] = True
    try:
        outcome = collaboration_lifecycle(spec_path=small_spec.path)
    finally:
        _RECORDING[0] = False

    # The coordinator process never read a party's exports or prepared files: only the parties did.
    party_data = [
        str((settings.parties_root / p.name / d).resolve())
        for p in small_spec.spec.parties
        for d in ("raw", "prepared")
    ]
    read_by_coordinator = [path for path in _OPENED if any(path.startswith(d) for d in party_data)]
    assert read_by_coordinator == []
    assert any(path.endswith("consortium.yaml") for path in _OPENED), "the audit hook must be recording"

    # Revealed totals equal the plaintext totals (exact: integer cents) and suppression follows k.
    identity = load_age_identity(settings.keys_root / "approvers" / "bo-jensen.age")
    report = open_report(read_archive(Path(outcome.archive_dir)), small_spec.spec, small_spec.sha256, identity)
    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    revealed = [v for row in report.category_month.sales_cents for v in row]
    privacy = small_spec.spec.privacy
    k = privacy.min_group_size
    rule = privacy.dominance
    raw_dirs = [settings.parties_root / p.name / "raw" for p in small_spec.spec.data_parties]
    sales, shown = plaintext_disclosure(raw_dirs, analysis, k, rule.min_contributors, rule.max_share_percent)
    assert revealed == [s if ok else None for s, ok in zip(sales, shown)]
    assert report.headline.cells_suppressed == sum(not ok for ok in shown) > 0
    assert report.spec_sha256 == small_spec.sha256 == outcome.spec_sha256
    assert all(report.verification.values()) and len(report.verification) == 2 * len(raw_dirs)
    assert outcome.report_uris["report.html.age"].startswith("s3://cleanroom-reports/nordic-retail-demo/")

    # Each retailer's market share per revealed cell exists only in its own workspace, and is right.
    for party in small_spec.spec.data_parties:
        own, _ = plaintext_grid([settings.parties_root / party.name / "raw"], analysis)
        table = json.loads((settings.parties_root / party.name / "reports" / "market_share.json").read_text())
        shares = [v for row in table["share_of_market_sales"].values() for v in row.values()]
        assert shares == [None if t is None else pytest.approx(o / t) for o, t in zip(own, revealed)]

    # RFM segments: customers per segment, summed under MPC with the same disclosure control.
    segments = small_spec.spec.customer_segments
    per_party = [plaintext_segments(raw, segments) for raw in raw_dirs]
    expected_segments = disclosed(per_party, k, rule.min_contributors, rule.max_share_percent)
    assert report.segments is not None
    assert [c for by_f in report.segments.customers for by_m in by_f for c in by_m] == expected_segments

    # Co-purchase: every lift in the report comes from the secure basket counts, ordered highest first.
    assert len(report.copurchase) == len(small_spec.spec.copurchase_lift.pairs)
    lifts = [row.lift for row in report.copurchase if row.lift is not None]
    assert lifts and lifts == sorted(lifts, reverse=True)

    # Customer overlap by PSI between the parties' processes equals the plaintext overlap of their keys.
    names = [p.name for p in small_spec.spec.data_parties]
    keys = {n: pl.read_parquet(settings.parties_root / n / "prepared" / "join_keys.parquet") for n in names}
    display = {small_spec.spec.party(n).display_name: n for n in names}
    assert len(report.overlap) == 2 ** len(names) - len(names) - 1 and report.overlap_keys == ["email", "phone"]
    for row in report.overlap:
        expected = plaintext_overlap(keys, tuple(display[p] for p in row.parties))
        assert row.customers == (expected if expected >= k else None), row

    # Sales of customers at more than one retailer, from secret-shared indicators, equal plaintext.
    shared = plaintext_shared_sales(settings.parties_root, names)
    assert report.shared_sales is not None and report.shared_sales.shown
    assert (report.shared_sales.shared_customers, report.shared_sales.shared_sales_cents) == shared[:2]
    assert (report.shared_sales.all_customers, report.shared_sales.all_sales_cents) == shared[2:]

    # Joint recommender: the joint model's Recall@10 at each party equals that of the same model trained
    # in plaintext on the pooled inputs; top-N lists and user factors exist only in each party's folder.
    recommender = small_spec.spec.joint_recommender
    assert report.recommender is not None and set(report.recommender.recall) == set(display)
    assert all(report.recommender.delivered.values())
    pooled = _pooled_recall(settings.parties_root, names, small_spec)
    for shown_name, recall in report.recommender.recall.items():
        assert recall.joint == pytest.approx(pooled[display[shown_name]], abs=0.01)
        assert recall.joint > recall.popularity  # the model learned the customers' tastes
    for n in names:
        home = settings.parties_root / n
        lists = pl.read_parquet(home / "reports" / "recommendations.parquet")
        own = set(pl.read_parquet(home / "prepared" / "customers.parquet")["customer_pseudonym"])
        assert set(lists["customer_pseudonym"]) <= own and lists["rank"].max() == recommender.top_n
        assert (home / "prepared" / "user_factors.csv").exists()
    assert not list(settings.runs_root.rglob("user_factors*"))

    # Stakeholders can open it with the standard age tool too; a non-approver's key is refused.
    html = subprocess.run(
        [
            "age",
            "--decrypt",
            "--identity",
            str(settings.keys_root / "approvers" / "ana-lopez.age"),
            str(Path(outcome.archive_dir) / "report.html.age"),
        ],
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert report.title in html and "<svg" in html
    assert "Baskets by postal region and size" in html and "Joint recommendation model" in html
    assert report.baskets is not None and report.baskets.rows
    for row in report.baskets.rows:
        if row.baskets and row.value_cents is not None:
            assert row.mean_cents == pytest.approx(row.value_cents / row.baskets)
    refused = CliRunner().invoke(
        app,
        [
            "decrypt",
            "--identity",
            str(settings.keys_root / "parties" / "alpine.age"),
            "--run",
            outcome.run_id,
            "--spec",
            str(small_spec.path),
        ],
    )
    assert refused.exit_code == 2 and "not one of the recipients" in refused.output

    # Every player process is gone, and the KPI history has this run.
    assert _players_running(outcome.run_id) == []
    history = [json.loads(line) for line in settings.history_file.read_text().splitlines()]
    assert history[-1]["run_id"] == outcome.run_id

    # Nothing sensitive reached Prefect's database: no identifiers, no figures in logs.
    logs = asyncio.run(_all_log_messages())
    assert logs, "the harness database must hold this run's logs"
    customers_csv = (settings.parties_root / "harbor" / "raw" / "customers.csv").read_text().splitlines()[1:20]
    identifiers = [field for line in customers_csv for field in line.split(",")[:4]]
    figures = [f"{v / 100:,.2f}" for v in revealed if v] + [str(v) for v in revealed if v and v >= 10**6]
    text = "\n".join(logs)
    assert not [i for i in identifiers if i in text]
    assert not [f for f in figures if f in text]


def _pooled_recall(parties_root: Path, names: list[str], pinned) -> dict[str, float]:
    from cleanroom.party.interactions import read_interactions
    from cleanroom.recommend import factorization as mf
    from cleanroom.recommend.retail import training_config
    from cleanroom.spec.catalogue import load_catalogue

    analysis = pinned.spec.joint_recommender
    items, rows = len(load_catalogue(pinned.path, pinned.spec)), analysis.users_per_party
    data = [read_interactions(parties_root / n, items) for n in names]
    bought = np.zeros((rows * len(names), items))
    weights = np.zeros_like(bought)
    for i, d in enumerate(data):
        bought[i * rows : i * rows + len(d.bought)] = d.bought
        weights[i * rows : (i + 1) * rows] = d.weights(analysis.purchase_weight, rows)[1]
    u, v = mf.train(bought, weights, training_config(analysis))
    return {
        n: mf.recall(u[i * rows : i * rows + len(d.bought)] @ v.T, d.bought, d.held_out, analysis.top_n)
        for i, (n, d) in enumerate(zip(names, data))
    }


async def _all_log_messages() -> list[str]:
    from prefect.client.orchestration import get_client

    messages: list[str] = []
    async with get_client() as client:
        while page := await client.read_logs(limit=200, offset=len(messages)):
            messages += [log.message for log in page]
    return messages


def test_players_stopped_when_a_phase_fails(prefect_harness, workspace_env, small_spec, monkeypatch) -> None:
    from cleanroom.errors import SecureComputationError
    from flows.lifecycle import collaboration_lifecycle
    from tasks import analysis

    started: list[str] = []

    def failing_totals(self, request):
        started.extend(self.network.hostmap)
        assert len(_players_running(str(self.network.run_dir))) == len(small_spec.spec.data_parties)
        raise SecureComputationError("injected failure", where="test")

    monkeypatch.setattr(analysis.PlayerProcessEngine, "secure_totals", failing_totals)
    with pytest.raises(SecureComputationError, match="injected failure"):
        collaboration_lifecycle(spec_path=small_spec.path)
    assert len(started) == len(small_spec.spec.data_parties) == 4  # three compute parties, one input party
    assert _players_running(str(workspace_env.runs_root)) == []
