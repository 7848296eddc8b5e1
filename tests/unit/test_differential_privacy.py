"""Differential privacy: the spec's noise and budget, per-customer clipping on the party's side, noise
shares added inside MPC (the released spread matches OpenDP's calibration), and the budget across runs,
process restarts and concurrent runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from cleanroom.analyses.category_month_sales import CategoryMonthSales, category_month_aggregates
from cleanroom.errors import ConfigurationError
from cleanroom.privacy.budget import (
    PrivacyBudgetExhausted,
    give_back_unspent,
    mark_spent,
    period_of,
    reserve,
    spendings,
    status,
)
from cleanroom.privacy.calibration import calibrate, epsilon_of, rho_of_target, rho_spent, sample
from cleanroom.release.ledger import LedgerEntry
from cleanroom.secure import AggregateRequest
from cleanroom.secure.engine import InProcessEngine
from cleanroom.spec import Protocol, load_spec
from cleanroom.spec.noise import BudgetPeriod, Noise, PrivacyBudget
from tests.conftest import write

DECEMBER = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
MONTHLY = PrivacyBudget(period=BudgetPeriod.MONTH, rho_per_period=1.0, lifetime_rho=2.0)


@pytest.fixture()
def noised_raw(small_spec) -> dict:
    raw = json.loads(json.dumps(yaml.safe_load(small_spec.path.read_text()), default=str))
    trend = next(a for a in raw["analyses"] if a["kind"] == "category_month_sales")
    trend["noise"] = {"rho": 0.5, "clip": {"sales_cents": 20_000, "units": 20}}
    return raw


def _load_error(tmp_path: Path, raw: dict) -> str:
    with pytest.raises(ConfigurationError) as failure:
        load_spec(write(tmp_path / "spec.yaml", yaml.safe_dump(raw)))
    return failure.value.one_line()


def test_noise_needs_a_budget_one_run_fits_in(tmp_path: Path, noised_raw: dict) -> None:
    assert "privacy.budget: analyses add noise" in _load_error(tmp_path, noised_raw)
    noised_raw["privacy"]["budget"] = {"rho_per_period": 0.4, "lifetime_rho": 4}
    assert "one run spends rho 0.5, more than the budget allows (0.4 per month)" in _load_error(
        tmp_path, noised_raw
    )
    noised_raw["privacy"]["budget"]["rho_per_period"] = 1
    spec = load_spec(write(tmp_path / "spec.yaml", yaml.safe_dump(noised_raw)))
    assert spec.category_month_sales.noise is not None and spec.privacy.budget is not None


@pytest.mark.parametrize(
    ("noise", "expected"),
    [
        (
            {"rho": 0.5, "clip": {"sales_cents": 100}},
            "noise.clip: give a bound for each measure (sales_cents, units)",
        ),
        ({"rho": 0.5, "epsilon": 1, "clip": {"sales_cents": 1, "units": 1}}, "give rho, or epsilon with delta"),
        ({"epsilon": 1, "clip": {"sales_cents": 1, "units": 1}}, "give rho (e.g. rho: 0.25)"),
        ({"rho": 0.5, "clip": {"sales_cents": 0, "units": 1}}, "every bound is a positive integer"),
    ],
)
def test_malformed_noise_names_the_field(tmp_path: Path, noised_raw: dict, noise: dict, expected: str) -> None:
    noised_raw["privacy"]["budget"] = {"rho_per_period": 1, "lifetime_rho": 4}
    next(a for a in noised_raw["analyses"] if a["kind"] == "category_month_sales")["noise"] = noise
    message = _load_error(tmp_path, noised_raw)
    assert expected in message and "spec.yaml" in message


def test_calibration_comes_from_opendp_and_converts_both_ways() -> None:
    noise = Noise(rho=0.5, clip={"sales_cents": 20_000, "units": 20})
    sales, units = calibrate(noise, ["sales_cents", "units"])
    # Each measure spends half; a discrete Gaussian's zCDP at sensitivity c and scale s is c^2 / (2 s^2).
    assert sales.rho == pytest.approx(0.25, rel=1e-6) and units.rho == pytest.approx(0.25, rel=1e-6)
    assert sales.clip**2 / (2 * sales.scale**2) == pytest.approx(0.25, rel=1e-3)
    assert rho_spent(noise, ["sales_cents", "units"]) == pytest.approx(0.5, rel=1e-6)
    # An (epsilon, delta) target becomes the largest rho whose conversion fits it.
    rho = rho_of_target(None, 1.0, 1e-7)
    assert epsilon_of(rho, 1e-7) == pytest.approx(1.0, rel=1e-3)
    assert epsilon_of(rho * 1.1, 1e-7) > 1.0


def test_clipping_bounds_each_customers_contribution() -> None:
    analysis = CategoryMonthSales(
        id="trend",
        kind="category_month_sales",
        objective="market",
        categories=["Grocery"],
        period_start=date(2025, 1, 1),
        periods=2,
        noise=Noise(rho=0.1, clip={"sales_cents": 1000, "units": 10}),
    )
    jan, feb = datetime(2025, 1, 5, tzinfo=timezone.utc), datetime(2025, 2, 5, tzinfo=timezone.utc)
    lines = pl.LazyFrame(
        {
            "customer_code": [1, 1, 1, 2],
            "category": ["Grocery"] * 4,
            "purchased_at": [jan, jan, feb, jan],
            "sales_cents": [1000, 2000, 4000, 500],  # customer 1: 3000 in Jan, 4000 in Feb: norm 5000
            "quantity": [1, 2, 4, 1],  # customer 1: 3 and 4 units: norm 5, under the clip
        }
    )
    grid = category_month_aggregates(lines, analysis)
    # Customer 1 scaled by 1000 / 5000: 600 and 800; customer 2 (norm 500) unchanged.
    assert grid[0].tolist() == [600 + 500, 800, 3 + 1, 4]
    assert grid[1].tolist() == [2, 1, 2, 1]  # distinct customers are counted as before
    exact = category_month_aggregates(lines, analysis.model_copy(update={"noise": None}))
    assert exact[0].tolist() == [3500, 4000, 4, 4]


def test_released_noise_spread_matches_the_calibrated_scale(tmp_path: Path, small_spec) -> None:
    """1,500 cells, each a fresh draw: the revealed minus the exact sums spread as the calibration says."""
    players = [p.name for p in small_spec.spec.compute_parties]
    cells, rng = 1500, np.random.default_rng(7)
    noise = Noise(rho=0.5, clip={"sales_cents": 20_000})
    calibrated = calibrate(noise, ["sales_cents"])
    grids, noise_files, exact = {}, {}, np.zeros(cells, dtype=np.int64)
    for party in players:
        values = rng.integers(1_000_000, 2_000_000, size=cells)
        exact += values
        grids[party] = write_i64(tmp_path / f"{party}.i64", np.stack([values, np.full(cells, 20)]))
        noise_files[party] = write_i64(tmp_path / f"{party}.noise.i64", sample(calibrated, cells))
    request = AggregateRequest(
        protocol=Protocol.ABY3,
        players=players,
        cells=cells,
        min_group_size=10,
        input_paths=grids,
        noise_paths=noise_files,
    )
    revealed = InProcessEngine().secure_totals(request)
    assert all(revealed.shown)
    error = np.asarray(revealed.sales_cents, dtype=np.float64) - exact
    expected_sd = calibrated[0].released_sd(len(players))  # three full-scale draws summed
    assert expected_sd == pytest.approx(20_000 * np.sqrt(3), rel=1e-3)
    assert np.std(error) == pytest.approx(expected_sd, rel=0.08)
    assert abs(np.mean(error)) < 4 * expected_sd / np.sqrt(cells)
    inside = np.mean(np.abs(error) <= calibrated[0].interval_95(len(players)))
    assert 0.93 <= inside <= 0.97
    # Without the noise files the same sums come back exact: the noise is what the players added.
    exact_request = request.model_copy(update={"noise_paths": {}})
    assert InProcessEngine().secure_totals(exact_request).sales_cents == exact.tolist()


def write_i64(path: Path, values: np.ndarray) -> str:
    path.write_bytes(np.asarray(values, dtype="<i8").tobytes())
    return str(path)


def _entry(run_id: str, rho: float, released_at: str) -> LedgerEntry:
    return LedgerEntry(
        index=0,
        previous_sha256="0" * 64,
        collaboration="demo",
        run_id=run_id,
        spec_sha256="a" * 64,
        released_at=released_at,
        draft_sha256="b" * 64,
        report_manifest_sha256="c" * 64,
        figures=[],
        privacy_budget_spent={"trend": rho},
        approvals=[],
    )


def test_a_run_beyond_the_budget_is_refused_saying_what_is_left(tmp_path: Path) -> None:
    ledger = [_entry("released-earlier", 0.5, "2026-12-01T09:00:00+00:00")]
    reserve(tmp_path, ledger, MONTHLY, "run-1", 0.3, DECEMBER)
    with pytest.raises(PrivacyBudgetExhausted) as refused:
        reserve(tmp_path, ledger, MONTHLY, "run-2", 0.3, DECEMBER)
    assert "needs privacy budget rho 0.3; 0.2 left in period 2026-12 (of 1; resets 2027-01-01)" in str(
        refused.value
    )
    assert [s.run_id for s in spendings(tmp_path)] == ["run-1"]  # nothing reserved for the refused run
    # The next month has its own budget, but the lifetime cap counts everything.
    january = datetime(2027, 1, 3, tzinfo=timezone.utc)
    reserve(tmp_path, ledger, MONTHLY, "run-3", 0.9, january)
    with pytest.raises(PrivacyBudgetExhausted, match=r"0\.3 left of the lifetime cap 2 \(never resets\)"):
        reserve(tmp_path, ledger, MONTHLY, "run-4", 0.1 + 0.3, january)


def test_only_a_run_that_computed_nothing_gets_its_budget_back(tmp_path: Path) -> None:
    reserve(tmp_path, [], MONTHLY, "failed-early", 0.4, DECEMBER)
    reserve(tmp_path, [], MONTHLY, "failed-late", 0.4, DECEMBER)
    mark_spent(tmp_path, "failed-late")  # its secure sums ran: the noisy figures exist
    assert give_back_unspent(tmp_path, "failed-early") and not give_back_unspent(tmp_path, "failed-late")
    now = status(tmp_path, [], MONTHLY, DECEMBER)
    assert now.period_spent == pytest.approx(0.4) and now.lifetime_spent == pytest.approx(0.4)
    # A released run's ledger entry does not count twice beside its own record.
    released = [_entry("failed-late", 0.4, "2026-12-02T11:00:00+00:00")]
    assert status(tmp_path, released, MONTHLY, DECEMBER).period_spent == pytest.approx(0.4)


def test_periods_are_calendar_periods_in_utc() -> None:
    assert period_of(date(2026, 11, 30), BudgetPeriod.QUARTER) == ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1))
    assert period_of(date(2026, 12, 31), BudgetPeriod.MONTH)[2] == date(2027, 1, 1)
    assert period_of(date(2026, 6, 1), BudgetPeriod.YEAR) == ("2026", date(2026, 1, 1), date(2027, 1, 1))


RESERVE = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from cleanroom.errors import StorageError
from cleanroom.locks import exclusive
from cleanroom.privacy.budget import PrivacyBudgetExhausted, reserve
from cleanroom.spec.noise import PrivacyBudget
folder, run_id = Path(sys.argv[1]), sys.argv[2]
budget = PrivacyBudget(rho_per_period=1.0, lifetime_rho=2.0)
busy = lambda t: StorageError("busy")
try:
    with exclusive(folder.parent / "ledger.lock", 60, busy):
        reserve(folder, [], budget, run_id, 0.4, datetime(2026, 12, 2, tzinfo=timezone.utc))
    print("reserved")
except PrivacyBudgetExhausted:
    print("refused")
"""


