"""The consortium across hosts: the shared services (Prefect server, object store), the coordinator and
every party node each in its own network namespace, each node under its own Unix user with a
workspace nobody else can read, joined by a bridge the tests capture on."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from cleanroom.settings import Settings
from cleanroom.spec import PinnedSpec, pin_spec
from tests.conftest import home
from tests.e2e.hosts import HostProcess, Network, own_privately, run_on, sh, tools_present, traversable

PLAYER_PORT = 7100
COORDINATOR_SILENCE = 20  # seconds without the coordinator's heartbeats before a node stops its player
COORDINATOR_USER = "cr-coordinator"
PROJECT = Path(__file__).resolve().parents[2]


def party_user(party: str) -> str:
    return f"cr-{party}"


@dataclass
class Consortium:
    root: Path
    network: Network
    spec_path: Path  # the coordinator's copy
    parties: list[str]
    api_url: str
    s3_url: str
    nodes: dict[str, HostProcess] = field(default_factory=dict)
    services: list[HostProcess] = field(default_factory=list)

    @property
    def coordinator_workspace(self) -> Path:
        return self.root / "coordinator"

    def node_folder(self, party: str) -> Path:
        return self.root / "parties" / party

    def environment(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "GX_ANALYTICS_ENABLED": "False",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_API_URL": self.api_url,
            "CLEANROOM_S3_ENDPOINT_URL": self.s3_url,
            "CLEANROOM_NODE_OFFLINE_AFTER": "20",
            **extra,
        }

    def start_node(self, party: str, **extra: str) -> HostProcess:
        folder = self.node_folder(party)
        command = [
            sys.executable,
            "-m",
            "flows.cli",
            "node",
            "start",
            "--party",
            party,
            "--config",
            str(folder / "node.yaml"),
        ]
        environment = self.environment(HOME=str(folder), PREFECT_HOME=str(folder / ".prefect"), **extra)
        log = self.root / "logs" / f"node-{party}.log"
        self.nodes[party] = HostProcess(self.network, party, command, environment, log, party_user(party)).start()
        return self.nodes[party]

    def restart_nodes(self, **extra: str) -> None:
        for node in self.nodes.values():
            node.stop()
        for party in self.parties:
            self.start_node(party, **extra)
        self.wait_online()

    def wait_online(self, timeout: float = 240) -> None:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        from flows.node_service import worker_name
        from tasks.nodes import live_workers

        deadline = time.monotonic() + timeout
        with temporary_settings(updates={PREFECT_API_URL: self.api_url}):
            for party, node in self.nodes.items():
                assert node.process is not None
                # `ip netns exec` and `setpriv` both exec: the pid is the node's own
                while worker_name(party, node.process.pid) not in live_workers(party, within=30):
                    assert node.process.poll() is None, (self.root / "logs" / f"node-{party}.log").read_text()[
                        -3000:
                    ]
                    assert time.monotonic() < deadline, f"node {party} not online"
                    time.sleep(1)

    def run(self, spec: Path | None = None, timeout: float = 900, **extra: str):  # type: ignore[no-untyped-def]
        """`cleanroom run` as the coordinator, on its host, under its own user."""
        return run_on(self.network, "coordinator", *self._coordinator(spec, **extra), COORDINATOR_USER, timeout)

    def start_run(self, **extra: str) -> HostProcess:
        """The same, in the background (to be killed)."""
        command, environment = self._coordinator(None, **extra)
        log = self.root / "logs" / "coordinator.log"
        return HostProcess(self.network, "coordinator", command, environment, log, COORDINATOR_USER).start()

    def _coordinator(self, spec: Path | None, **extra: str) -> tuple[list[str], dict[str, str]]:
        workspace = self.coordinator_workspace
        environment = self.environment(
            HOME=str(workspace),
            PREFECT_HOME=str(workspace / ".prefect"),
            CLEANROOM_WORKSPACE=str(workspace),
            **extra,
        )
        return [sys.executable, "-m", "flows.cli", "run", "--spec", str(spec or self.spec_path)], environment


def _wait_http(url: str, timeout: float, server: HostProcess) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert server.process is not None
            if time.monotonic() > deadline or server.process.poll() is not None:
                raise
            time.sleep(0.5)


@contextmanager
def consortium_across_hosts(
    workspace: Settings, pinned: PinnedSpec, node_environment: dict[str, str] | None = None
) -> Iterator[Consortium]:
    """The demo consortium of `workspace` (its keys, nodes and exports) on separate hosts, for the block."""
    if os.geteuid() != 0 or tools_present():
        raise RuntimeError(
            f"a consortium across hosts needs root and {tools_present()} (make setup installs them)"
        )
    root = Path(tempfile.mkdtemp(prefix="cr-e2e-"))
    root.chmod(0o755)
    (root / "logs").mkdir()
    network = Network(tag=f"c{os.getpid() % 10000}").create()
    consortium: Consortium | None = None
    passable = ExitStack()
    try:
        passable.enter_context(traversable(Path(sys.base_prefix), Path(sys.prefix), PROJECT))
        services = network.add_host("services")
        coordinator_address = network.add_host("coordinator")
        parties = [p.name for p in pinned.spec.data_parties]
        addresses = {party: network.add_host(party) for party in parties}
        spec_path = _consortium_files(root, workspace, pinned, addresses, coordinator_address)
        consortium = Consortium(
            root, network, spec_path, parties, f"http://{services}:4200/api", f"http://{services}:5000"
        )
        _start_services(consortium)
        for party in parties:
            consortium.start_node(party, **(node_environment or {}))
        consortium.wait_online()
        yield consortium
    finally:
        if consortium is not None:
            for process in [*consortium.nodes.values(), *consortium.services]:
                process.stop()
        network.destroy()
        passable.close()
        if not os.environ.get("CLEANROOM_E2E_KEEP"):  # set it to look at the hosts' logs after a failure
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def consortium(small_workspace: Settings, small_spec: PinnedSpec) -> Iterator[Consortium]:
    if os.geteuid() != 0 or tools_present():
        pytest.fail(f"the consortium tests need root and {tools_present()} (make setup installs them)")
    with consortium_across_hosts(small_workspace, small_spec) as built:
        yield built


def _consortium_files(
    root: Path, workspace: Settings, pinned: PinnedSpec, addresses: dict[str, str], coordinator: str
) -> Path:
    """Every node's folder (from the demo's) owned by its own user; the coordinator's workspace with its
    keys; the spec with the hosts' addresses, signed by every party on its node."""
    from cleanroom.node import registry
    from cleanroom.node.config import Node

    coordinator_workspace = root / "coordinator"
    for folder in ("coordinator", "signing", "approvers"):
        shutil.copytree(workspace.keys_root / folder, coordinator_workspace / "keys" / folder)
    raw = yaml.safe_load(pinned.path.read_text())
    for party in raw["parties"]:
        if party["name"] in addresses:
            party["endpoint"] = f"{addresses[party['name']]}:{PLAYER_PORT}"
    raw["coordinator"]["endpoint"] = f"{coordinator}:{PLAYER_PORT}"
    spec_path = coordinator_workspace / "consortium.yaml"
    spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
    shutil.copy(pinned.path.parent / "catalogue.csv", coordinator_workspace / "catalogue.csv")
    for party in addresses:
        folder = root / "parties" / party
        shutil.copytree(
            home(workspace, party), folder, ignore=shutil.ignore_patterns("specs", "runs", "logs", "tmp")
        )
        config = yaml.safe_load((folder / "node.yaml").read_text())
        timeouts = config.get("timeouts", {}) | {"coordinator_silence_seconds": COORDINATOR_SILENCE}
        (folder / "node.yaml").write_text(
            yaml.safe_dump(config | {"listen_host": "0.0.0.0", "timeouts": timeouts})
        )
        registry.sign(Node.load(folder / "node.yaml", workspace), spec_path)
        own_privately(folder, party_user(party))
    standing_approvals(workspace, spec_path, coordinator_workspace)
    own_privately(coordinator_workspace, COORDINATOR_USER)
    coordinator_workspace.chmod(0o755)  # the spec and the archive are read by the tests (and approvers)
    return spec_path


