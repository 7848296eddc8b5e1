"""Every party-side step of the lifecycle, as its node runs it: given a run id and a spec hash (all the
coordinator sends), it works inside the party's workspace and answers with a status only. Anything
another member needs travels sealed through the run's exchange.

    prepare   validate, anonymize, pre-aggregate: an immutable prepared version, pinned for the run
    psi       this party's side of private set intersection
    player    stage the run's player inputs (grids, recommender input, overlap shares), serve the
              player until the coordinator releases it, keep the player's outputs
    recommend top-N lists and evaluation from the revealed item factors and its own user factors
    verify    check the revealed market totals against its own data; its market share, kept here
    countersign  once the approvers released the report: check the ledger entry (run, spec, chain,
              approvals) and the consortium's ledger against its own mirror, then countersign it
    mirror    keep the committed entry in its own mirror of the ledger
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from cleanroom.errors import CleanroomError, PartyUnavailableError, ReleaseRefused, SecureComputationError
from cleanroom.exchange.heartbeat import CoordinatorWatch
from cleanroom.exchange.messages import (
    EVALUATION,
    ITEM_FACTORS,
    LEDGER_COMMITTED,
    LEDGER_ENTRY,
    RELEASE,
    REVEALED_TOTALS,
    player_ready,
    shares_staged,
)
from cleanroom.exchange.store import RunExchange
from cleanroom.locks import exclusive
from cleanroom.network.topology import COORDINATOR
from cleanroom.node.config import Node
from cleanroom.node.player import SandboxedPlayer
from cleanroom.node.registry import resolve, trusted_file
from cleanroom.party.preparation import prepare_party
from cleanroom.party.psi_session import run_session
from cleanroom.party.recommendations import deliver_recommendations, prepare_recommender_input
from cleanroom.party.runs import PartyRun
from cleanroom.party.scalable_recommendations import Purchases, prepare_scalable_input
from cleanroom.party.scalable_recommendations import deliver as deliver_scalable
from cleanroom.party.verification import check_contribution, load_own_aggregates, write_market_share
from cleanroom.privacy.noise_reserve import NOISE_DIR, NoiseReserve
from cleanroom.privacy.noise_shares import noise_margin, write_noise_shares
from cleanroom.psi.indicators import receive_shares
from cleanroom.recommend.joint_epochs import USER_FACTORS_FILE, Participant
from cleanroom.release.countersign import entry_problem
from cleanroom.release.ledger import (
    SignedEntry,
    against_mirror,
    chain_problems,
    ledger_mirror,
    read_mirror,
    read_store,
    sign_entry,
    write_mirror,
)
from cleanroom.secure.factorization import USER_FACTORS_OUTPUT_PATH
from cleanroom.secure.shared_sales import indicator_share_file
from cleanroom.spec import PinnedSpec
from cleanroom.spec.analyses import RecommenderMode
from cleanroom.spec.catalogue import load_catalogue
from cleanroom.spec.models import CollaborationSpec

log = logging.getLogger("cleanroom.node")
SERVE_POLL_SECONDS = 1.0  # how often a serving player's step looks for its release (one request each)
PLAYER_LOCK = Path("runs") / ".player.lock"  # one player per node at a time: it owns the spec's endpoint
Status = dict[str, Any]


@dataclass
class NodeRun:
    """One run as one node sees it: its signed spec, its run folder, its exchange."""

    node: Node
    pinned: PinnedSpec
    run: PartyRun
    exchange: RunExchange

    @classmethod
    def open(cls, node: Node, run_id: str, spec_sha256: str, player: bool = True) -> NodeRun:
        """`player=False` for the steps that start after the player stopped."""
        pinned = resolve(node, spec_sha256)  # refuses a spec its party has not signed
        run = PartyRun(node.workspace, run_id).create(player)
        return cls(node, pinned, run, RunExchange.for_run(node.store, pinned.spec, run_id, node.member))

    @property
    def party(self) -> str:
        return self.node.party

    @cached_property
    def stop_waiting(self) -> CoordinatorWatch:
        """Why to give up now: the run was closed, or the coordinator fell silent (it died)."""
        return CoordinatorWatch(self.exchange, self.node.config.timeouts.coordinator_silence_seconds)

    def wait(self, name: str, sender: str) -> bytes:
        return self.exchange.receive(name, sender, _message_timeout(self.node), self.stop_waiting)


def prepare(node: Node, run_id: str, spec_sha256: str) -> Status:
    context = NodeRun.open(node, run_id, spec_sha256)
    summary = prepare_party(context.pinned.spec, node.party, node.workspace)
    context.run.pin(summary.version)
    log.info("prepare %s: %s, version %s", run_id, summary.status, summary.version[:12])
    return {
        "status": summary.status,
        "expectations_evaluated": summary.expectations_evaluated,
        "failed_warning": summary.failed_warning,
        "quarantined": summary.quarantined,
        "k_anonymity_met": summary.k_anonymity_met,
    }


def psi(node: Node, run_id: str, spec_sha256: str) -> Status:
    context = NodeRun.open(node, run_id, spec_sha256)
    prepared = context.run.wait_prepared(_message_timeout(node), context.stop_waiting)
    started = time.monotonic()
    run_session(
        context.exchange,
        context.pinned.spec,
        node.party,
        prepared,
        context.run,
        _message_timeout(node),
        context.stop_waiting,
    )
    log.info("psi %s: done in %.1f s", run_id, time.monotonic() - started)
    return {"status": "done"}


def player(node: Node, run_id: str, spec_sha256: str) -> Status:
    """Stage inputs, serve until released (or the coordinator falls silent, or the player dies)."""
    context = NodeRun.open(node, run_id, spec_sha256)
    spec, run = context.pinned.spec, context.run
    _stage_player_inputs(context)
    tls = None if node.settings.dev_plaintext_players else node.tls(trusted_file(node, spec_sha256))
    timeouts = node.config.timeouts
    serving = SandboxedPlayer(
        node.party, spec.cluster(), run.player_dir, run.root / "logs", tls, node.config.listen_host
    )
    busy = lambda waited: PartyUnavailableError(  # noqa: E731
        f"another run's player kept the endpoint for {waited:.0f} s", where=f"party {node.party}"
    )
    try:
        with exclusive(node.workspace / PLAYER_LOCK, timeouts.message_seconds, busy, context.stop_waiting):
            serving.start(timeouts.player_start_seconds)
            context.exchange.send(player_ready(node.party), b"", [COORDINATOR])
            _stage_overlap_shares(context, serving)  # they arrive once PSI is done, while the player serves
            _train_scalable_recommender(context, serving)  # its epochs, while the player serves
            reason = _serve(context, serving)
    finally:
        serving.stop()
        _keep_outputs_drop_inputs(run)
    log.info("player %s: stopped (%s)", run_id, reason)
    if reason != "released":
        raise PartyUnavailableError(f"player stopped: {reason}", where=f"party {node.party}")
    return {"status": "released", "plaintext": tls is None}


def recommend(node: Node, run_id: str, spec_sha256: str) -> Status:
    context = NodeRun.open(node, run_id, spec_sha256, player=False)
    spec = context.pinned.spec
    analysis = spec.joint_recommender
    assert analysis is not None
    item_factors = np.asarray(json.loads(context.wait(ITEM_FACTORS, COORDINATOR)), dtype=np.float64)
    if analysis.mode is RecommenderMode.SCALABLE:
        if not (context.run.outputs_dir / USER_FACTORS_FILE).is_file():
            raise SecureComputationError("it took part in no epoch of the training", where=f"party {node.party}")
        product_ids = load_catalogue(context.pinned.path, spec)
        recall = deliver_scalable(analysis, context.run, context.run.prepared(), item_factors, product_ids)
    else:
        if not (context.run.outputs_dir / USER_FACTORS_OUTPUT_PATH).is_file():
            raise SecureComputationError("its player wrote no user factors", where=f"party {node.party}")
        recall = deliver_recommendations(
            spec, context.pinned.path, context.run.prepared(), context.run, item_factors
        )
    log.info("recommend %s: %s", run_id, recall.model_dump_json())  # this party's own figures, kept here
    if analysis.share_evaluation:  # the spec approves sharing it: sealed to the coordinator only
        context.exchange.send(
            EVALUATION.format(party=node.party), recall.model_dump_json().encode(), [COORDINATOR]
        )
    return {"status": "delivered", "evaluation_shared": analysis.share_evaluation}


def verify(node: Node, run_id: str, spec_sha256: str) -> Status:
    context = NodeRun.open(node, run_id, spec_sha256, player=False)
    analysis = context.pinned.spec.category_month_sales
    revealed = json.loads(context.wait(REVEALED_TOTALS, COORDINATOR))
    prepared = context.run.wait_prepared(_message_timeout(node), context.stop_waiting)
    own = load_own_aggregates(prepared, analysis.cells)
    margin = noise_margin(analysis, len(context.pinned.spec.compute_parties))
    check = check_contribution(node.party, own, revealed["sales_cents"], revealed["shown"], margin)
    write_market_share(context.run.reports_dir, analysis, own, revealed["sales_cents"])
    log.info("verify %s: %s", run_id, check.to_dict())
    return {"status": "verified", "consistent": check.consistent, "cells_checked": check.cells_checked}


def countersign(node: Node, run_id: str, spec_sha256: str) -> Status:
    context = NodeRun.open(node, run_id, spec_sha256, player=False)
    spec = context.pinned.spec
    offered = SignedEntry.model_validate_json(context.wait(LEDGER_ENTRY, COORDINATOR))
    mirror = read_mirror(ledger_mirror(node.workspace, spec.collaboration))
    committed = read_store(node.store, spec.exchange_bucket, spec.collaboration)
    problems = against_mirror(committed, [m.entry for m in mirror], node.party)
    problem = "; ".join(problems) or entry_problem(offered, spec, spec_sha256, run_id, committed or mirror)
    if problem:
        raise ReleaseRefused(
            f"{node.party} does not countersign the release: {problem}",
            where=f"run {run_id}",
            fix="nothing was released; compare the consortium's ledger with the mirrors (cleanroom ledger verify)",
        )
    log.info("countersign %s: entry %d", run_id, offered.index)
    return {"status": "countersigned", "signature": sign_entry(offered.entry, node.member.signing_key)}


def mirror(node: Node, run_id: str, spec_sha256: str) -> Status:
    context = NodeRun.open(node, run_id, spec_sha256, player=False)
    committed = SignedEntry.model_validate_json(context.wait(LEDGER_COMMITTED, COORDINATOR))
    problems = chain_problems([committed], context.pinned.spec, first_index=committed.index)
    if problems:
        raise ReleaseRefused(
            "; ".join(problems), where=f"run {run_id}", fix="check the ledger (cleanroom ledger verify)"
        )
    write_mirror(ledger_mirror(node.workspace, context.pinned.spec.collaboration), committed)
    return {"status": "mirrored", "index": committed.index}


STEPS: dict[str, Callable[[Node, str, str], Status]] = {
    "prepare": prepare,
    "psi": psi,
    "player": player,
    "recommend": recommend,
    "verify": verify,
    "countersign": countersign,
    "mirror": mirror,
}


# The coordinator's message a step starts from: its flow run starts once the message is there, so it
# takes no CPU while the node is busiest (players starting, PSI) and its time in the UI is its work.
STARTS_WITH = {
    "recommend": ITEM_FACTORS,
    "verify": REVEALED_TOTALS,
    "countersign": LEDGER_ENTRY,
    "mirror": LEDGER_COMMITTED,
}
STARTS_AFTER = {"recommend": "player", "mirror": "countersign"}  # the player hands over user factors as it stops


def await_start(node: Node, run_id: str, spec_sha256: str, step: str) -> None:
    """Return once the step's starting message is in the run's exchange (at once for other steps);
    raises if the run closes, the coordinator falls silent, or nothing comes in time."""
    if step in STARTS_WITH:
        context = NodeRun.open(node, run_id, spec_sha256, player=False)
        context.exchange.receive(STARTS_WITH[step], COORDINATOR, _message_timeout(node), context.stop_waiting)


def later_steps(spec: CollaborationSpec) -> list[str]:
    """The steps after preparation that this spec's lifecycle asks of every data party's node."""
    return [
        *(["psi"] if spec.customer_overlap else []),
        "player",
        *(["recommend"] if spec.joint_recommender else []),
        "verify",
    ]


# After approval, in a session of their own: nothing of the node waits through the approval window (a
# node restarted meanwhile countersigns all the same).
RELEASE_STEPS = ["countersign", "mirror"]


def _stage_player_inputs(context: NodeRun) -> None:
    """Copy this run's inputs where its player can read them, and nothing else."""
    spec, run = context.pinned.spec, context.run
    prepared = run.prepared()
    for grid in prepared.glob("*.i64"):
        shutil.copyfile(grid, run.player_dir / grid.name)
    write_noise_shares(spec, context.party, run.player_dir)  # fresh for every run, never kept
    analysis = spec.joint_recommender
    if analysis is not None and analysis.mode is RecommenderMode.SCALABLE:
        prepare_scalable_input(spec, context.pinned.path, prepared, run)
    elif analysis is not None:
        prepare_recommender_input(spec, context.pinned.path, prepared, run)


