"""moto's S3-compatible server on loopback: the embedded default object store (in memory only)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cleanroom.errors import StorageError
from cleanroom.secure.network import free_port, port_open


@dataclass
class MotoServer:
    """A real HTTP server in its own process; `stop()` always ends it."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoServer:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / "moto-server.log", "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not port_open(f"127.0.0.1:{self.port}"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StorageError(
                    "the local S3 server (moto) did not start",
                    where=str(self.log_dir / "moto-server.log"),
                    fix="check that moto[server] is installed (make setup) or set CLEANROOM_S3_ENDPOINT_URL",
                )
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