def standing_approvals(workspace: Settings, spec_path: Path, coordinator_workspace: Path) -> None:
    """Each approver's standing approval of the hosts' spec, signed with their own key, so the runs
    here are released without a person (the paused path is tests/unit/test_approval.py's)."""
    from flows.approval_client import standing_approval

    coordinator = Settings(workspace=coordinator_workspace)
    for approver in pin_spec(spec_path).spec.approvers:
        identity = workspace.keys_root / "approvers" / f"{approver.name}.signing.pem"
        standing_approval(pin_spec(spec_path), identity, date.today() + timedelta(days=7), None, coordinator)


def _start_services(consortium: Consortium) -> None:
    """PostgreSQL, the Prefect server on it, and the object store, on the services host. PostgreSQL as
    a consortium would run it: on SQLite, two lifecycles at once made the server answer 503
    ('database is locked') to a worker submitting a flow run for over a minute, and the run failed."""
    root, network = consortium.root, consortium.network
    database = _start_postgres(consortium)
    home_dir = root / "prefect"
    home_dir.mkdir()
    environment = consortium.environment(
        PREFECT_HOME=str(home_dir),
        PREFECT_UI_ENABLED="false",
        PREFECT_API_LOG_RETRYABLE_ERRORS="true",
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database,
    )
    environment.pop("PREFECT_API_URL")
    server = [sys.executable, "-m", "prefect", "server", "start", "--host", "0.0.0.0", "--port", "4200"]
    store = [sys.executable, "-m", "moto.server", "-H", "0.0.0.0", "-p", "5000"]
    for command, name, url, timeout in (
        (server, "prefect-server", consortium.api_url + "/health", 180),
        (store, "object-store", consortium.s3_url, 60),
    ):
        process = HostProcess(network, "services", command, environment, root / "logs" / f"{name}.log").start()
        consortium.services.insert(0, process)  # stopped before the database
        try:
            _wait_http(url, timeout, process)
        except OSError as error:  # say why: the process, the route to its host, its log
            assert process.process is not None
            route = sh("ip", "route", "get", network.hosts["services"], check=False).stdout.strip()
            raise RuntimeError(
                f"{name} not reachable at {url} ({error}; exit code {process.process.poll()}; "
                f"route: {route}); its log ends:\n{process.log.read_text()[-3000:]}"
            ) from error


