"""Phase 4: joint analysis: customer overlap (PSI), market totals, insights and the joint recommender."""

import json
import time

from prefect import get_run_logger, task

from cleanroom.exchange.messages import EVALUATION, ITEM_FACTORS
from cleanroom.privacy.budget import mark_spent
from cleanroom.psi.indicators import hand_out
from cleanroom.psi.overlap import RevealedOverlap, overlap_from_blinded
from cleanroom.psi.rounds import fully_blinded_sets
from cleanroom.recommend.joint_epochs import coordinate
from cleanroom.recommend.retail import PartyRecall, RecommenderOutcome, training_config
from cleanroom.secure import RevealedTotals
from cleanroom.secure.factorization import TrainedFactors
from cleanroom.secure.shared_sales import RevealedSharedSales, SharedIndicators, SharedSalesRequest
from cleanroom.secure.spec_requests import recommender_request, summed_groups, summed_request
from cleanroom.spec.analyses import RecommenderMode
from cleanroom.spec.catalogue import load_catalogue
from tasks import PRIVATE
from tasks.context import RunContext
from tasks.secure_setup import PlayerSession


@task(name="secure-sums-with-disclosure-control", **PRIVATE)
def secure_sums(context: RunContext, players: PlayerSession) -> dict[str, RevealedTotals]:
    """Market totals, segments, co-purchase and basket statistics: each party's grids enter as shares
    from its own player, are summed, and only cells that pass disclosure control (minimum group size,
    competitor dominance), evaluated inside MPC, are revealed. Analyses under the same protocol run as
    one computation: one graph to trace and one stacked secure comparison. Results by analysis id."""
    spec = context.pinned.spec
    mark_spent(context.budget_folder, context.run_id)  # noisy figures exist from here on, released or not
    results: dict[str, RevealedTotals] = {}
    for protocol, group in summed_groups(spec).items():
        request = summed_request(spec, protocol, group)
        revealed = players.engine().secure_totals(request)
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
def customer_overlap(context: RunContext) -> tuple[RevealedOverlap | None, SharedIndicators | None]:
    """Count shared customers by private set intersection: every party's node blinds and forwards
    sealed batches through the exchange; only counts at or above the minimum group size are revealed
    (None when the spec approves no overlap). When the spec asks for shared-customer sales, each
    party's indicator bits are split into two random shares sealed to two parties; only where they
    went is returned."""
    spec, nodes = context.pinned.spec, context.nodes
    analysis = spec.customer_overlap
    if analysis is None:
        return None, None
    started = time.perf_counter()
    watch = lambda: nodes.problem("psi", context.parties)  # noqa: E731
    blinded = fully_blinded_sets(context.exchange, context.parties, context.settings.step_timeout, watch)
    nodes.wait("psi", context.parties)
    overlap, indicators = overlap_from_blinded(
        blinded,
        [k.value for k in analysis.join_keys],
        spec.privacy.min_group_size,
        ordered=analysis.shared_customer_sales,
        seconds=time.perf_counter() - started,
    )
    get_run_logger().info(
        "customer overlap: %d groups, %d suppressed, %.1f s",
        len(overlap.counts),
        sum(c is None for c in overlap.counts),
        overlap.seconds,
    )
    return overlap, hand_out(context.exchange, indicators) if indicators else None


@task(name="secure-shared-customer-sales", **PRIVATE)
def shared_customer_sales(
    context: RunContext, players: PlayerSession, shares: SharedIndicators | None
) -> RevealedSharedSales | None:
    """Sales of customers who shop at more than one retailer, from the secret-shared indicators,
    revealed only if the disclosure rules pass inside MPC."""
    if shares is None:
        return None
    spec = context.pinned.spec
    request = SharedSalesRequest(
        protocol=spec.protocol_for(spec.customer_overlap),
        players=[p.name for p in spec.compute_parties],
        rows=shares.rows,
        share_holders=shares.holders,
        min_group_size=spec.privacy.min_group_size,
        max_share_percent=spec.privacy.dominance.max_share_percent,
    )
    players.await_shares()
    revealed = players.engine().shared_sales(request)
    get_run_logger().info(
        "shared-customer sales: %s, %.1f s", "shown" if revealed.shown else "suppressed", revealed.seconds
    )
    return revealed