def _while_serving(
    context: NodeRun, serving: SandboxedPlayer, waiting_for: str
) -> Callable[[], CleanroomError | None]:
    """Why to stop waiting for the coordinator's next message while the player serves."""

    def stop_waiting() -> CleanroomError | None:
        if not serving.alive():
            return PartyUnavailableError("its player exited", where=f"party {context.party}")
        if context.exchange.has(RELEASE):
            return PartyUnavailableError(f"released before {waiting_for} came", where=f"party {context.party}")
        return context.stop_waiting()

    return stop_waiting


def _stage_overlap_shares(context: NodeRun, serving: SandboxedPlayer) -> None:
    """The random shares of overlap indicators this party holds, for the shared-sales computation."""
    spec, run = context.pinned.spec, context.run
    overlap = spec.customer_overlap
    if overlap is None or not overlap.shared_customer_sales:
        return
    stop_waiting = _while_serving(context, serving, "the shares")
    parties = [p.name for p in spec.data_parties]
    timeout = _message_timeout(context.node)
    for owner, share in receive_shares(context.exchange, parties, context.party, timeout, stop_waiting).items():
        (run.player_dir / indicator_share_file(owner)).write_bytes(share)
    context.exchange.send(shares_staged(context.party), b"", [COORDINATOR])


