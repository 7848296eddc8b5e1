"""Benchmark: what the players' isolation and TLS cost, on the demo's secure sums and recommender.

    make bench-tls            # or: .venv/bin/python -m bench.tls_overhead

The demo consortium's own inputs (four retailers' grids of the four summed analyses, ABY3; the joint
recommender's purchase matrices, Pond, 100 epochs), computed three ways in one run:
- players as the nodes run them: each sandboxed (bubblewrap, loopback-only network) behind its TLS
  terminator (stunnel, mutual TLS 1.3), the client likewise;
- the same topology with TLS off (socat forwards the same sockets in plaintext): the TLS overhead;
- players as plain processes on loopback, no sandbox and no tunnel (the previous single-host
  topology): the cost of the isolation as a whole.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from rich.console import Console

from bench.report import bench_arguments, fresh_workspace, publish
from cleanroom.demo_setup import demo_nodes_root
from cleanroom.party.preparation import prepare_party
from cleanroom.party.recommendations import prepare_recommender_input
from cleanroom.party.runs import PartyRun
from cleanroom.processes import free_ports, start_process, stop_processes
from cleanroom.secure import AggregateRequest
from cleanroom.secure.factorization import FactorizationRequest
from cleanroom.secure.local_cluster import local_cluster
from cleanroom.secure.spec_requests import recommender_request, summed_groups, summed_request
from cleanroom.spec import pin_spec
from cleanroom.spec.analyses import JointRecommender
from cleanroom.spec.models import CollaborationSpec

console = Console()
DIRECT_CLIENT = """
import collections, json, sys
from pathlib import Path
from cleanroom.secure.aggregates import run_totals
from cleanroom.secure.factorization import FactorizationRequest, run_training
from cleanroom.secure.requests import AggregateRequest
from cleanroom.secure.runtime import import_tfe, protocol_scope
message = json.loads(Path(sys.argv[1]).read_text())
tfe = import_tfe()
config = tfe.RemoteConfig(collections.OrderedDict(message["hostmap"]))
config.connect_servers()
kind = message["kind"]
request = (AggregateRequest if kind == "totals" else FactorizationRequest).model_validate(message["request"])
with protocol_scope(request.protocol, config, request.players) as prot:
    result = run_totals(request, prot) if kind == "totals" else run_training(request)
print(json.dumps({"seconds": result.seconds}))
"""


@contextmanager
def direct_players(workdirs: dict[str, Path], root: Path) -> Iterator[dict[str, str]]:
    """The previous topology: TF Encrypted's own player processes on loopback ports, unsandboxed."""
    hostmap = {party: f"127.0.0.1:{port}" for party, port in zip(workdirs, free_ports(len(workdirs)))}
    config = root / "hostmap.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(hostmap))
    command = [sys.executable, "-m", "tf_encrypted.player"]
    processes = [
        start_process([*command, p, "--config", str(config)], root / f"{p}.log", cwd=d)
        for p, d in workdirs.items()
    ]
    try:
        time.sleep(10)  # TF import and server start
        yield hostmap
    finally:
        stop_processes(processes)


def run_direct(hostmap: dict[str, str], kind: str, request: object, root: Path) -> float:
    message = root / "request.json"
    message.write_text(json.dumps({"hostmap": hostmap, "kind": kind, "request": request.model_dump(mode="json")}))  # type: ignore[attr-defined]
    out = subprocess.run(
        [sys.executable, "-c", DIRECT_CLIENT, str(message)], capture_output=True, text=True, check=True
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def oblivious_variant(spec: CollaborationSpec) -> CollaborationSpec:
    """The demo spec with its recommender in the oblivious mode, as this benchmark measured it (the demo
    itself runs the scalable mode): 400 customers per retailer, 100 epochs, Pond."""
    recommender = spec.joint_recommender
    assert recommender is not None
    kept = recommender.model_dump(include={"id", "kind", "objective", "catalogue", "holdout_from", "top_n"})
    dense = JointRecommender.model_validate(
        kept | {"mode": "oblivious", "protocol": "pond", "users_per_party": 400, "epochs": 100, "factors": 10}
    )
    return spec.model_copy(update={"analyses": [dense if a is recommender else a for a in spec.analyses]})


def demo_inputs(workspace: Path) -> tuple[dict[str, Path], AggregateRequest, FactorizationRequest]:
    """Every demo retailer's prepared grids and recommender input in a player folder of its own."""
    settings, spec_path = fresh_workspace(workspace, scale=1.0)
    spec = oblivious_variant(pin_spec(spec_path).spec)
    parties = [p.name for p in spec.data_parties]
    workdirs = {}
    for party in parties:
        home = demo_nodes_root(settings) / party
        version = home / "prepared" / prepare_party(spec, party, home).version
        run = PartyRun(home, "20261201T000000Z-beef").create()
        for grid in version.glob("*.i64"):
            shutil.copy(grid, run.player_dir / grid.name)
        prepare_recommender_input(spec, spec_path, version, run)
        workdirs[party] = run.player_dir
    (protocol, summed), *_ = summed_groups(spec).items()  # the demo runs every summed analysis under one
    totals = summed_request(spec, protocol, summed)
    training = recommender_request(spec, spec_path)
    return workdirs, totals, training


def main() -> None:
    parser = bench_arguments(__doc__, "tls")
    args = parser.parse_args()
    with console.status("preparing the demo consortium's inputs (scale 1.0)"):
        workdirs, totals, training = demo_inputs(args.workspace)
    seconds: dict[str, tuple[float, float]] = {}
    for mode in ("tls", "plaintext"):
        cluster = local_cluster(workdirs, args.workspace / mode, tls=mode == "tls")
        with console.status(f"players sandboxed behind their terminators, {mode}"), cluster as engine:
            seconds[mode] = (engine.secure_totals(totals).seconds, engine.train_factorization(training).seconds)
    root = args.workspace / "direct"
    with (
        console.status("players as plain processes (previous topology)"),
        direct_players(workdirs, root) as hostmap,
    ):
        seconds["direct"] = (
            run_direct(hostmap, "totals", totals, root),
            run_direct(hostmap, "factorization", training, root),
        )

    tls, plain, direct = seconds["tls"], seconds["plaintext"], seconds["direct"]
    lines = [
        f"Measured {date.today()} on 2 cores; the demo consortium's inputs (scale 1.0): four retailers' grids of "
        f"the four summed analyses ({totals.cells} cells, {totals.protocol.value}) and the joint recommender "
        f"({training.rows_per_party} customers x {training.items} products per retailer, {training.epochs} "
        f"epochs, {training.protocol.value}). Seconds inside the secure client (tracing included).",
        "",
        "| computation | sandboxed + mutual TLS | sandboxed, TLS off | plain processes (previous) "
        "| TLS overhead | isolation + TLS vs previous |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {t:.1f} s | {p:.1f} s | {d:.1f} s | {t / p:.2f}x | {t / d:.2f}x |"
            for name, t, p, d in (
                ("secure sums with disclosure control", tls[0], plain[0], direct[0]),
                ("joint recommender training", tls[1], plain[1], direct[1]),
            )
        ],
        "",
        "Each message between two members passes four user-space forwarders: the sender's bridge out of its",
        "sandbox (socat), its terminator (stunnel), the receiver's terminator and its bridge into the sandbox.",
        "The secure sums exchange few, large messages; the recommender's epochs many small rounds, so its",
        "time grows with the latency each forwarder adds on a busy 2-core machine.",
    ]
    publish(lines, "tls", "Players' isolation and TLS: the cost", command="make bench-tls", dry_run=args.no_write)


if __name__ == "__main__":
    main()
