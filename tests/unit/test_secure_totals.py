"""Secure vs plaintext oracle, per protocol, with players in one process (TF Encrypted LocalConfig)."""

from __future__ import annotations

import shutil

import pytest

from cleanroom.analyses.category_month_sales import GRID_FILE as CATEGORY_MONTH_FILE
from cleanroom.secure import AggregateRequest
from cleanroom.secure.engine import InProcessEngine
from cleanroom.spec import AnalysisKind, Protocol
from tests.conftest import home, prepared
from tests.plaintext_oracle import max_share_percent_per_cell, plaintext_disclosure, plaintext_grid


@pytest.mark.parametrize("protocol", list(Protocol))
def test_secure_totals_equal_plaintext(prepared_workspace, small_spec, protocol: Protocol) -> None:
    spec = small_spec.spec
    analysis = spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    players = [p.name for p in spec.compute_parties]
    k = spec.privacy.min_group_size
    request = AggregateRequest(
        protocol=protocol,
        players=players,
        cells=analysis.cells,
        min_group_size=k,
        input_paths={p: str(prepared(prepared_workspace, p) / CATEGORY_MONTH_FILE) for p in players},
    )
    revealed = InProcessEngine().secure_totals(request)

    sales, customers = plaintext_grid([home(prepared_workspace, p) / "raw" for p in players], analysis)
    expected_shown = [c >= k for c in customers]
    assert revealed.shown == expected_shown
    assert 0 < sum(expected_shown) < len(expected_shown), "fixture must exercise both shown and suppressed cells"
    # Sales are integer cents in the ring, unscaled: exact, not just within fixed-point tolerance.
    assert revealed.sales_cents == [s if shown else None for s, shown in zip(sales, expected_shown)]
    assert all(revealed.contribution_consistent.values())
    assert revealed.protocol is protocol


def test_boundary_group_size_is_shown(prepared_workspace, small_spec) -> None:
    """A cell with exactly k customers is shown; k - 1 is suppressed (the comparison's edge)."""
    spec = small_spec.spec
    analysis = spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    players = [p.name for p in spec.compute_parties]
    _, customers = plaintext_grid([home(prepared_workspace, p) / "raw" for p in players], analysis)
    k = sorted(c for c in customers if c > 1)[0]  # a k that some cell meets exactly
    request = AggregateRequest(
        protocol=Protocol.ABY3,
        players=players,
        cells=len(customers),
        min_group_size=k,
        input_paths={p: str(prepared(prepared_workspace, p) / CATEGORY_MONTH_FILE) for p in players},
    )
    revealed = InProcessEngine().secure_totals(request)
    assert revealed.shown == [c >= k for c in customers]
    assert any(c == k for c in customers)


@pytest.mark.parametrize("protocol", list(Protocol))
def test_dominance_rule_inside_mpc_matches_plaintext(prepared_workspace, small_spec, protocol: Protocol) -> None:
    """With p set between the cells' largest shares, some cells that have enough customers are still
    suppressed because one retailer dominates them; n = 3 suppresses cells a retailer does not sell in."""
    spec = small_spec.spec
    analysis = spec.category_month_sales
    players = [p.name for p in spec.compute_parties]
    raw = [home(prepared_workspace, p) / "raw" for p in players]
    shares = sorted(s for s in max_share_percent_per_cell(raw, analysis) if s > 0)
    p = round(shares[len(shares) // 2], 1) + 0.05  # about half the cells have a retailer above p%
    k = 2
    request = AggregateRequest(
        protocol=protocol,
        players=players,
        cells=analysis.cells,
        min_group_size=k,
        min_contributors=3,
        max_share_percent=p,
        input_paths={q: str(prepared(prepared_workspace, q) / CATEGORY_MONTH_FILE) for q in players},
    )
    revealed = InProcessEngine().secure_totals(request)
    sales, shown = plaintext_disclosure(raw, analysis, k, 3, p)
    _, by_customers = plaintext_disclosure(raw, analysis, k, 1, 100)
    assert revealed.shown == shown
    assert sum(a and not b for a, b in zip(by_customers, shown)) > 5, "dominance must suppress cells k does not"
    assert revealed.sales_cents == [s if ok else None for s, ok in zip(sales, shown)]


@pytest.mark.parametrize("protocol", [Protocol.ABY3, Protocol.POND])
def test_fourth_retailer_provides_input_without_computing(
    tmp_path, prepared_workspace, small_spec, protocol: Protocol
) -> None:
    """More retailers than compute parties: the extra one only secret-shares its grid from its own
    player; the sum and the disclosure rules cover all four."""
    spec = small_spec.spec
    analysis = spec.category_month_sales
    compute = [p.name for p in spec.compute_parties]
    fourth = tmp_path / "fjord"  # a fourth retailer whose data happen to look like Harbor's
    shutil.copytree(home(prepared_workspace, "harbor") / "raw", fourth / "raw")
    shutil.copy(prepared(prepared_workspace, "harbor") / CATEGORY_MONTH_FILE, fourth / "grid.i64")
    paths = {p: str(prepared(prepared_workspace, p) / CATEGORY_MONTH_FILE) for p in compute}
    request = AggregateRequest(
        protocol=protocol,
        players=compute,
        input_parties=[*compute, "fjord"],
        cells=analysis.cells,
        min_group_size=10,
        min_contributors=2,
        max_share_percent=40,
        input_paths=paths | {"fjord": str(fourth / "grid.i64")},
    )
    revealed = InProcessEngine().secure_totals(request)
    raw = [home(prepared_workspace, p) / "raw" for p in compute] + [fourth / "raw"]
    sales, shown = plaintext_disclosure(raw, analysis, 10, 2, 40)
    three, _ = plaintext_disclosure(raw[:3], analysis, 10, 2, 40)
    assert revealed.sales_cents == [s if ok else None for s, ok in zip(sales, shown)]
    assert 0 < sum(shown) < len(shown) and sales != three  # the fourth retailer's sales are in the sums
    assert set(revealed.contribution_consistent) == {*compute, "fjord"}
    assert all(revealed.contribution_consistent.values())


@pytest.mark.parametrize(
    ("grain", "start", "periods"),
    [
        ("day", "2025-03-01", 45),
        ("week", "2024-12-30", 53),
        ("month", "2025-01-01", 12),
        ("quarter", "2025-01-01", 4),
    ],
)
def test_trend_grain_grids_equal_plaintext(prepared_workspace, small_spec, grain, start, periods) -> None:
    """Each party's grid at day, ISO week, month and quarter grain equals the oracle's on its exports."""
    import polars as pl

    from cleanroom.analyses.category_month_sales import category_month_aggregates

    base = small_spec.spec.category_month_sales
    analysis = base.model_validate(base.model_dump() | {"grain": grain, "period_start": start, "periods": periods})
    for party in [p.name for p in small_spec.spec.compute_parties]:
        transactions = pl.scan_parquet(prepared(prepared_workspace, party) / "transactions.parquet")
        grid = category_month_aggregates(transactions, analysis)
        sales, customers = plaintext_grid([home(prepared_workspace, party) / "raw"], analysis)
        assert grid[0].tolist() == sales and grid[1].tolist() == customers
        assert sum(sales) > 0
