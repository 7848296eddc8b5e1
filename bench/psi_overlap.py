"""Benchmark: customer overlap of two retailers with 1 million identifiers each (ECDH-PSI), through the
consortium's object store vs over pipes.

    make bench-psi            # or: .venv/bin/python -m bench.psi_overlap --ids 1000000

Each retailer's session runs in its own process with an ephemeral scalar. Through the store (what the
nodes do): every batch of blinded points is sealed (Ed25519-signed, age-encrypted) to the party that
blinds it next and written once under the run's prefix of moto's S3 server; the coordinator opens
the fully blinded sets and counts. Over pipes (the previous single-host topology, the baseline in the
same run): the coordinator relays the same blinding over each process's stdin/stdout. A third row is
what many data clean rooms do instead: salted SHA-256 hashes of the emails (no privacy against the
other party).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from secrets import token_hex

import polars as pl
from rich.console import Console

from bench.psi_party import END, OWN, REBLIND, join_keys_file, receive, send
from bench.report import bench_arguments, fresh_workspace, publish
from cleanroom.exchange.store import RunExchange
from cleanroom.psi.overlap import overlap_counts
from cleanroom.psi.rounds import fully_blinded_sets
from cleanroom.psi.wire import decode_points
from cleanroom.spec import load_spec
from cleanroom.storage.moto_server import MotoServer
from tasks.context import coordinator_member, object_store

PARTIES = ("northwind", "harbor")
console = Console()


def write_join_keys(workspace: Path, ids: int, shared: int) -> None:
    """`shared` emails in both sets, the rest distinct; each party's own file."""
    for name in PARTIES:
        own = pl.int_range(ids, eager=True)
        emails = pl.when(own < shared).then(pl.lit("shared")).otherwise(pl.lit(name)) + own.cast(pl.String)
        pl.select((emails + "@mail.example").alias("email_key")).write_parquet(join_keys_file(workspace, name))


def salted_hash_baseline(workspace: Path) -> tuple[float, int]:
    salt = os.urandom(16)
    started = time.perf_counter()
    hashed = []
    for name in PARTIES:
        emails = pl.read_parquet(join_keys_file(workspace, name))["email_key"].to_list()
        hashed.append({hashlib.sha256(salt + e.encode()).digest() for e in emails})
    return time.perf_counter() - started, len(hashed[0] & hashed[1])


def over_pipes(workspace: Path) -> tuple[float, int]:
    started = time.perf_counter()
    command = [sys.executable, "-m", "bench.psi_party", "pipes"]
    peers = {
        name: subprocess.Popen(
            [*command, name, "--workspace", str(workspace)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for name in PARTIES
    }
    for peer in peers.values():
        send(peer.stdin, OWN)  # type: ignore[arg-type]
    own = {name: receive(peer.stdout)[1] for name, peer in peers.items()}  # type: ignore[arg-type]
    first, second = PARTIES
    send(peers[second].stdin, REBLIND, own[first])  # type: ignore[arg-type]
    send(peers[first].stdin, REBLIND, own[second])  # type: ignore[arg-type]
    blinded = {
        first: decode_points(receive(peers[second].stdout)[1]),
        second: decode_points(receive(peers[first].stdout)[1]),
    }  # type: ignore[arg-type]
    for peer in peers.values():
        send(peer.stdin, END)  # type: ignore[arg-type]
        peer.wait()
    return time.perf_counter() - started, overlap_counts(blinded)[PARTIES]


def through_store(workspace: Path, spec_path: Path, settings) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    spec = load_spec(spec_path)
    run_id = f"20261201T000000Z-{token_hex(4)}"
    store = object_store(settings)
    store.ensure_bucket(spec.exchange_bucket)
    started = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "bench.psi_party",
        "store",
        "--workspace",
        str(workspace),
        "--spec",
        str(spec_path),
    ]
    command += ["--run", run_id, "--parties", ",".join(PARTIES)]
    sessions = [
        subprocess.Popen(
            [*command[:4], name, *command[4:]],
            env=os.environ | {"CLEANROOM_S3_ENDPOINT_URL": store.endpoint_url or ""},
        )
        for name in PARTIES
    ]
    exchange = RunExchange.for_run(store, spec, run_id, coordinator_member(settings))
    blinded = fully_blinded_sets(exchange, list(PARTIES), timeout=3600, abort=lambda: None)
    if any(session.wait() != 0 for session in sessions):
        raise SystemExit("a party's session failed")
    seconds = time.perf_counter() - started
    exchange.remove()
    return seconds, overlap_counts(blinded)[PARTIES]


def main() -> None:
    parser = bench_arguments(__doc__, "psi")
    parser.add_argument("--ids", type=int, default=1_000_000)
    args = parser.parse_args()
    shared = args.ids // 4

    settings, spec_path = fresh_workspace(args.workspace)
    write_join_keys(args.workspace, args.ids, shared)
    with MotoServer(args.workspace / "moto") as server:
        settings = settings.model_copy(update={"s3_endpoint_url": server.endpoint_url})
        with console.status("baseline: salted SHA-256 hash matching"):
            hash_seconds, hash_count = salted_hash_baseline(args.workspace)
        with console.status(f"ECDH-PSI over pipes (baseline), {args.ids:,} identifiers each"):
            pipe_seconds, pipe_count = over_pipes(args.workspace)
        with console.status(f"ECDH-PSI through the object store, {args.ids:,} identifiers each"):
            store_seconds, store_count = through_store(args.workspace, spec_path, settings)
    if {pipe_count, store_count, hash_count} != {shared}:
        raise SystemExit(
            f"wrong overlap: store {store_count}, pipes {pipe_count}, hashes {hash_count}, expected {shared}"
        )

    cores = os.cpu_count() or 1
    lines = [
        f"Measured {date.today()} on {cores} cores, libsodium X25519, two party processes;",
        f"{args.ids:,} email identifiers per party, {shared:,} shared (found exactly by every method).",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| ECDH-PSI through the object store (sealed batches, moto S3 on loopback) | {store_seconds:.1f} s |",
        f"| ECDH-PSI over pipes, coordinator relaying (baseline, same run) | {pipe_seconds:.1f} s |",
        f"| ratio store / pipes (target <= 1.2x) | {store_seconds / pipe_seconds:.2f}x |",
        f"| identifiers per second per core, through the store | {2 * args.ids / store_seconds / cores:,.0f} |",
        f"| salted SHA-256 matching (no privacy against the other party) | {hash_seconds:.1f} s |",
        f"| ratio PSI through the store / salted hashes | {store_seconds / hash_seconds:.0f}x |",
    ]
    publish(lines, "psi", "Customer overlap (PSI), 1 M x 1 M", command="make bench-psi", dry_run=args.no_write)


if __name__ == "__main__":
    main()
