"""The demo consortium on one machine, as separate processes: an embedded Prefect server, the object
store (moto on loopback), and one node per retailer, each in its own folder. A user who already runs a
Prefect server (PREFECT_API_URL) or an object store (CLEANROOM_S3_ENDPOINT_URL) keeps it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cleanroom.errors import ConfigurationError, PartyUnavailableError
from cleanroom.processes import free_port, start_process, stop_processes
from cleanroom.settings import Settings
from cleanroom.storage.moto_server import MotoServer

SERVER_START_SECONDS = 180.0  # a loaded 2-core machine needs far more than Prefect's 20 s default
NODE_START_SECONDS = 180.0


@dataclass
class PrefectServer:
    home: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def start(self, timeout: float = SERVER_START_SECONDS) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        environment = {**os.environ, "PREFECT_HOME": str(self.home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        environment.pop("PREFECT_API_URL", None)
        command = [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        self.process = start_process(command, self.home / "server.log", env=environment)
        deadline = time.monotonic() + timeout
        while not _healthy(self.api_url):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(
                    f"the embedded Prefect server did not answer within {timeout:.0f} s",
                    where=str(self.home / "server.log"),
                    fix="see that log; on a busy machine start one yourself (make server) and set PREFECT_API_URL",
                )
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_processes([self.process])
            self.process = None


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@dataclass
class NodeProcesses:
    """`cleanroom node start` for each party, as its own process with its own folder."""

    configs: dict[str, Path]
    environment: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self) -> NodeProcesses:
        for party, config in self.configs.items():
            self.processes[party] = self.start_one(party, config)
        return self

    def start_one(self, party: str, config: Path) -> subprocess.Popen:
        command = [sys.executable, "-m", "flows.cli", "node", "start", "--party", party, "--config", str(config)]
        return start_process(command, self.log_dir / f"node-{party}.log", env=self.environment)

    def wait_online(self, timeout: float = NODE_START_SECONDS) -> None:
        """Until each node's own worker (not one left from an earlier node) sends heartbeats."""
        from flows.node_service import worker_name
        from tasks.nodes import live_workers

        def online(party: str) -> bool:
            return worker_name(party, self.processes[party].pid) in live_workers(party, within=30)

        deadline = time.monotonic() + timeout
        waiting = list(self.configs)
        while waiting:
            for party in list(waiting):
                if self.processes[party].poll() is not None:
                    raise PartyUnavailableError(
                        f"node exited with code {self.processes[party].returncode}",
                        where=f"party {party}",
                        fix=f"see {self.log_dir / f'node-{party}.log'}",
                    )
            waiting = [p for p in waiting if not online(p)]
            if waiting and time.monotonic() > deadline:
                raise PartyUnavailableError(
                    f"node not online after {timeout:.0f} s",
                    where=f"party {', '.join(waiting)}",
                    fix="see its log",
                )
            time.sleep(0.5)

    def stop(self) -> None:
        stop_processes(list(self.processes.values()), grace=20)
        self.processes.clear()


@contextmanager
def embedded_services(settings: Settings) -> Iterator[dict[str, str]]:
    """The Prefect server and the object store for the block; yields the environment that points at them."""
    with ExitStack() as stack:
        environment: dict[str, str] = {}
        if not os.environ.get("PREFECT_API_URL"):
            server = PrefectServer(settings.workspace.resolve() / "prefect").start()
            stack.callback(server.stop)
            stack.callback(_send_pending_logs)  # runs first: the server must still be there to take them
            environment["PREFECT_API_URL"] = server.api_url
        if not settings.s3_endpoint_url:
            store = MotoServer(settings.runs_root.resolve() / "services").start()
            stack.callback(store.stop)
            environment["CLEANROOM_S3_ENDPOINT_URL"] = store.endpoint_url
        yield environment


def _send_pending_logs() -> None:
    """Flow logs and events still queued in this process, sent (or given up after 5 s each)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=5, at_exit=False)


@contextmanager
def demo_consortium(settings: Settings, parties: list[str]) -> Iterator[str]:
    """The demo's services (as needed) and one node per party, for the block; yields the Prefect API
    URL, which is also in force for the block, as the object store's endpoint is in the environment."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from cleanroom.demo_setup import node_config_path

    with embedded_services(settings) as services:
        os.environ.update({k: v for k, v in services.items() if k.startswith("CLEANROOM_")})
        api_url = services.get("PREFECT_API_URL") or os.environ["PREFECT_API_URL"]
        configs = {party: node_config_path(settings, party) for party in parties}
        nodes = NodeProcesses(configs, {**os.environ, **services}, settings.runs_root / "nodes")
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            try:
                nodes.start().wait_online()
                yield api_url
            finally:
                nodes.stop()
