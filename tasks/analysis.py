"""Phase 4: joint analysis: customer overlap (PSI), market totals and customer segments under MPC."""

from prefect import get_run_logger, task

from cleanroom.psi.overlap import RevealedOverlap, party_overlap
from cleanroom.secure import AggregateRequest, RevealedTotals
from cleanroom.secure.engine import PlayerProcessEngine
from cleanroom.secure.network import PlayerNetwork
from cleanroom.secure.requests import COPURCHASE_INPUT_PATH, PLAYER_INPUT_PATH, SEGMENTS_INPUT_PATH
from cleanroom.settings import Adapters
from cleanroom.spec import PinnedSpec
from cleanroom.spec.models import CopurchaseLift, CustomerSegments
from tasks import PRIVATE


def _disclosure_controlled_request(
    pinned: PinnedSpec, adapters: Adapters, cells: int, input_file: str
) -> AggregateRequest:
    spec = pinned.spec
    return AggregateRequest(
        protocol=spec.secure_computation.protocol,
        players=[p.name for p in spec.compute_parties],
        cells=cells,
        input_file=input_file,
        min_group_size=spec.privacy.min_group_size,
        min_contributors=spec.privacy.dominance.min_contributors,
        max_share_percent=spec.privacy.dominance.max_share_percent,
        allow_insecure_randomness=adapters.settings.allow_insecure_randomness,
    )


@task(name="secure-category-month-totals", **PRIVATE)
def category_month_totals(pinned: PinnedSpec, network: PlayerNetwork, adapters: Adapters) -> RevealedTotals:
    """Secret-share each party's grid on its own player, sum, apply disclosure control inside MPC
    (minimum group size, competitor dominance) and reveal only the cells that pass."""
    analysis = pinned.spec.category_month_sales
    cells = len(analysis.categories) * analysis.months
    request = _disclosure_controlled_request(pinned, adapters, cells, PLAYER_INPUT_PATH)
    revealed = PlayerProcessEngine(network).secure_totals(request)
    get_run_logger().info(
        "secure totals: %d cells shown, %d suppressed, %.1f s under %s",
        sum(revealed.shown),
        len(revealed.shown) - sum(revealed.shown),
        revealed.seconds,
        revealed.protocol.value,
    )
    return revealed


@task(name="private-customer-overlap", **PRIVATE)
def customer_overlap(pinned: PinnedSpec, adapters: Adapters) -> RevealedOverlap | None:
    """Count shared customers by private set intersection between the parties' own processes; only
    counts at or above the minimum group size are revealed (None when the spec approves no overlap)."""
    spec = pinned.spec
    analysis = spec.customer_overlap
    if analysis is None:
        return None
    keys = [k.value for k in analysis.join_keys]
    overlap = party_overlap(
        lambda party: adapters.party_host.start_session(party, "psi", pinned.path, "--keys", ",".join(keys)),
        [p.name for p in spec.data_parties],
        keys,
        spec.privacy.min_group_size,
    )
    get_run_logger().info(
        "customer overlap: %d groups, %d suppressed, %.1f s",
        len(overlap.counts),
        sum(c is None for c in overlap.counts),
        overlap.seconds,
    )
    return overlap


@task(name="secure-customer-segments", **PRIVATE)
def customer_segment_counts(
    pinned: PinnedSpec, network: PlayerNetwork, adapters: Adapters
) -> RevealedTotals | None:
    """Customers per RFM segment summed under MPC with the same disclosure control (None when the spec
    approves no segments analysis); the revealed values are customer counts."""
    return _insight_totals(pinned, network, adapters, pinned.spec.customer_segments, SEGMENTS_INPUT_PATH)


@task(name="secure-copurchase-counts", **PRIVATE)
def copurchase_counts(pinned: PinnedSpec, network: PlayerNetwork, adapters: Adapters) -> RevealedTotals | None:
    """Basket counts per category and category pair summed under MPC with disclosure control (the
    lift is computed from the revealed counts); None when the spec approves no co-purchase analysis."""
    return _insight_totals(pinned, network, adapters, pinned.spec.copurchase_lift, COPURCHASE_INPUT_PATH)


def _insight_totals(
    pinned: PinnedSpec,
    network: PlayerNetwork,
    adapters: Adapters,
    analysis: CustomerSegments | CopurchaseLift | None,
    input_file: str,
) -> RevealedTotals | None:
    if analysis is None:
        return None
    request = _disclosure_controlled_request(pinned, adapters, analysis.cells, input_file)
    revealed = PlayerProcessEngine(network).secure_totals(request)
    get_run_logger().info("%s: %d of %d cells shown", analysis.id, sum(revealed.shown), len(revealed.shown))
    return revealed
