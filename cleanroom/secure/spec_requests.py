"""The secure requests a spec's approved analyses make: one secure sum per protocol for the summed
analyses (each party's grids concatenated: one graph, one stacked comparison), and the recommender's
training. Built here once, for the lifecycle and the benchmarks alike."""

from __future__ import annotations

from pathlib import Path

from cleanroom.recommend.retail import training_config
from cleanroom.secure.factorization import FactorizationRequest
from cleanroom.secure.requests import (
    BASKET_STATISTICS_INPUT_PATH,
    COPURCHASE_INPUT_PATH,
    PLAYER_INPUT_PATH,
    SEGMENTS_INPUT_PATH,
    AggregateRequest,
    GridPart,
)
from cleanroom.spec.analyses import Protocol
from cleanroom.spec.catalogue import load_catalogue
from cleanroom.spec.models import (
    BasketStatistics,
    CategoryMonthSales,
    CollaborationSpec,
    CopurchaseLift,
    CustomerSegments,
)

# Analyses computed as a secure sum of per-party grids with disclosure control, and where each
# party's player finds its pre-aggregated grid for each.
SummedAnalysis = CategoryMonthSales | CustomerSegments | CopurchaseLift | BasketStatistics
GRID_FILES: dict[type, str] = {
    CategoryMonthSales: PLAYER_INPUT_PATH,
    CustomerSegments: SEGMENTS_INPUT_PATH,
    CopurchaseLift: COPURCHASE_INPUT_PATH,
    BasketStatistics: BASKET_STATISTICS_INPUT_PATH,
}


def summed_groups(spec: CollaborationSpec) -> dict[Protocol, list[SummedAnalysis]]:
    """The summed analyses by the protocol they run under, in spec order."""
    summed = [a for a in spec.analyses if type(a) in GRID_FILES]
    groups: dict[Protocol, list[SummedAnalysis]] = {}
    for analysis in summed:
        groups.setdefault(spec.protocol_for(analysis), []).append(analysis)  # type: ignore[arg-type]
    return groups


def summed_request(
    spec: CollaborationSpec,
    protocol: Protocol,
    group: list[SummedAnalysis],
) -> AggregateRequest:
    return AggregateRequest(
        protocol=protocol,
        players=[p.name for p in spec.compute_parties],
        input_parties=[p.name for p in spec.data_parties],
        cells=sum(a.cells for a in group),
        parts=[GridPart(file=GRID_FILES[type(a)], cells=a.cells) for a in group],
        value_units=[unit for a in group for unit in a.value_units],
        min_group_size=spec.privacy.min_group_size,
        min_contributors=spec.privacy.dominance.min_contributors,
        max_share_percent=spec.privacy.dominance.max_share_percent,
    )


def recommender_request(spec: CollaborationSpec, spec_path: Path) -> FactorizationRequest:
    analysis = spec.joint_recommender
    assert analysis is not None
    return FactorizationRequest.from_config(
        training_config(analysis),
        spec.protocol_for(analysis),
        [p.name for p in spec.compute_parties],
        analysis.users_per_party,
        len(load_catalogue(spec_path, spec)),
        input_parties=[p.name for p in spec.data_parties],
    )
