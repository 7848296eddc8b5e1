"""Phase 3: secure computation setup — every data party's node serves its TF Encrypted player behind
mutual TLS at its spec endpoint; the coordinator's secure client joins them over the network."""

import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prefect import get_run_logger

from cleanroom.errors import CleanroomError, PartyUnavailableError
from cleanroom.exchange.messages import RELEASE, player_ready, shares_staged
from cleanroom.locks import exclusive
from cleanroom.network.topology import COORDINATOR, split_endpoint
from cleanroom.network.tunnels import Terminator
from cleanroom.node.player import socket_dir
from cleanroom.secure.engine import RemoteEngine
from tasks.context import RunContext

PLAYERS_LOCK = "players.lock"
RELEASE_GRACE_SECONDS = 60.0


@dataclass
class PlayerSession:
    """The nodes' players for one run: asked to start early (they start while PSI runs), joined by
    the coordinator's TLS terminator and secure client once every one of them serves."""

    context: RunContext
    stack: ExitStack
    sockets: Path = field(default_factory=lambda: socket_dir(COORDINATOR))
    _engine: RemoteEngine | None = None

    def problem(self) -> CleanroomError | None:
        return self.context.nodes.problem("player", self.context.parties)

    def engine(self) -> RemoteEngine:
        """Wait until every player serves, then join them (once)."""
        if self._engine is None:
            context, settings = self.context, self.context.settings
            for party in context.parties:
                context.exchange.receive(player_ready(party), party, settings.player_start_timeout, self.problem)
            cluster, tls = context.pinned.spec.cluster(), context.tls()
            _, port = split_endpoint(cluster.client)
            log, listen = context.run_dir / "terminator.log", f"{settings.listen_host}:{port}"
            terminator = Terminator(self.sockets, log, tls, cluster.peers_of(COORDINATOR), listen=listen).start()
            self.stack.callback(terminator.stop)
            mode = "mutual TLS" if tls else "plaintext: development only"
            get_run_logger().info("%d players serving (%s)", len(context.parties), mode)
            self._engine = RemoteEngine(
                cluster.internal(),
                self.sockets,
                context.run_dir,
                self.problem,
                settings.step_timeout,
                diagnose_seconds=settings.node_offline_after + 10,
            )
            self.stack.callback(self._engine.close)  # before the terminator stops (callbacks run last first)
        return self._engine

    def await_shares(self) -> None:
        """Every node has put the overlap-indicator shares it holds where its player reads them."""
        for party in self.context.parties:
            self.context.exchange.receive(
                shares_staged(party), party, self.context.settings.step_timeout, self.problem
            )


@contextmanager
def player_session(context: RunContext) -> Iterator[PlayerSession]:
    """Players serve for the block; afterwards (also after a failure) they are released and every
    node returns to idle. One session at a time per coordinator: the spec's endpoints are fixed."""
    settings, parties = context.settings, context.parties
    busy = lambda waited: PartyUnavailableError(  # noqa: E731
        f"another run's secure computation held the players for {waited:.0f} s", where="coordinator"
    )
    with exclusive(settings.locks_root / PLAYERS_LOCK, settings.step_timeout, busy), ExitStack() as stack:
        context.nodes.start(parties)  # already started for preparation: their players are starting
        session = PlayerSession(context, stack)
        stack.callback(shutil.rmtree, session.sockets, ignore_errors=True)
        stack.callback(context.nodes.wait_finished, "player", parties, RELEASE_GRACE_SECONDS)
        stack.callback(context.exchange.send, RELEASE, b"", parties)
        yield session
