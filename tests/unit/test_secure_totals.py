"""Secure vs plaintext oracle, per protocol, with players in one process (TF Encrypted LocalConfig)."""

from __future__ import annotations

import pytest

from cleanroom.party.preparation import CATEGORY_MONTH_FILE
from cleanroom.secure import AggregateRequest
from cleanroom.secure.engine import InProcessEngine
from cleanroom.spec import AnalysisKind, Protocol
from tests.plaintext_oracle import plaintext_grid


@pytest.mark.parametrize("protocol", list(Protocol))
def test_secure_totals_equal_plaintext(prepared_workspace, small_spec, protocol: Protocol) -> None:
    spec = small_spec.spec
    analysis = spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    players = [p.name for p in spec.compute_parties]
    k = spec.privacy.min_group_size
    request = AggregateRequest(
        protocol=protocol,
        players=players,
        cells=len(analysis.categories) * analysis.months,
        min_group_size=k,
        input_paths={p: str(prepared_workspace.parties_root / p / CATEGORY_MONTH_FILE) for p in players},
    )
    revealed = InProcessEngine().category_month_totals(request)

    sales, customers = plaintext_grid([prepared_workspace.parties_root / p / "raw" for p in players], analysis)
    expected_shown = [c >= k for c in customers]
    assert revealed.shown == expected_shown
    assert 0 < sum(expected_shown) < len(expected_shown), "fixture must exercise both shown and suppressed cells"
    # Sales are integer cents in the ring, unscaled: exact, not just within fixed-point tolerance.
    assert revealed.sales_cents == [s if shown else None for s, shown in zip(sales, expected_shown)]
    assert all(revealed.contribution_consistent.values())
    assert revealed.secure_randomness is True
    assert revealed.protocol is protocol


def test_boundary_group_size_is_shown(prepared_workspace, small_spec) -> None:
    """A cell with exactly k customers is shown; k - 1 is suppressed (the comparison's edge)."""
    spec = small_spec.spec
    analysis = spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    players = [p.name for p in spec.compute_parties]
    _, customers = plaintext_grid([prepared_workspace.parties_root / p / "raw" for p in players], analysis)
    k = sorted(c for c in customers if c > 1)[0]  # a k that some cell meets exactly
    request = AggregateRequest(
        protocol=Protocol.ABY3,
        players=players,
        cells=len(customers),
        min_group_size=k,
        input_paths={p: str(prepared_workspace.parties_root / p / CATEGORY_MONTH_FILE) for p in players},
    )
    revealed = InProcessEngine().category_month_totals(request)
    assert revealed.shown == [c >= k for c in customers]
    assert any(c == k for c in customers)
