"""Co-purchase counts per party and the lift computed from the secure, disclosure-controlled sums."""

from __future__ import annotations

import numpy as np
import pytest

from cleanroom.analyses import SUMMED, ReportContext
from cleanroom.analyses.copurchase_lift import GRID_FILE as COPURCHASE_FILE
from cleanroom.secure.engine import InProcessEngine
from cleanroom.spec import Protocol
from tests.conftest import home, prepared
from tests.grid_requests import grid_request
from tests.plaintext_oracle import plaintext_copurchase


def test_party_copurchase_counts_match_raw_exports(prepared_workspace, small_spec) -> None:
    analysis = small_spec.spec.copurchase_lift
    assert analysis is not None
    for party in small_spec.spec.data_parties:
        folder = home(prepared_workspace, party.name)
        grid_file = prepared(prepared_workspace, party.name) / COPURCHASE_FILE
        grid = np.frombuffer(grid_file.read_bytes(), "<i8").reshape(2, analysis.cells)
        counts, people = plaintext_copurchase(folder / "raw", analysis)
        assert grid[0].tolist() == counts and grid[1].tolist() == people
        assert counts[-1] > max(counts[:-1]) > 0


def test_secure_lift_equals_plaintext_lift(prepared_workspace, small_spec) -> None:
    spec = small_spec.spec
    analysis = spec.copurchase_lift
    players = [p.name for p in spec.compute_parties]
    k = spec.privacy.min_group_size
    request = grid_request(prepared_workspace, spec, analysis, COPURCHASE_FILE, k, Protocol.ABY3, dominance=False)
    revealed = InProcessEngine().secure_totals(request)
    per_party = [plaintext_copurchase(home(prepared_workspace, p) / "raw", analysis) for p in players]
    counts = [sum(c) for c in zip(*(c for c, _ in per_party))]
    people = [sum(p) for p in zip(*(p for _, p in per_party))]
    assert revealed.sales_cents == [c if n >= k else None for c, n in zip(counts, people)]
    section = SUMMED[analysis.kind].section(analysis, revealed, ReportContext("EUR", k, ""))
    rows = {row.categories: row for row in section.rows}
    n_categories = len(analysis.categories)
    for i, (a, b) in enumerate(analysis.pairs):
        together, n_a, n_b = (
            counts[n_categories + i],
            counts[analysis.categories.index(a)],
            counts[analysis.categories.index(b)],
        )
        shown = all(
            people[j] >= k
            for j in (n_categories + i, analysis.categories.index(a), analysis.categories.index(b), -1)
        )
        expected = together * counts[-1] / (n_a * n_b) if shown else None
        assert rows[a, b].lift == (expected if expected is None else pytest.approx(expected))
    assert any(r.lift is not None for r in rows.values())
