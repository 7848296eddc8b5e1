"""How secure-computation processes reach each other.

The members of a computation are the data parties' players and the coordinator's client (TF's
eager runtime places some of a graph's tensors on the client, and players fetch them from it). Each
runs in a sandbox whose network has loopback only, and inside every sandbox the same address means
the same member: `127.0.0.1:<base + i>` for the i-th data party of the spec, `127.0.0.1:<base - 1>`
for the client. For the member itself that port is its TF server; for any other it is a bridge
(socat) to a Unix socket behind which the host's TLS terminator (stunnel) dials that member's
endpoint. TF hands the client's cluster spec to every player, so one address map must hold
everywhere: these loopback addresses do.

    sandbox of A                       host of A                  host of B         sandbox of B
    player A ─ 127.0.0.1:pB ─ socat ─ out-b.sock ─ stunnel ══ TLS ══ stunnel ─ in.sock ─ socat ─ player B
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

COORDINATOR = "coordinator"  # the member name of the coordinator's secure client
INTERNAL_PORT_BASE = 47100
CLIENT_JOB = "localhost"  # TF's name for the client's own job
IN_SOCKET = "in.sock"
ENDPOINT_PATTERN = r"^[A-Za-z0-9.-]+:[0-9]{1,5}$"
SOCAT_BLOCK = str(1 << 20)  # bytes per read: tensors are megabytes; socat's default 8 KiB costs many syscalls


def out_socket(member: str) -> str:
    return f"out-{member}.sock"


@dataclass(frozen=True)
class ClusterAddresses:
    """Every member's endpoint (host:port, from the spec): the players in spec order, then the client."""

    players: dict[str, str]
    client: str

    @property
    def endpoints(self) -> dict[str, str]:
        return {**self.players, COORDINATOR: self.client}

    def hostmap(self) -> dict[str, str]:
        """The players' loopback addresses inside every sandbox (TF Encrypted's RemoteConfig order)."""
        return {name: f"127.0.0.1:{INTERNAL_PORT_BASE + i}" for i, name in enumerate(self.players)}

    def internal(self) -> dict[str, str]:
        return {**self.hostmap(), COORDINATOR: f"127.0.0.1:{INTERNAL_PORT_BASE - 1}"}

    def peers_of(self, member: str) -> dict[str, str]:
        """The endpoints `member` dials: every other member."""
        return {name: endpoint for name, endpoint in self.endpoints.items() if name != member}


def split_endpoint(endpoint: str) -> tuple[str, int]:
    if not re.match(ENDPOINT_PATTERN, endpoint):
        raise ValueError(f"not host:port: {endpoint!r}")
    host, port = endpoint.rsplit(":", 1)
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port out of range: {endpoint!r}")
    return host, int(port)


def bridge_commands(sockets: Path, internal: dict[str, str], own: str) -> list[list[str]]:
    """socat bridges inside a sandbox: the member's own port behind in.sock, every other member's
    loopback address forwarded to its out-<member>.sock."""
    commands = []
    for name, address in internal.items():
        port = address.rsplit(":", 1)[1]
        if name == own:
            listen = f"UNIX-LISTEN:{sockets / IN_SOCKET},fork,mode=600,unlink-early"
            commands.append(["socat", "-b", SOCAT_BLOCK, listen, f"TCP:127.0.0.1:{port},nodelay"])
        else:
            listen = f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay"
            commands.append(["socat", "-b", SOCAT_BLOCK, listen, f"UNIX-CONNECT:{sockets / out_socket(name)}"])
    return commands