def _start_postgres(consortium: Consortium) -> str:
    """A PostgreSQL cluster of the session's own (Debian's binaries, run as the postgres user) on the
    services host's loopback; its connection URL for Prefect."""
    binaries = max(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    data = consortium.root / "postgres"
    data.mkdir(mode=0o700)
    shutil.chown(data, "postgres", "postgres")
    as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]
    sh(*as_postgres, str(binaries / "initdb"), "-D", str(data), "-U", "prefect", "--auth=trust", "-E", "UTF8")
    command = [str(binaries / "postgres"), "-D", str(data), "-k", str(data), "-c", "listen_addresses=127.0.0.1"]
    log = consortium.root / "logs" / "postgres.log"
    network = consortium.network
    process = HostProcess(network, "services", command, {"LANG": "C.UTF-8"}, log, user="postgres").start()
    consortium.services.append(process)
    deadline = time.monotonic() + 60
    ready = [str(binaries / "pg_isready"), "-h", "127.0.0.1", "-U", "prefect", "-q"]
    while run_on(network, "services", ready, {}).returncode != 0:
        assert process.process is not None and process.process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"postgres not ready; {log}"
        time.sleep(0.5)
    return "postgresql+asyncpg://prefect@127.0.0.1:5432/postgres"


def report_of(consortium: Consortium, stdout: str, spec_path: Path | None = None):  # type: ignore[no-untyped-def]
    """The run's sealed report from the coordinator's archive, opened as an approver."""
    from cleanroom.crypto.keys import load_age_identity
    from cleanroom.report.publish import open_report, read_archive
    from cleanroom.spec import pin_spec

    pinned = pin_spec(spec_path or consortium.spec_path)
    line = next(line for line in stdout.splitlines() if "Local archive (ciphertext):" in line)
    archive = Path(line.split(":", 1)[1].strip())
    identity = load_age_identity(consortium.coordinator_workspace / "keys" / "approvers" / "bo-jensen.age")
    return open_report(read_archive(archive), pinned.spec, pinned.sha256, identity), archive


def players_running() -> list[str]:
    """Command lines of every TF Encrypted player process on this machine (all hosts share it)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "cleanroom.secure.player" in text and "bwrap" not in text:
            found.append(text)
    return found


def dump(value: object) -> str:
    return json.dumps(value, default=str)
