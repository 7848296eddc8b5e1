"""Benchmark: one epoch of the scalable joint recommender against one epoch of `implicit` ALS on the
pooled data (the reference no clean room can beat), at retail scale.

    .venv/bin/python -m bench.scalable_recommender [--customers 1000000] [--items 20000]

Synthetic purchases: three retailers, each `--customers` customers buying about 30 items (Zipf-like
popularity over `--items` products, repeat purchases counted). In one run: the pooled epoch (implicit,
its default CG solver, 32 factors) as the baseline; then a secure epoch's parts, each retailer in turn:
its customers' factors (implicit, the same solver), their clipping and the per-item statistics, the
fixed-point vector; the secure sum of the three vectors plus three noise shares (TF Encrypted, players
in one process); the item solve. Noise sampling (OpenDP's discrete Gaussian) is measured as a rate and
reported apart: it does not depend on the data, so each compute party can draw it ahead of the run.
Peak memory is the process's (every retailer in turn in one process: a party alone needs less).
"""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.report import bench_arguments, publish
from cleanroom.recommend.federated_als import (
    AlsParams,
    Clipping,
    clipped_purchases,
    initial_item_factors,
    item_statistics,
    solve_items,
    unit_norm,
    user_factors,
)
from cleanroom.recommend.statistics_noise import Layout, calibrate_epoch, decode, encode
from cleanroom.secure.engine import InProcessEngine
from cleanroom.secure.vector_sum import VectorSumRequest
from cleanroom.spec import Protocol

PARTIES = ["north", "harbor", "alpine"]


def synthetic(customers: int, items: int, per_customer: int, seed: int) -> sparse.csr_matrix:
    """Purchase counts: each customer buys `per_customer` times, items drawn from a Zipf-like law."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, items + 1) ** 0.9
    weights /= weights.sum()
    rows = np.repeat(np.arange(customers, dtype=np.int32), per_customer)
    cols = rng.choice(items, size=rows.size, p=weights).astype(np.int32)
    matrix = sparse.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(customers, items))
    matrix.sum_duplicates()
    return matrix


def pooled_epoch(pooled: sparse.csr_matrix, params: AlsParams) -> float:
    """Seconds of one `implicit` ALS iteration (both halves) on the pooled data, CG as it ships."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    times: list[float] = []
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors, regularization=params.regularization, alpha=params.alpha, iterations=2
        )
        model.fit(pooled, show_progress=False, callback=lambda i, elapsed, loss: times.append(elapsed))
    return float(min(times))


