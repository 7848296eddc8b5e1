"""RFM customer segments: each party's local counts and the secure, disclosure-controlled sum."""

from __future__ import annotations

import numpy as np

from cleanroom.analyses.customer_segments import GRID_FILE as SEGMENTS_FILE
from cleanroom.secure.engine import InProcessEngine
from cleanroom.spec import Protocol
from tests.conftest import home, prepared
from tests.grid_requests import grid_request
from tests.plaintext_oracle import disclosed, plaintext_segments


def test_party_segment_counts_match_raw_exports(prepared_workspace, small_spec) -> None:
    analysis = small_spec.spec.customer_segments
    assert analysis is not None
    for party in small_spec.spec.data_parties:
        grid_file = prepared(prepared_workspace, party.name) / SEGMENTS_FILE
        grid = np.frombuffer(grid_file.read_bytes(), "<i8").reshape(2, analysis.cells)
        expected = plaintext_segments(home(prepared_workspace, party.name) / "raw", analysis)
        assert grid[0].tolist() == expected and grid[1].tolist() == expected
        assert sum(expected) > 0 and sum(c > 0 for c in expected) > 3  # customers spread over segments


def test_secure_segments_equal_plaintext_with_disclosure_control(prepared_workspace, small_spec) -> None:
    spec = small_spec.spec
    analysis = spec.customer_segments
    players = [p.name for p in spec.compute_parties]
    k, rule = 5, spec.privacy.dominance
    request = grid_request(prepared_workspace, spec, analysis, SEGMENTS_FILE, k, Protocol.ABY3)
    revealed = InProcessEngine().secure_totals(request)
    per_party = [plaintext_segments(home(prepared_workspace, p) / "raw", analysis) for p in players]
    expected = disclosed(per_party, k, rule.min_contributors, rule.max_share_percent)
    assert revealed.sales_cents == expected
    assert any(v is None for v in expected) and any(v is not None for v in expected)
