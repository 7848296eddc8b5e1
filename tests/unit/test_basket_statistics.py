"""Basket statistics by region and basket size: each party's local grid and the secure,
disclosure-controlled sum, for every protocol."""

from __future__ import annotations

import numpy as np
import pytest

from cleanroom.analyses.basket_statistics import GRID_FILE as BASKET_STATISTICS_FILE
from cleanroom.secure.engine import InProcessEngine
from cleanroom.spec import Protocol
from tests.conftest import prepared
from tests.grid_requests import grid_request
from tests.plaintext_oracle import disclosure_of, plaintext_baskets


def test_party_basket_grid_matches_its_prepared_data(prepared_workspace, small_spec) -> None:
    analysis = small_spec.spec.basket_statistics
    for party in small_spec.spec.data_parties:
        version = prepared(prepared_workspace, party.name)
        grid = np.frombuffer((version / BASKET_STATISTICS_FILE).read_bytes(), "<i8").reshape(2, analysis.cells)
        values, customers = plaintext_baskets(version, analysis)
        assert grid[0].tolist() == values and grid[1].tolist() == customers
        baskets = grid[0, 0 :: analysis.measures]
        histogram = sum(grid[0, 2 + b :: analysis.measures] for b in range(analysis.value_bands))
        assert np.array_equal(baskets, histogram) and baskets.sum() > 0  # each basket in one value band


@pytest.mark.parametrize("protocol", [Protocol.ABY3, Protocol.SECURENN])
def test_secure_basket_statistics_equal_plaintext(prepared_workspace, small_spec, protocol: Protocol) -> None:
    spec = small_spec.spec
    analysis = spec.basket_statistics
    players = [p.name for p in spec.compute_parties]
    k, rule = 10, spec.privacy.dominance
    request = grid_request(prepared_workspace, spec, analysis, BASKET_STATISTICS_FILE, k, protocol)
    revealed = InProcessEngine().secure_totals(request)
    per_party = [plaintext_baskets(prepared(prepared_workspace, p), analysis) for p in players]
    sums, shown = disclosure_of(per_party, k, rule.min_contributors, rule.max_share_percent)
    assert revealed.sales_cents == [s if ok else None for s, ok in zip(sums, shown)]
    assert 0 < sum(shown) < len(shown)