def test_the_budget_holds_across_processes_and_concurrent_runs(tmp_path: Path) -> None:
    """Six runs in six processes at once, under the ledger lock as the flow takes it: 1.0 per month
    at 0.4 each admits exactly two; a process started afterwards sees them (nothing lived in memory)."""
    folder = tmp_path / "budget"
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", RESERVE, str(folder), f"run-{i}"], stdout=subprocess.PIPE, text=True
        )
        for i in range(6)
    ]
    outcomes = sorted(run.communicate(timeout=120)[0].strip() for run in runs)
    assert outcomes == ["refused"] * 4 + ["reserved"] * 2
    later = subprocess.run(
        [sys.executable, "-c", RESERVE, str(folder), "run-later"], capture_output=True, text=True, check=True
    )
    assert later.stdout.strip() == "refused"
    assert status(folder, [], MONTHLY, DECEMBER).period_spent == pytest.approx(0.8)


def test_ledger_show_states_the_budget_left(tmp_path: Path, noised_raw: dict, small_spec, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cleanroom.privacy.budget import budget_folder
    from flows.cli import app

    noised_raw["privacy"]["budget"] = {"period": "month", "rho_per_period": 1, "lifetime_rho": 4}
    spec_path = write(tmp_path / "spec.yaml", yaml.safe_dump(noised_raw))
    shutil.copy(small_spec.path.parent / "catalogue.csv", tmp_path / "catalogue.csv")
    workspace = tmp_path / "workspace"
    monkeypatch.setenv("CLEANROOM_WORKSPACE", str(workspace))
    monkeypatch.delenv("CLEANROOM_S3_ENDPOINT_URL", raising=False)
    now = datetime.now(timezone.utc)
    budget = load_spec(spec_path).privacy.budget
    reserve(budget_folder(workspace, noised_raw["collaboration"]), [], budget, "run-in-flight", 0.5, now)
    shown = CliRunner().invoke(app, ["ledger", "show", "--spec", str(spec_path), "--mirror", str(tmp_path / "m")])
    label, _, resets = period_of(now.date(), BudgetPeriod.MONTH)
    assert shown.exit_code == 0, shown.output
    said = " ".join(shown.output.split())
    assert (
        f"privacy budget: period {label}: rho 0.5 of 1 spent (resets {resets.isoformat()}); lifetime: 0.5 of 4"
        in said
    )


def test_a_node_refuses_to_countersign_a_release_beyond_the_budget_or_under_reported(
    tmp_path: Path, noised_raw: dict, small_workspace
) -> None:
    """What the ledger alone proves, each node checks before it countersigns: the entry records what a
    release of the spec spends, and released runs stay within the budget."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from cleanroom.crypto.keys import load_signing_key
    from cleanroom.privacy.noise_shares import rho_per_analysis
    from cleanroom.release.countersign import entry_problem
    from cleanroom.release.ledger import SignedEntry, sign_entry

    noised_raw["privacy"]["budget"] = {"period": "month", "rho_per_period": 1, "lifetime_rho": 4}
    spec = load_spec(write(tmp_path / "spec.yaml", yaml.safe_dump(noised_raw)))
    spends = rho_per_analysis(spec)
    coordinator = load_signing_key(small_workspace.signing_key_path)
    history, previous = [], "0" * 64
    for index in range(2):  # two releases this month, 0.5 each: the month's budget is used
        released = _entry(f"run-{index}", 0.5, f"2026-12-0{index + 1}T09:00:00+00:00").model_copy(
            update={"index": index, "previous_sha256": previous, "privacy_budget_spent": spends}
        )
        history.append(SignedEntry(entry=released, coordinator_signature="", countersignatures={}))
        previous = released.sha256()
    offered = _entry("run-2", 0.5, "2026-12-02T12:00:00+00:00").model_copy(
        update={"index": 2, "previous_sha256": previous, "privacy_budget_spent": spends, "spec_sha256": "s" * 64}
    )

    def problem(entry: LedgerEntry, key: Ed25519PrivateKey = coordinator) -> str:
        signed = SignedEntry(entry=entry, coordinator_signature=sign_entry(entry, key), countersignatures={})
        return entry_problem(signed, spec, "s" * 64, entry.run_id, history) or ""

    assert "with this release the ledger would exceed the privacy budget (period 2026-12: rho 1.5 of 1" in problem(
        offered
    )
    less = offered.model_copy(update={"privacy_budget_spent": {"category-month-sales": 0.1}})
    assert "records privacy budget {'category-month-sales': 0.1}, but a release of this spec spends" in problem(
        less
    )
    january = offered.model_copy(update={"released_at": "2027-01-02T09:00:00+00:00"})
    assert "privacy budget" not in problem(january)  # a new month: the budget check passes (approvals are next)
