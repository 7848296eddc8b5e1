"""One retailer's PSI session for the PSI benchmark, in its own process.

    python -m bench.psi_party store PARTY --workspace W --spec S --run RUN --parties a,b
    python -m bench.psi_party pipes PARTY --workspace W

`store`: what a node runs (its keys, sealed batches through the object store at
CLEANROOM_S3_ENDPOINT_URL). `pipes`: the previous single-host topology, the benchmark's baseline: the
same blinding, requests and answers over stdin/stdout, relayed by the coordinator.
"""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path
from typing import BinaryIO

import polars as pl

from cleanroom.demo_setup import demo_nodes_root, node_config_path
from cleanroom.exchange.store import RunExchange
from cleanroom.node.config import Node
from cleanroom.psi.ecdh import blind_own, new_scalar, reblind
from cleanroom.psi.rounds import party_rounds
from cleanroom.psi.wire import decode_points, encode_points
from cleanroom.settings import Settings
from cleanroom.spec import load_spec

KINDS = ("email",)
LENGTH = struct.Struct("<cQ")  # verb, payload bytes
OWN, REBLIND, RESULT, END = b"O", b"R", b"A", b"E"


def join_keys_file(workspace: Path, party: str) -> Path:
    return demo_nodes_root(Settings(workspace=workspace)) / party / "bench-join-keys.parquet"


def own_rows(workspace: Path, party: str) -> list[tuple[str | None, ...]]:
    return list(pl.read_parquet(join_keys_file(workspace, party), columns=["email_key"]).iter_rows())


def send(stream: BinaryIO, verb: bytes, payload: bytes = b"") -> None:
    stream.write(LENGTH.pack(verb, len(payload)) + payload)
    stream.flush()


def receive(stream: BinaryIO) -> tuple[bytes, bytes]:
    verb, size = LENGTH.unpack(stream.read(LENGTH.size))
    return verb, stream.read(size)


def serve_pipes(rows: list[tuple[str | None, ...]]) -> None:
    scalar = new_scalar()
    while True:
        verb, payload = receive(sys.stdin.buffer)
        if verb == END:
            return
        blinded = blind_own(rows, KINDS, scalar) if verb == OWN else reblind(decode_points(payload), scalar)
        send(sys.stdout.buffer, RESULT, encode_points(blinded))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["store", "pipes"])
    parser.add_argument("party")
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--spec", type=Path)
    parser.add_argument("--run")
    parser.add_argument("--parties", default="")
    args = parser.parse_args()
    rows = own_rows(args.workspace, args.party)
    if args.mode == "pipes":
        serve_pipes(rows)
        return
    settings = Settings(workspace=args.workspace)
    node = Node.load(node_config_path(settings, args.party), settings)
    exchange = RunExchange.for_run(node.store, load_spec(args.spec), args.run, node.member)
    party_rounds(exchange, args.parties.split(","), args.party, rows, KINDS, timeout=3600)


if __name__ == "__main__":
    main()
