"""`cleanroom node start`: what a retailer runs on its own host.

It checks the node's configuration and tools, makes sure the party's work pool exists, deploys the
party's session on it (every party-side step of a run, see `flows/party_steps.py`), publishes the
party's spec signatures, then runs a Prefect process worker on that pool until stopped. A session's
flow run, and the player it may start, die with the worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from functools import partial

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.deployments.runner import EntrypointType
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from cleanroom.errors import ConfigurationError
from cleanroom.network.sandbox import require_tools
from cleanroom.node import registry
from cleanroom.node.config import Node
from cleanroom.processes import die_with_parent, start_process, stop_processes
from cleanroom.spec import PinnedSpec
from cleanroom.spec.signatures import publish
from flows.party_steps import NODE_CONFIG_ENV, NODE_PID_ENV, session
from tasks.nodes import deployment_name, pool_name

WORKER_SETTINGS = {
    "PREFECT_WORKER_QUERY_SECONDS": "2",  # a session waits at most 2 s to be picked up (each poll is a query)
    "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",  # the coordinator sees a dead node (CLEANROOM_NODE_OFFLINE_AFTER)
    "PREFECT_WORKER_PREFETCH_SECONDS": "5",
}


def servable_specs(node: Node, announce: Callable[[str], object] = print) -> list[PinnedSpec]:
    """The specs this party signed that are still what it signed. A copy that no longer is (altered,
    or hashed differently since an upgrade added a spec setting) is not served and said so once: the
    node still serves the others."""
    specs = []
    for signature in registry.signatures(node):
        try:
            specs.append(registry.resolve(node, signature.spec_sha256))
        except ConfigurationError as exc:
            announce(f"node {node.party}: not serving a signed spec: {exc.one_line()}")
    return specs


def register(node: Node, specs: list[PinnedSpec]) -> str:
    """The work pool and the party's session deployment; returns the deployment's name."""
    pool = pool_name(node.party)
    shown = specs[-1].spec.party(node.party).display_name if specs else node.party
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    name = deployment_name(node.party)
    if not _deployed(name, pool):  # a restart writes nothing: fewer writes for the server's database
        session.to_deployment(
            name=node.party,
            entrypoint_type=EntrypointType.MODULE_PATH,
            work_pool_name=pool,
            tags=["cleanroom", f"party:{node.party}"],
            description=f"Every party-side step of a run, on the node of {shown}",
        ).apply()
    return name


def _deployed(name: str, pool: str) -> bool:
    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(name)
        except ObjectNotFound:
            return False
    return deployment.work_pool_name == pool and deployment.entrypoint == "flows.party_steps.session"


def publish_signatures(node: Node, specs: list[PinnedSpec]) -> int:
    """Every spec this party signed (and still serves), in the consortium bucket (the coordinator
    checks them)."""
    for pinned in specs:
        publish(node.store, pinned.spec.exchange_bucket, registry.signature_of(node, pinned.sha256))
    return len(specs)


def start(node: Node, announce: Callable[[str], object] = print) -> int:
    """Register, then run the worker until it exits or this process is asked to stop."""
    require_tools("bwrap", "socat", *([] if node.settings.dev_plaintext_players else ["stunnel"]))
    _ = node.member  # the node's keys load now, not at its first step
    specs = servable_specs(node, announce)
    deployment = register(node, specs)
    published = publish_signatures(node, specs)
    announce(
        f"node {node.party}: {deployment} deployed on work pool {pool_name(node.party)}, "
        f"{published} spec signature(s) published; worker starting"
    )
    private_tmp = node.workspace / "tmp"  # Prefect's runner keeps files under the temp folder: not a shared one
    private_tmp.mkdir(mode=0o700, exist_ok=True)
    environment = {
        **os.environ,
        **WORKER_SETTINGS,
        NODE_CONFIG_ENV: str(node.config_path),
        NODE_PID_ENV: str(os.getpid()),
        "TMPDIR": str(private_tmp),
    }
    pool = pool_name(node.party)
    name = worker_name(node.party, os.getpid())
    command = [
        sys.executable,
        "-m",
        "prefect",
        "worker",
        "start",
        "--pool",
        pool,
        "--type",
        "process",
        "--name",
        name,
    ]
    log = node.workspace / "logs" / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as output:
        worker = subprocess.Popen(
            command,
            env=environment,
            cwd=node.workspace,
            stdout=output,
            stderr=output,
            preexec_fn=partial(die_with_parent, os.getpid()),
        )
    keeper = start_noise_keeper(node, environment)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.terminate())
    try:
        return worker.wait()
    finally:
        stop_processes([keeper])


def start_noise_keeper(node: Node, environment: dict[str, str]) -> subprocess.Popen:
    """The child that keeps the party's noise reserve ready for its next runs, at the lowest CPU
    priority (it draws nothing when no spec this party computes for has a noised recommender)."""
    command = [sys.executable, "-m", "cleanroom.node.noise_keeper", "--config", str(node.config_path)]
    return start_process(command, node.workspace / "logs" / "noise.log", cwd=node.workspace, env=environment)


def worker_name(party: str, node_pid: int) -> str:
    """The worker's name tells which node process runs it (a restarted node is a new worker)."""
    return f"node-{party}-{node_pid}"
