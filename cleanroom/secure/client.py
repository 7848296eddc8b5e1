"""The coordinator's secure-computation client, run as its own sandboxed process for one player session,
so TensorFlow's process-wide cluster connection never outlives the session: joins the cluster named in
a JSON file, then for each request file named on its standard input (aggregate totals, matrix
factorization, shared-customer sales, a vector sum) writes the revealed result as JSON beside it, until that input
closes."""

from __future__ import annotations

import json
import os
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cleanroom.errors import CleanroomError
from cleanroom.network.topology import CLIENT_JOB, COORDINATOR
from cleanroom.secure.aggregates import run_totals
from cleanroom.secure.factorization import FactorizationRequest, run_training
from cleanroom.secure.player import PLAYER_JOB, PLAYER_NICENESS, start_bridges
from cleanroom.secure.requests import AggregateRequest
from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness
from cleanroom.secure.shared_sales import SharedSalesRequest, run_shared_sales
from cleanroom.secure.vector_sum import VectorSumRequest, run_vector_sum
from cleanroom.whole_files import write_whole_file

CLUSTER_FILE = "cluster.json"  # in its working folder: the members' loopback addresses, the sockets folder
REQUESTS: dict[str, type[BaseModel]] = {
    "totals": AggregateRequest,
    "factorization": FactorizationRequest,
    "shared_sales": SharedSalesRequest,
    "vector_sum": VectorSumRequest,
}


def connect(internal: dict[str, str], sockets: Path) -> Any:
    """Bridge to the players through the TLS terminator, then join the cluster as TF's client job at
    its fixed loopback address (players fetch client-side tensors from it)."""
    start_bridges(sockets, internal, own=COORDINATOR)
    os.nice(PLAYER_NICENESS)  # as the players: forwarding comes first
    hostmap = OrderedDict((name, address) for name, address in internal.items() if name != COORDINATOR)
    config = import_tfe().RemoteConfig(hostmap, job_name=PLAYER_JOB)
    join_cluster(internal)
    return config


def join_cluster(internal: dict[str, str]) -> None:
    """TF's client job in the players' cluster (again: a fresh eager context, through bridges already up)."""
    import tensorflow as tf

    players = [address for name, address in internal.items() if name != COORDINATOR]
    cluster = tf.train.ClusterSpec({PLAYER_JOB: players, CLIENT_JOB: [internal[COORDINATOR]]})
    tf.config.experimental_connect_to_cluster(cluster, job_name=CLIENT_JOB)


def result_file(request_file: str) -> str:
    """Where the answer to a request goes (written whole: the engine reads it once it exists)."""
    return request_file.replace("request", "result")


def main() -> int:
    joined = json.loads(Path(sys.argv[1]).read_text())
    config = connect(joined["cluster"], Path(joined["sockets"]))
    for line in sys.stdin:
        name = line.strip()
        message = json.loads(Path(name).read_text())
        answer = serve(message.get("kind", "totals"), message["request"], config, vector_file(name))
        write_whole_file(Path(result_file(name)), answer)
    return 0


def vector_file(request_file: str) -> str:
    """Where a vector sum's revealed vector goes (raw little-endian int64; too long for JSON)."""
    return result_file(request_file).removesuffix(".json") + ".i64"


def serve(kind: str, raw: dict, config: Any, vector_path: str = "") -> str:
    """One computation's revealed result (or its one-line error) as JSON; a vector sum's vector is
    written to `vector_path` and the JSON names it."""
    request: AggregateRequest | FactorizationRequest | SharedSalesRequest | VectorSumRequest = REQUESTS[
        kind
    ].model_validate(raw)
    try:
        require_secure_randomness()
        with protocol_scope(request.protocol, config, request.players) as prot:
            revealed: BaseModel
            if isinstance(request, VectorSumRequest):
                vector, seconds = run_vector_sum(request)
                Path(vector_path).write_bytes(vector.astype("<i8").tobytes())
                return json.dumps({"file": vector_path, "seconds": seconds})
            if isinstance(request, FactorizationRequest):
                revealed = run_training(request)
            elif isinstance(request, SharedSalesRequest):
                revealed = run_shared_sales(request, prot)
            else:
                revealed = run_totals(request, prot)
    except CleanroomError as exc:
        return json.dumps({"error": exc.one_line()})
    return revealed.model_dump_json()


if __name__ == "__main__":
    sys.exit(main())
