"""Phase 4: joint analysis: customer overlap (PSI), market totals, insights and the joint recommender."""

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from prefect import get_run_logger, task

from cleanroom.errors import SecureComputationError
from cleanroom.psi.indicators import hand_out
from cleanroom.psi.overlap import RevealedOverlap, overlap_with_indicators
from cleanroom.recommend.retail import PartyRecall, RecommenderOutcome, training_config
from cleanroom.secure import AggregateRequest, RevealedTotals
from cleanroom.secure.engine import PlayerProcessEngine
from cleanroom.secure.factorization import FactorizationRequest
from cleanroom.secure.network import PlayerNetwork
from cleanroom.secure.requests import (
    BASKET_STATISTICS_INPUT_PATH,
    COPURCHASE_INPUT_PATH,
    PLAYER_INPUT_PATH,
    SEGMENTS_INPUT_PATH,
    GridPart,
)
from cleanroom.secure.shared_sales import RevealedSharedSales, SharedIndicators, SharedSalesRequest
from cleanroom.settings import Adapters
from cleanroom.spec import PinnedSpec
from cleanroom.spec.catalogue import load_catalogue
from cleanroom.spec.models import BasketStatistics, CategoryMonthSales, CopurchaseLift, CustomerSegments
from tasks import PRIVATE

# Analyses computed as a secure sum of per-party grids with disclosure control.
SummedAnalysis = CategoryMonthSales | CustomerSegments | CopurchaseLift | BasketStatistics


# Where each party's player finds its pre-aggregated grid for each summed analysis.
GRID_FILES: dict[type, str] = {
    CategoryMonthSales: PLAYER_INPUT_PATH,
    CustomerSegments: SEGMENTS_INPUT_PATH,
    CopurchaseLift: COPURCHASE_INPUT_PATH,
    BasketStatistics: BASKET_STATISTICS_INPUT_PATH,
}


@task(name="secure-sums-with-disclosure-control", **PRIVATE)
def secure_sums(pinned: PinnedSpec, network: PlayerNetwork, adapters: Adapters) -> dict[str, RevealedTotals]:
    """Market totals, segments, co-purchase and basket statistics: each party's grids enter as shares
    from its own player, are summed, and only cells that pass disclosure control (minimum group size,
    competitor dominance), evaluated inside MPC, are revealed. Analyses under the same protocol run as
    one computation: one graph to trace and one stacked secure comparison. Results by analysis id."""
    spec = pinned.spec
    summed: list[SummedAnalysis] = [a for a in spec.analyses if type(a) in GRID_FILES]  # type: ignore[misc]
    results: dict[str, RevealedTotals] = {}
    for protocol in dict.fromkeys(spec.protocol_for(a) for a in summed):
        group = [a for a in summed if spec.protocol_for(a) is protocol]
        request = AggregateRequest(
            protocol=protocol,
            players=[p.name for p in spec.compute_parties],
            input_parties=[p.name for p in spec.data_parties],
            cells=sum(a.cells for a in group),
            parts=[GridPart(file=GRID_FILES[type(a)], cells=a.cells) for a in group],
            value_units=[unit for a in group for unit in a.value_units],
            min_group_size=spec.privacy.min_group_size,
            min_contributors=spec.privacy.dominance.min_contributors,
            max_share_percent=spec.privacy.dominance.max_share_percent,
            allow_insecure_randomness=adapters.settings.allow_insecure_randomness,
        )
        revealed = PlayerProcessEngine(network).secure_totals(request)
        offset = 0
        for analysis in group:
            part = _cells(revealed, offset, analysis.cells)
            offset += analysis.cells
            results[analysis.id] = part
            get_run_logger().info("%s: %d of %d cells shown", analysis.id, sum(part.shown), len(part.shown))
        get_run_logger().info("secure sums under %s: %.1f s", protocol.value, revealed.seconds)
    return results


def _cells(revealed: RevealedTotals, start: int, count: int) -> RevealedTotals:
    return revealed.model_copy(
        update={
            "sales_cents": revealed.sales_cents[start : start + count],
            "shown": revealed.shown[start : start + count],
        }
    )


