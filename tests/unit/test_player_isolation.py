"""Players on their own, as the nodes run them: sandboxed, behind mutual TLS. A secure sum through the
tunnels equals plaintext; nothing reaches a player without a pinned consortium certificate; its
plaintext port is out of reach; and a graph sent by a member that does hold a certificate (the
coordinator, the most trusted one) reads nothing outside the run's player folder."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cleanroom.analyses.category_month_sales import GRID_FILE as CATEGORY_MONTH_FILE
from cleanroom.crypto.pki import init_ca, issue_certificate
from cleanroom.network.sandbox import sandboxed
from cleanroom.network.topology import INTERNAL_PORT_BASE
from cleanroom.processes import port_open
from cleanroom.secure import AggregateRequest
from cleanroom.secure.engine import RemoteEngine
from cleanroom.secure.local_cluster import local_cluster
from cleanroom.spec import Protocol
from tests.conftest import home, prepared

pytestmark = pytest.mark.slow
PLAYERS = ["northwind", "harbor", "alpine"]
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

ATTACK = """
import json
from pathlib import Path

import tensorflow as tf

from cleanroom.secure.client import connect, join_cluster

args = json.loads(Path("args.json").read_text())
connect(args["cluster"], Path(args["sockets"]))
results, messages = {}, {}
for label, path in args["paths"].items():
    join_cluster(args["cluster"])  # a fresh context per read: a failed remote op can fail the next ones
    try:
        with tf.device(args["device"]):
            results[label] = int(tf.strings.length(tf.io.read_file(path)).numpy())
    except tf.errors.OpError as error:
        results[label], messages[label] = type(error).__name__, error.message[:300]
Path("out.json").write_text(json.dumps({"results": results, "messages": messages}))
"""


@pytest.fixture(scope="module")
def cluster(prepared_workspace, tmp_path_factory):
    """Three players, each reading a copy of its party's grid in its own player folder."""
    root = tmp_path_factory.mktemp("cluster")
    workdirs = {}
    for party in PLAYERS:
        workdirs[party] = root / party / "player"
        workdirs[party].mkdir(parents=True)
        shutil.copy(
            prepared(prepared_workspace, party) / CATEGORY_MONTH_FILE, workdirs[party] / CATEGORY_MONTH_FILE
        )
    with local_cluster(workdirs, root) as engine:
        yield engine, workdirs, root


def test_secure_sum_through_tls_equals_plaintext(cluster, prepared_workspace, small_spec) -> None:
    engine, _, _ = cluster
    analysis = small_spec.spec.category_month_sales
    request = AggregateRequest(protocol=Protocol.ABY3, players=PLAYERS, cells=analysis.cells, min_group_size=1)
    revealed = engine.secure_totals(request)
    grids = [
        np.frombuffer((prepared(prepared_workspace, p) / CATEGORY_MONTH_FILE).read_bytes(), "<i8").reshape(2, -1)
        for p in PLAYERS
    ]
    total = sum(g[0] for g in grids)
    assert revealed.sales_cents == [int(v) if v else None for v in total] and all(
        revealed.contribution_consistent.values()
    )


def _endpoint(engine: RemoteEngine, root: Path, party: str) -> tuple[str, int]:
    log = (root / party / "terminator.conf").read_text()
    accept = next(line for line in log.splitlines() if line.startswith("accept = ") and ":" in line)
    host, port = accept.removeprefix("accept = ").rsplit(":", 1)
    return host, int(port)


def _handshake(host: str, port: int, certificate: tuple[Path, Path] | None) -> str:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    if certificate:
        context.load_cert_chain(*certificate)
    try:
        with socket.create_connection((host, port), timeout=5) as raw, context.wrap_socket(raw) as tls:
            tls.sendall(HTTP2_PREFACE)
            return "answered" if tls.recv(64) else "closed"
    except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as error:
        return type(error).__name__


def test_nothing_reaches_a_player_without_a_pinned_certificate(cluster, tmp_path: Path) -> None:
    engine, _, root = cluster
    host, port = _endpoint(engine, root, "harbor")
    init_ca(tmp_path / "other-ca", "elsewhere")
    stranger = issue_certificate(tmp_path / "other-ca", "harbor", tmp_path / "stranger")
    unpinned = issue_certificate(root / "pki" / "ca", "northwind", tmp_path / "unpinned")  # right CA, not pinned
    pinned = (root / "pki" / "certificates" / "coordinator.crt", root / "pki" / "certificates" / "coordinator.key")
    assert _handshake(host, port, pinned) == "answered"  # a pinned member gets through: the check can fail
    assert _handshake(host, port, None) != "answered"
    assert _handshake(host, port, stranger) != "answered"
    assert _handshake(host, port, unpinned) != "answered"
    with socket.create_connection((host, port), timeout=5) as plain:  # plaintext gRPC: no answer at all
        plain.sendall(HTTP2_PREFACE)
        plain.settimeout(5)
        try:
            reply = plain.recv(64)
        except (ConnectionError, TimeoutError):
            reply = b""
    assert not reply.startswith(b"\x00") and b"HTTP/2" not in reply  # no HTTP/2 SETTINGS frame came back


def test_the_players_plaintext_ports_are_not_on_the_host(cluster) -> None:
    for index in range(-1, len(PLAYERS)):
        assert not port_open(f"127.0.0.1:{INTERNAL_PORT_BASE + index}")


def test_a_foreign_graph_reads_only_the_run_folder(cluster, prepared_workspace, tmp_path: Path) -> None:
    """Sent through the coordinator's own tunnel with its pinned certificate: harbor's player reads the
    run's input, but not the exports, pseudonym key or prepared tables beside it on the host."""
    engine, workdirs, _ = cluster
    harbor = home(prepared_workspace, "harbor")
    paths = {
        "run input": str(CATEGORY_MONTH_FILE),
        "raw export": str(harbor / "raw" / "customers.csv"),
        "pseudonym key": str(harbor / "secrets" / "pseudonym.key"),
        "prepared join keys": str(prepared(prepared_workspace, "harbor") / "join_keys.parquet"),
        "relative escape": "../../harbor/raw/customers.csv",
        "another player's folder": str(workdirs["northwind"] / CATEGORY_MONTH_FILE),
    }
    assert all(Path(p).exists() for label, p in paths.items() if label not in ("run input", "relative escape"))
    (tmp_path / "attack.py").write_text(ATTACK)
    device = f"/job:tfe/replica:0/task:{PLAYERS.index('harbor')}/device:CPU:0"
    args = {"cluster": engine.internal, "sockets": "/sandbox/sockets", "paths": paths, "device": device}
    (tmp_path / "args.json").write_text(json.dumps(args))
    command = sandboxed([sys.executable, "attack.py"], tmp_path, engine.sockets)
    subprocess.run(command, check=True, timeout=300, capture_output=True)
    out = json.loads((tmp_path / "out.json").read_text())
    results = out["results"]
    assert (
        results.pop("run input") == (workdirs["harbor"] / CATEGORY_MONTH_FILE).stat().st_size
    )  # the attack works
    assert results == dict.fromkeys(results, "NotFoundError"), out["messages"]  # and finds nothing else
