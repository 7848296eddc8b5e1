"""Phase 3: secure computation setup — one TF Encrypted player process per data party."""

from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger, task

from cleanroom.secure.network import PlayerNetwork
from cleanroom.settings import Adapters
from cleanroom.spec import PinnedSpec
from tasks import PRIVATE


@task(name="start-player-network", **PRIVATE)
def start_player_network(pinned: PinnedSpec, adapters: Adapters, run_id: str) -> PlayerNetwork:
    """Start a player (TF gRPC server on loopback) in each data party's workspace: compute parties run
    the protocol, input parties only secret-share their own inputs and receive their own outputs.
    A player refuses to start without TF Encrypted's secure randomness."""
    players = [p.name for p in pinned.spec.data_parties]
    network = PlayerNetwork(players, adapters.party_host, adapters.settings.runs_root / run_id)
    network.start(timeout=adapters.settings.player_start_timeout)
    get_run_logger().info(
        "%d players serving for protocol %s", len(players), pinned.spec.secure_computation.protocol.value
    )
    return network


@task(name="stop-player-network", **PRIVATE)
def stop_player_network(network: PlayerNetwork) -> None:
    """Stop every player process (also after a failed phase)."""
    network.stop()


@contextmanager
def player_network(pinned: PinnedSpec, adapters: Adapters, run_id: str) -> Iterator[PlayerNetwork]:
    network = start_player_network(pinned, adapters, run_id)
    try:
        yield network
    finally:
        stop_player_network(network)
