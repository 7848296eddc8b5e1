"""The secure requests a spec's approved analyses make: one secure sum per protocol for the summed
analyses (each party's grids concatenated: one graph, one stacked comparison), and the recommender's
training. Built here once, for the lifecycle and the benchmarks alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cleanroom.analyses import SUMMED
from cleanroom.privacy.noise_shares import noise_file
from cleanroom.recommend.retail import training_config
from cleanroom.secure.factorization import FactorizationRequest
from cleanroom.secure.requests import AggregateRequest, GridPart
from cleanroom.spec.analyses import Protocol
from cleanroom.spec.catalogue import load_catalogue
from cleanroom.spec.models import CollaborationSpec

SummedAnalysis = Any  # a spec model whose kind is in cleanroom.analyses.SUMMED


def summed_groups(spec: CollaborationSpec) -> dict[Protocol, list[SummedAnalysis]]:
    """The summed analyses by the protocol they run under, in spec order."""
    groups: dict[Protocol, list[SummedAnalysis]] = {}
    for analysis in spec.analyses:
        if analysis.kind in SUMMED:
            groups.setdefault(spec.protocol_for(analysis), []).append(analysis)
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
        parts=[
            GridPart(
                file=SUMMED[a.kind].grid_file,
                cells=a.cells,
                noise_file=noise_file(SUMMED[a.kind].grid_file) if getattr(a, "noise", None) else None,
            )
            for a in group
        ],
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