@task(name="private-customer-overlap", **PRIVATE)
def customer_overlap(
    pinned: PinnedSpec, adapters: Adapters
) -> tuple[RevealedOverlap | None, SharedIndicators | None]:
    """Count shared customers by private set intersection between the parties' own processes; only
    counts at or above the minimum group size are revealed (None when the spec approves no overlap).
    When the spec asks for shared-customer sales, each party's indicator bits are split into two
    random shares and handed to two parties at once; only where they went is returned."""
    spec = pinned.spec
    analysis = spec.customer_overlap
    if analysis is None:
        return None, None
    keys = [k.value for k in analysis.join_keys]
    ordered = ("--ordered",) if analysis.shared_customer_sales else ()
    parties = [p.name for p in spec.data_parties]
    overlap, indicators = overlap_with_indicators(
        lambda party: adapters.party_host.start_session(
            party, "psi", pinned.path, "--keys", ",".join(keys), *ordered
        ),
        parties,
        keys,
        spec.privacy.min_group_size,
        ordered=bool(ordered),
    )
    get_run_logger().info(
        "customer overlap: %d groups, %d suppressed, %.1f s",
        len(overlap.counts),
        sum(c is None for c in overlap.counts),
        overlap.seconds,
    )
    return overlap, hand_out(adapters.party_host, pinned.path, indicators) if indicators else None


@task(name="secure-shared-customer-sales", **PRIVATE)
def shared_customer_sales(
    pinned: PinnedSpec, network: PlayerNetwork, adapters: Adapters, shares: SharedIndicators | None
) -> RevealedSharedSales | None:
    """Sales of customers who shop at more than one retailer, from the secret-shared indicators,
    revealed only if the disclosure rules pass inside MPC."""
    if shares is None:
        return None
    spec = pinned.spec
    request = SharedSalesRequest(
        protocol=spec.protocol_for(spec.customer_overlap),
        players=[p.name for p in spec.compute_parties],
        rows=shares.rows,
        share_holders=shares.holders,
        min_group_size=spec.privacy.min_group_size,
        max_share_percent=spec.privacy.dominance.max_share_percent,
        allow_insecure_randomness=adapters.settings.allow_insecure_randomness,
    )
    revealed = PlayerProcessEngine(network).shared_sales(request)
    get_run_logger().info(
        "shared-customer sales: %s, %.1f s", "shown" if revealed.shown else "suppressed", revealed.seconds
    )
    return revealed


@task(name="secure-joint-recommender", **PRIVATE)
def joint_recommender(pinned: PinnedSpec, network: PlayerNetwork, adapters: Adapters) -> RecommenderOutcome | None:
    """Each party turns its purchases into its player's input; matrix factorization trains under MPC;
    item factors are revealed, each party's user factors go to its own player only; each party ranks
    and evaluates in its own process. None when the spec approves no recommender."""
    spec, host = pinned.spec, adapters.party_host
    analysis = spec.joint_recommender
    if analysis is None:
        return None
    parties = [p.name for p in spec.data_parties]
    items = len(load_catalogue(pinned.path, spec))
    _each_party(parties, lambda party: host.run_worker(party, "recommender-input", pinned.path))
    config = training_config(analysis)
    request = FactorizationRequest.from_config(
        config,
        spec.protocol_for(analysis),
        [p.name for p in spec.compute_parties],
        analysis.users_per_party,
        items,
        input_parties=parties,
        allow_insecure_randomness=adapters.settings.allow_insecure_randomness,
    )
    trained = PlayerProcessEngine(network).train_factorization(request)
    message = json.dumps({"item_factors": trained.item_factors})
    results = _each_party(parties, lambda party: host.run_worker(party, "recommend", pinned.path, stdin=message))
    get_run_logger().info(
        "joint recommender: %d epochs in %.1f s under %s", config.epochs, trained.seconds, request.protocol.value
    )
    return RecommenderOutcome(
        protocol=request.protocol,
        items=items,
        users_per_party=analysis.users_per_party,
        factors=config.factors,
        epochs=config.epochs,
        top_n=analysis.top_n,
        seconds=trained.seconds,
        delivered={p: trained.user_factors_delivered.get(p, False) and r["delivered"] for p, r in results.items()},
        recall={p: PartyRecall.model_validate(r["recall"]) for p, r in results.items() if r["recall"]},
    )


def _each_party(parties: list[str], step: Callable[[str], dict]) -> dict[str, dict]:
    """Run one worker step in every party's process at once; stop on the first party that failed."""
    with ThreadPoolExecutor(max_workers=len(parties)) as pool:
        results = dict(zip(parties, pool.map(step, parties)))
    for party, result in results.items():
        if "error" in result and result.get("status") == "failed":
            raise SecureComputationError(result["error"], where=f"party {party}")
    return results
