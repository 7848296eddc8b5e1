"""The secure-sum request the insight tests send: the small consortium's compute parties, each reading
its own prepared grid, with the spec's disclosure rules (or k only)."""

from __future__ import annotations

from pathlib import Path

from cleanroom.secure import AggregateRequest
from cleanroom.settings import Settings
from cleanroom.spec import CollaborationSpec, Protocol
from tests.conftest import prepared


def grid_request(
    workspace: Settings,
    spec: CollaborationSpec,
    analysis: object,
    grid_file: Path,
    k: int,
    protocol: Protocol = Protocol.ABY3,
    dominance: bool = True,
) -> AggregateRequest:
    players = [p.name for p in spec.compute_parties]
    rule = spec.privacy.dominance
    return AggregateRequest(
        protocol=protocol,
        players=players,
        cells=analysis.cells,  # type: ignore[attr-defined]
        value_units=analysis.value_units,  # type: ignore[attr-defined]
        min_group_size=k,
        min_contributors=rule.min_contributors if dominance else 1,
        max_share_percent=rule.max_share_percent if dominance else 100.0,
        input_paths={p: str(prepared(workspace, p) / grid_file) for p in players},
    )
