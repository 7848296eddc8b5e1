"""The TLS terminator in front of a node's player, and the coordinator's client side of it.

stunnel (Debian's stunnel4) with mutual TLS 1.3: a peer must present one of the certificates the spec
pins, issued by the consortium CA (`verifyChain` + `verifyPeer` over a bundle of exactly those), and
a dialled peer must be the party it is dialled as (`checkHost`). The plaintext side is a Unix socket
that only the sandboxed player's bridges use. With TLS switched off (development flag) socat forwards
the same sockets in plaintext, so the topology is identical and a capture can tell the difference.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cleanroom.errors import PartyUnavailableError
from cleanroom.network.topology import IN_SOCKET, SOCAT_BLOCK, out_socket
from cleanroom.processes import port_listening, start_process, stop_processes


@dataclass(frozen=True)
class TlsMaterial:
    certificate: Path  # this member's certificate (PEM)
    key: Path  # its private key
    trusted: Path  # the CA and every pinned member certificate, one PEM bundle


@dataclass
class Terminator:
    """One member's tunnels: optionally accept on `listen` (a node) and dial every peer in `peers`."""

    sockets: Path
    log: Path
    tls: TlsMaterial | None  # None: plaintext, development only
    peers: dict[str, str]  # party -> endpoint host:port
    listen: str | None = None  # address:port the node accepts its peers on
    processes: list[subprocess.Popen] = field(default_factory=list)

    def start(self, timeout: float = 30.0) -> Terminator:
        self.sockets.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if self.tls is not None:
            config = self.log.with_suffix(".conf")
            config.write_text(stunnel_config(self.sockets, self.log, self.tls, self.peers, self.listen))
            self.processes.append(start_process(["stunnel", str(config)], self.log))
        else:
            self.processes += [start_process(command, self.log) for command in plaintext_forwarders(self)]
        self._wait_until_listening(timeout)
        return self

    def _wait_until_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        expected = [self.sockets / out_socket(p) for p in self.peers]
        port = int(self.listen.rsplit(":", 1)[1]) if self.listen else None
        while not (all(p.exists() for p in expected) and (port is None or port_listening(port))):
            exited = [p for p in self.processes if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                self.stop()
                raise PartyUnavailableError(
                    "the TLS terminator did not start" + (f" on {self.listen}" if self.listen else ""),
                    where=str(self.log),
                    fix="check that the endpoint's port is free and the certificate files are readable",
                )
            time.sleep(0.05)

    def stop(self) -> None:
        stop_processes(self.processes, grace=5)
        self.processes.clear()


def stunnel_config(sockets: Path, log: Path, tls: TlsMaterial, peers: dict[str, str], listen: str | None) -> str:
    common = [
        f"cert = {tls.certificate}",
        f"key = {tls.key}",
        f"CAfile = {tls.trusted}",
        "verifyChain = yes",  # issued by the consortium CA
        "verifyPeer = yes",  # and one of the certificates the spec pins
        "sslVersionMin = TLSv1.3",
    ]
    lines = ["foreground = yes", "syslog = no", f"output = {log}", "pid =", "debug = 4", ""]
    if listen is not None:
        lines += ["[in]", f"accept = {listen}", f"connect = {sockets / IN_SOCKET}", *common]
        lines += ["socket = l:TCP_NODELAY=1", ""]
    for party, endpoint in peers.items():
        lines += [f"[out-{party}]", "client = yes", f"accept = {sockets / out_socket(party)}"]
        lines += [f"connect = {endpoint}", f"checkHost = {party}", "delay = yes", *common]
        lines += ["socket = r:TCP_NODELAY=1", ""]
    return "\n".join(lines)


def plaintext_forwarders(terminator: Terminator) -> list[list[str]]:
    sockets = terminator.sockets
    commands = []
    if terminator.listen is not None:
        host, port = terminator.listen.rsplit(":", 1)
        accept = f"TCP-LISTEN:{port},bind={host},reuseaddr,fork,nodelay"
        commands.append(["socat", "-b", SOCAT_BLOCK, accept, f"UNIX-CONNECT:{sockets / IN_SOCKET}"])
    for party, endpoint in terminator.peers.items():
        accept = f"UNIX-LISTEN:{sockets / out_socket(party)},fork,mode=600,unlink-early"
        commands.append(["socat", "-b", SOCAT_BLOCK, accept, f"TCP:{endpoint},nodelay"])
    return commands
