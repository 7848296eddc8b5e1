"""moto's S3-compatible server: the embedded default object store (in memory only) of the demo and
the tests, shared by the coordinator and every party node."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cleanroom.errors import StorageError
from cleanroom.processes import free_port, port_open, start_process, stop_processes


@dataclass
class MotoServer:
    """A real HTTP server in its own process; `stop()` always ends it."""

    log_dir: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    environment: dict[str, str] = field(default_factory=dict)  # extra variables (moto's own switches)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoServer:
        self.process = start_process(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            self.log_dir / "moto-server.log",
            env={**os.environ, **self.environment},
        )
        deadline = time.monotonic() + timeout
        while not port_open(f"{self.host}:{self.port}"):
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
        if self.process is not None:
            stop_processes([self.process])
            self.process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
