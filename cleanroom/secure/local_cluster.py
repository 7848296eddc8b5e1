"""The secure-computation topology of a consortium, on this machine, without nodes or Prefect: every
player sandboxed behind its own TLS terminator on a loopback endpoint, the client joining through the
coordinator's, certificates from a throwaway CA. For tests and benchmarks of what crosses the wire."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from cleanroom.crypto.pki import CA_CERT, init_ca, issue_certificate
from cleanroom.network.topology import COORDINATOR, ClusterAddresses
from cleanroom.network.tunnels import Terminator, TlsMaterial
from cleanroom.node.player import SandboxedPlayer, socket_dir
from cleanroom.processes import free_ports
from cleanroom.secure.engine import RemoteEngine


def throwaway_pki(root: Path, members: list[str]) -> dict[str, TlsMaterial]:
    """A CA and a certificate per member; every member trusts exactly these."""
    init_ca(root / "ca", "local-cluster")
    for member in members:
        issue_certificate(root / "ca", member, root / "certificates")
    trusted = root / "trusted.pem"
    pems = [(root / "ca" / CA_CERT).read_text()] + [
        (root / "certificates" / f"{m}.crt").read_text() for m in members
    ]
    trusted.write_text("".join(pems))
    return {
        m: TlsMaterial(root / "certificates" / f"{m}.crt", root / "certificates" / f"{m}.key", trusted)
        for m in members
    }


@contextmanager
def local_cluster(workdirs: dict[str, Path], root: Path, tls: bool = True) -> Iterator[RemoteEngine]:
    """Players for the parties in `workdirs` (each reads only its folder) and a client engine."""
    *ports, client = free_ports(len(workdirs) + 1)
    cluster = ClusterAddresses(
        players={party: f"127.0.0.1:{port}" for party, port in zip(workdirs, ports)}, client=f"127.0.0.1:{client}"
    )
    material = throwaway_pki(root / "pki", [*workdirs, COORDINATOR]) if tls else {}
    with ExitStack() as stack:
        for party, workdir in workdirs.items():
            player = SandboxedPlayer(party, cluster, workdir, root / party, material.get(party), "127.0.0.1")
            stack.callback(player.stop)
            player.start(timeout=180)
        sockets = socket_dir(COORDINATOR)
        stack.callback(shutil.rmtree, sockets, ignore_errors=True)
        listen = cluster.client
        terminator = Terminator(
            sockets,
            root / "client-terminator.log",
            material.get(COORDINATOR),
            cluster.peers_of(COORDINATOR),
            listen,
        )
        stack.callback(terminator.stop)
        terminator.start()
        engine = RemoteEngine(cluster.internal(), sockets, root)
        stack.callback(engine.close)
        yield engine