def noise_rate(params: AlsParams, clipping: Clipping, draws: int = 20_000) -> float:
    """Discrete Gaussian draws per second from OpenDP's sampler on this machine."""
    from cleanroom.recommend.statistics_noise import noise_share

    measures = calibrate_epoch(0.1, params, clipping)
    started = time.perf_counter()
    noise_share(measures, Layout(params.factors, draws // (params.factors * (params.factors + 3) // 2) + 1))
    size = Layout(params.factors, draws // (params.factors * (params.factors + 3) // 2) + 1).size
    return size / (time.perf_counter() - started)


def main() -> None:
    parser = bench_arguments(__doc__ or "", "scalable-recommender")
    parser.add_argument("--customers", type=int, default=1_000_000, help="per retailer")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=30, help="per customer")
    parser.add_argument("--factors", type=int, default=32)
    args = parser.parse_args()
    params = AlsParams(factors=args.factors, regularization=0.05, alpha=10.0)
    clipping = Clipping(max_items=50, max_purchases=5)
    parts = [synthetic(args.customers, args.items, args.purchases, seed) for seed in range(len(PARTIES))]
    pooled = sparse.vstack(parts).tocsr()
    baseline = pooled_epoch(pooled, params)
    del pooled

    y = initial_item_factors(args.items, params)
    timings: dict[str, list[float]] = {"users": [], "statistics": [], "encode": []}
    vectors, summed_support = {}, np.zeros(args.items, dtype=np.int64)
    released = np.ones(args.items, dtype=bool)
    for party, matrix in zip(PARTIES, parts):
        started = time.perf_counter()
        x = unit_norm(user_factors(y, matrix, params))
        timings["users"].append(time.perf_counter() - started)
        started = time.perf_counter()
        stats = item_statistics(x, clipped_purchases(matrix, clipping), params)
        timings["statistics"].append(time.perf_counter() - started)
        started = time.perf_counter()
        vectors[party] = encode(stats, released, params.factors)
        timings["encode"].append(time.perf_counter() - started)
        summed_support += stats.customers
    length = next(iter(vectors.values())).size
    with tempfile.TemporaryDirectory(prefix="bench-vector-sum-") as folder:
        inputs, noises = {}, {}
        for party, vector in vectors.items():
            inputs[party] = str(_write(Path(folder) / f"{party}.i64", vector))
            noises[party] = str(_write(Path(folder) / f"{party}.noise.i64", np.zeros(length, dtype=np.int64)))
        del vectors
        request = VectorSumRequest(
            protocol=Protocol.ABY3, players=PARTIES, length=length, input_paths=inputs, noise_paths=noises
        )
        summed, secure_seconds = InProcessEngine().vector_sum(request)
    started = time.perf_counter()
    statistics = decode(summed, released, params.factors)
    statistics.customers = summed_support
    solve_items(statistics, params, y)
    solve_seconds = time.perf_counter() - started
    rate = noise_rate(params, clipping)
    party_seconds = max(
        timings["users"][i] + timings["statistics"][i] + timings["encode"][i] for i in range(len(PARTIES))
    )
    secure_epoch = party_seconds + secure_seconds + solve_seconds
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    lines = [
        f"Three retailers x {args.customers:,} customers x {args.items:,} products, about {args.purchases} "
        f"purchases each ({sum(p.nnz for p in parts):,} customer-product pairs), {args.factors} factors; "
        "one epoch each.",
        "",
        "| step | seconds | x pooled epoch |",
        "| --- | --- | --- |",
        f"| pooled plaintext epoch (`implicit` ALS, CG, baseline) | {baseline:.1f} | 1.0 |",
        f"| customers' factors (implicit, per retailer, slowest) | {max(timings['users']):.1f} | "
        f"{max(timings['users']) / baseline:.2f} |",
        f"| clipping + per-item statistics (per retailer, slowest) | {max(timings['statistics']):.1f} | "
        f"{max(timings['statistics']) / baseline:.2f} |",
        f"| fixed-point vector ({length:,} int64 per retailer) | {max(timings['encode']):.1f} | "
        f"{max(timings['encode']) / baseline:.2f} |",
        f"| secure sum of 3 vectors + 3 noise shares (ABY3, in one process) | {secure_seconds:.1f} | "
        f"{secure_seconds / baseline:.2f} |",
        f"| item solve | {solve_seconds:.1f} | {solve_seconds / baseline:.2f} |",
        f"| **secure epoch** (retailers in parallel + sum + solve) | {secure_epoch:.1f} | "
        f"**{secure_epoch / baseline:.2f}** |",
        "",
        f"Noise: OpenDP's discrete Gaussian draws {rate:,.0f} values/s on one core; one epoch's share is "
        f"{length:,} values per compute party ({length / rate:,.0f} s), drawn ahead of the run. "
        f"Peak memory of this process (all three retailers in turn): {peak_gib:.1f} GiB.",
    ]
    command = "python -m bench.scalable_recommender" + (
        f" --customers {args.customers} --items {args.items}" if args.customers != 1_000_000 else ""
    )
    publish(
        lines,
        "scalable-recommender",
        "Scalable joint recommender: one epoch",
        command=command,
        dry_run=args.no_write,
    )


def _write(path: Path, values: np.ndarray) -> Path:
    path.write_bytes(values.astype("<i8").tobytes())
    return path


if __name__ == "__main__":
    main()