@task(name="secure-joint-recommender-training", **PRIVATE)
def train_joint_recommender(context: RunContext, players: PlayerSession) -> TrainedFactors | None:
    """Matrix factorization under MPC on every party's purchases (each player staged its party's own
    input): item factors are revealed, each party's user factors go to its own player only. None when
    the spec approves no recommender."""
    spec = context.pinned.spec
    analysis = spec.joint_recommender
    if analysis is None:
        return None
    if analysis.mode is RecommenderMode.SCALABLE:
        return _train_scalable(context, players)
    request = recommender_request(spec, context.pinned.path)
    trained = players.engine().train_factorization(request)
    # Sealed to the data parties now: each node ranks for its customers once its player stopped.
    context.exchange.send(ITEM_FACTORS, json.dumps(trained.item_factors).encode(), to=context.parties)
    get_run_logger().info(
        "joint recommender: %d epochs in %.1f s under %s", request.epochs, trained.seconds, request.protocol.value
    )
    return trained


def _train_scalable(context: RunContext, players: PlayerSession) -> TrainedFactors:
    """Federated ALS: the nodes solve their customers each epoch, the players sum their statistics (and
    the noise) under MPC, the coordinator solves the items from the revealed noisy sum."""
    spec, logger = context.pinned.spec, get_run_logger()
    items = len(load_catalogue(context.pinned.path, spec))
    model = coordinate(
        spec,
        items,
        players.engine(),
        context.exchange,
        context.parties,
        context.settings.step_timeout,
        players.problem,
        logger.info,
    )
    context.exchange.send(ITEM_FACTORS, json.dumps(model.item_factors.tolist()).encode(), to=context.parties)
    logger.info("joint recommender: %.1f s, of which %.1f s in secure sums", model.seconds, model.secure_seconds)
    return TrainedFactors(
        item_factors=model.item_factors.tolist(),
        user_factors_delivered={party: True for party in context.parties},  # each node confirms in recommend
        seconds=model.seconds,
        items_modelled=int(model.released.sum()),
        factors=model.params.factors,
        epochs=model.params.epochs,
        search=model.tried,
    )


@task(name="joint-recommendations", **PRIVATE)
def deliver_recommendations(context: RunContext, trained: TrainedFactors | None) -> RecommenderOutcome | None:
    """Each party's node ranks and evaluates for its own customers, from the revealed item factors
    (sealed to the data parties after training) and the user factors its player kept; the evaluation
    comes back only where the spec shares it."""
    spec = context.pinned.spec
    analysis = spec.joint_recommender
    if analysis is None or trained is None:
        return None
    statuses = context.nodes.run("recommend", context.parties)
    recall = {}
    if analysis.share_evaluation:
        for party in context.parties:
            sealed = context.exchange.receive(EVALUATION.format(party=party), party, context.settings.step_timeout)
            recall[party] = PartyRecall.model_validate_json(sealed)
    config = training_config(analysis)  # the oblivious mode's; the scalable mode's come with `trained`
    return RecommenderOutcome(
        protocol=spec.protocol_for(analysis),
        mode=analysis.mode.value,
        items=len(trained.item_factors),
        items_modelled=trained.items_modelled,
        rho=analysis.rho,
        users_per_party=analysis.users_per_party if analysis.mode is RecommenderMode.OBLIVIOUS else 0,
        factors=trained.factors or config.factors,
        epochs=trained.epochs or config.epochs,
        search=trained.search,
        top_n=analysis.top_n,
        seconds=trained.seconds,
        delivered={
            p: trained.user_factors_delivered.get(p, False) and statuses[p].get("status") == "delivered"
            for p in context.parties
        },
        recall=recall,
    )
