"""Benchmark: the scalable recommender's secure sum in the real topology, one epoch's statistics vector per
retailer plus every compute party's noise share, across three sandboxed players behind mutual TLS (the
players `make demo` and the nodes run), against the same sum with the players in one process.

    .venv/bin/python -m bench.scalable_sum [--factors 32] [--items 20000]

The vectors are random int64 of the length 3 x 1 M customers x 20 k products x 32 factors gives (the
sum's cost depends on the length only); the revealed sum is checked against numpy's.
"""

from __future__ import annotations

import shutil
import time
from datetime import date

import numpy as np

from bench.report import bench_arguments, publish
from cleanroom.recommend.statistics_noise import Layout
from cleanroom.secure.engine import InProcessEngine
from cleanroom.secure.local_cluster import local_cluster
from cleanroom.secure.vector_sum import STATISTICS_FILE, STATISTICS_NOISE_FILE, VectorSumRequest
from cleanroom.spec import Protocol

PARTIES = ["northwind", "harbor", "alpine"]


def main() -> None:
    parser = bench_arguments(__doc__ or "", "scalable-sum")
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--items", type=int, default=20_000)
    arguments = parser.parse_args()
    length = Layout(arguments.factors, arguments.items).size
    root = arguments.workspace
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    expected = np.zeros(length, dtype=np.int64)
    folders = {}
    for party in PARTIES:
        folder = root / party / "player"
        folder.mkdir(parents=True)
        vector = rng.integers(-(2**40), 2**40, length, dtype=np.int64)
        noise = rng.integers(-(2**20), 2**20, length, dtype=np.int64)
        (folder / STATISTICS_FILE).write_bytes(vector.astype("<i8").tobytes())
        (folder / STATISTICS_NOISE_FILE).write_bytes(noise.astype("<i8").tobytes())
        expected += vector + noise
        folders[party] = folder
    request = VectorSumRequest(protocol=Protocol.ABY3, players=PARTIES, length=length)
    in_process = request.model_copy(
        update={
            "input_paths": {p: str(f / STATISTICS_FILE) for p, f in folders.items()},
            "noise_paths": {p: str(f / STATISTICS_NOISE_FILE) for p, f in folders.items()},
        }
    )
    revealed, local_seconds = InProcessEngine().vector_sum(in_process)
    assert (revealed == expected).all(), "the in-process sum differs from numpy's"
    with local_cluster(folders, root / "cluster", tls=True) as engine:
        engine.vector_sum(request)  # the client's start and the cluster join, once per player session
        started = time.perf_counter()
        revealed, client_seconds = engine.vector_sum(request)
        wall = time.perf_counter() - started
    assert (revealed == expected).all(), "the sum across players differs from numpy's"
    lines = [
        f"Measured {date.today()} on 2 cores: {length:,} int64 per retailer ({arguments.items:,} products x "
        f"{arguments.factors} factors), three retailers each adding a noise share, ABY3; the revealed sum equals "
        "numpy's.",
        "",
        "| players | seconds | x in one process |",
        "| --- | --- | --- |",
        f"| in one process (baseline) | {local_seconds:.1f} | 1.00 |",
        f"| sandboxed processes behind mutual TLS, inside the client | {client_seconds:.1f} | "
        f"{client_seconds / local_seconds:.2f} |",
        f"| the same, as the coordinator waits for it (file hand-over included) | {wall:.1f} | "
        f"{wall / local_seconds:.2f} |",
        "",
        "The client's start and its join of the cluster (once per run) are not counted.",
    ]
    publish(
        lines,
        "scalable-sum",
        "Scalable joint recommender: an epoch's secure sum across sandboxed players",
        command="python -m bench.scalable_sum",
        dry_run=arguments.no_write,
    )


if __name__ == "__main__":
    main()