def _train_scalable_recommender(context: NodeRun, serving: SandboxedPlayer) -> None:
    """This party's side of the scalable recommender's trainings (see recommend.joint_epochs)."""
    spec, run = context.pinned.spec, context.run
    analysis = spec.joint_recommender
    if analysis is None or analysis.mode is not RecommenderMode.SCALABLE:
        return
    started = time.monotonic()
    participant = Participant(
        analysis,
        Purchases.load(run.evaluation_dir),
        context.exchange,
        context.party,
        context.party in {p.name for p in spec.compute_parties},
        run.player_dir,
        run.outputs_dir,
        _message_timeout(context.node),
        _while_serving(context, serving, "the next item factors"),
        NoiseReserve(context.node.workspace / NOISE_DIR),
    )
    trainings = participant.take_part()
    log.info("recommender %s: %d trainings in %.1f s", run.run_id, trainings, time.monotonic() - started)
    if participant.noise_ready or participant.noise_drawn:  # counts only: never a draw
        log.info(
            "recommender %s: noise: %d draws from the reserve, %d drawn in the run",
            run.run_id,
            participant.noise_ready,
            participant.noise_drawn,
        )


def _serve(context: NodeRun, serving: SandboxedPlayer) -> str:
    """Why serving ended: released, the run closed, the coordinator silent, the player dead, too long."""
    limit = context.node.config.timeouts.player_max_seconds
    started = time.monotonic()
    while True:
        time.sleep(SERVE_POLL_SECONDS)
        if not serving.alive():
            return "the player process exited"
        if context.exchange.has(RELEASE):
            return "released"
        problem = context.stop_waiting()
        if problem is not None:
            return problem.message
        if time.monotonic() - started > limit:
            return f"served longer than {limit:.0f} s"


def _keep_outputs_drop_inputs(run: PartyRun) -> None:
    """The player's outputs move to the run's outputs; its inputs (grids, shares) are deleted."""
    produced = run.player_dir / USER_FACTORS_OUTPUT_PATH
    if produced.is_file():
        produced.replace(run.outputs_dir / USER_FACTORS_OUTPUT_PATH)
    shutil.rmtree(run.player_dir, ignore_errors=True)


def _message_timeout(node: Node) -> float:
    return node.config.timeouts.message_seconds


def step_log(workspace: Path) -> Path:
    return workspace / "logs" / "node.log"
