"""A node's secure-computation player for one run: the TF Encrypted player in its sandbox (the run's
player folder is all it can read), behind the node's TLS terminator on the spec's endpoint."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from cleanroom.errors import PartyUnavailableError
from cleanroom.network.sandbox import SOCKETS_INSIDE, require_tools, sandboxed
from cleanroom.network.topology import ClusterAddresses, split_endpoint
from cleanroom.network.tunnels import Terminator, TlsMaterial
from cleanroom.processes import process_alive, start_process, stop_processes
from cleanroom.secure.player import NO_SECURE_RANDOMNESS, SERVING

SOCKETS_ROOT = Path("/tmp")


def socket_dir(member: str) -> Path:
    """A short private folder for the Unix sockets (their paths must stay under 108 bytes), named
    after the process that made it; folders left by processes that were killed are removed first."""
    remove_orphaned_socket_dirs()
    return Path(tempfile.mkdtemp(prefix=f"cr-{member}-{os.getpid()}-", dir=SOCKETS_ROOT))


def remove_orphaned_socket_dirs() -> list[Path]:
    """Socket folders whose process is gone (SIGKILL leaves them; nothing else does)."""
    removed = []
    for folder in SOCKETS_ROOT.glob("cr-*-*-*"):
        pid = folder.name.split("-")[-2]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)  # another user's folder stays: not ours to remove
            removed.append(folder)
    return removed


@dataclass
class SandboxedPlayer:
    party: str
    cluster: ClusterAddresses
    workdir: Path  # the run's player folder: inputs in, the player's outputs out
    log_dir: Path
    tls: TlsMaterial | None  # None: plaintext (development only)
    listen_host: str
    sockets: Path = field(default_factory=Path)
    terminator: Terminator | None = None
    process: subprocess.Popen | None = None

    def start(self, timeout: float) -> SandboxedPlayer:
        require_tools("bwrap", "socat", *(["stunnel"] if self.tls else []))
        self.sockets = socket_dir(self.party)
        _, port = split_endpoint(self.cluster.players[self.party])
        self.terminator = Terminator(
            self.sockets,
            self.log_dir / "terminator.log",
            self.tls,
            self.cluster.peers_of(self.party),
            listen=f"{self.listen_host}:{port}",
        )
        try:
            self.terminator.start()
            command = [
                sys.executable,
                "-m",
                "cleanroom.secure.player",
                self.party,
                "--cluster",
                json.dumps(self.cluster.internal()),
                "--sockets",
                str(SOCKETS_INSIDE),
            ]
            self.process = start_process(
                sandboxed(command, self.workdir, self.sockets), self.log_dir / "player.log", stdout=subprocess.PIPE
            )
            self._wait_until_serving(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_serving(self, timeout: float) -> None:
        assert self.process is not None and self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            line = self.process.stdout.readline().decode() if ready else ""
            if SERVING in line:
                return
            if self.process.poll() is not None:
                code = self.process.returncode
                reason = "no secure randomness" if code == NO_SECURE_RANDOMNESS else f"exit code {code}"
                raise PartyUnavailableError(
                    f"the player stopped before serving ({reason})",
                    where=f"party {self.party}",
                    fix=f"see {self.log_dir / 'player.log'} on its node",
                )
        raise PartyUnavailableError(
            f"the player did not serve within {timeout:.0f} s",
            where=f"party {self.party}",
            fix="is the host overloaded?",
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            stop_processes([self.process], grace=5)
        if self.terminator is not None:
            self.terminator.stop()
        if self.sockets != Path():
            shutil.rmtree(self.sockets, ignore_errors=True)
