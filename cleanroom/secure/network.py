"""The player network: one TF Encrypted player process per compute party, on loopback ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cleanroom.errors import PartyUnavailableError
from cleanroom.party.host import LocalPartyHost


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex((host, int(port))) == 0


@dataclass
class PlayerNetwork:
    """Player processes started through each party's host; `stop()` always ends them."""

    players: list[str]
    host: LocalPartyHost
    run_dir: Path
    hostmap: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def config_path(self) -> Path:
        return self.run_dir / "players.json"

    def start(self, timeout: float = 120.0) -> PlayerNetwork:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.hostmap = {name: f"127.0.0.1:{free_port()}" for name in self.players}
        self.config_path.write_text(json.dumps(self.hostmap, indent=2))
        for name in self.players:
            self.processes[name] = self.host.start_process(
                name,
                ["-m", "cleanroom.secure.player", name, "--config", str(self.config_path.resolve())],
                log_name="player.log",
            )
        self._wait_until_serving(timeout)
        return self

    def _wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = set(self.players)
        while waiting:
            for name in list(waiting):
                code = self.processes[name].poll()
                if code is not None:
                    self.stop()
                    raise PartyUnavailableError(
                        f"player process exited with code {code} before serving",
                        where=f"party {name}",
                        fix="see logs/player.log in that party's workspace (code 4: no secure randomness)",
                    )
                if port_open(self.hostmap[name]):
                    waiting.discard(name)
            if waiting and time.monotonic() > deadline:
                self.stop()
                raise PartyUnavailableError(
                    f"player(s) {', '.join(sorted(waiting))} not serving after {timeout:.0f} s",
                    where="player network",
                    fix="check that the machine is not overloaded and the ports are free",
                )
            time.sleep(0.2)

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.processes.items()}

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self.processes.clear()

    def __enter__(self) -> PlayerNetwork:
        return self.start() if not self.processes else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
