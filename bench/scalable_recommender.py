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

import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import sparse

from bench.memory import peak_resident_gib
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
    layout = Layout(params.factors, draws // (params.factors * (params.factors + 3) // 2) + 1)
    started = time.perf_counter()
    noise_share(measures, layout)
    return layout.size / (time.perf_counter() - started)


def party_epoch(
    seed: int, args: dict, params: AlsParams, clipping: Clipping, y: np.ndarray, out: str
) -> dict[str, float]:
    """One retailer's share of an epoch in a process of its own (its peak memory is its own): its data,
    its customers' factors, the statistics twice (the first epoch of a process pays for fresh memory,
    the later ones reuse it), the fixed-point vector written to `out`."""
    matrix = synthetic(args["customers"], args["items"], args["purchases"], seed)
    clipped = clipped_purchases(matrix, clipping)
    started = time.perf_counter()
    x = unit_norm(user_factors(y, matrix, params))
    users = time.perf_counter() - started
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        stats = item_statistics(x, clipped, params)
        seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    vector = encode(stats, np.ones(args["items"], dtype=bool), params.factors)
    _write(Path(out), vector)
    np.save(Path(out).with_suffix(".support.npy"), stats.customers)
    return {
        "users": users,
        "first_statistics": seconds[0],
        "statistics": seconds[1],
        "encode": time.perf_counter() - started,
        "peak_gib": peak_resident_gib(),
        "pairs": float(matrix.nnz),
    }


def main() -> None:
    import multiprocessing

    parser = bench_arguments(__doc__ or "", "scalable-recommender")
    parser.add_argument("--customers", type=int, default=1_000_000, help="per retailer")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=30, help="per customer")
    parser.add_argument("--factors", type=int, default=32)
    args = parser.parse_args()
    shape = {"customers": args.customers, "items": args.items, "purchases": args.purchases}
    params = AlsParams(factors=args.factors, regularization=0.05, alpha=10.0)
    clipping = Clipping(max_items=50, max_purchases=5)
    pooled = sparse.vstack([synthetic(args.customers, args.items, args.purchases, s) for s in range(3)]).tocsr()
    baseline = pooled_epoch(pooled, params)
    del pooled

    y = initial_item_factors(args.items, params)
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-vector-sum-") as folder:
        inputs = {party: str(Path(folder) / f"{party}.i64") for party in PARTIES}
        with spawn.Pool(1, maxtasksperchild=1) as pool:  # one retailer at a time, each in a fresh process
            runs = [
                pool.apply(party_epoch, (seed, shape, params, clipping, y, inputs[party]))
                for seed, party in enumerate(PARTIES)
            ]
        length = Path(inputs[PARTIES[0]]).stat().st_size // 8
        support = sum(np.load(Path(inputs[p]).with_suffix(".support.npy")) for p in PARTIES)
        noises = {
            p: str(_write(Path(folder) / f"{p}.noise.i64", np.zeros(length, dtype=np.int64))) for p in PARTIES
        }
        request = VectorSumRequest(
            protocol=Protocol.ABY3, players=PARTIES, length=length, input_paths=inputs, noise_paths=noises
        )
        summed, secure_seconds = InProcessEngine().vector_sum(request)
    started = time.perf_counter()
    statistics = decode(summed, np.ones(args.items, dtype=bool), params.factors)
    statistics.customers = support
    solve_items(statistics, params, y)
    solve_seconds = time.perf_counter() - started
    rate = noise_rate(params, clipping)

    def slowest(key: str) -> float:
        return max(run[key] for run in runs)

    party_seconds = max(run["users"] + run["statistics"] + run["encode"] for run in runs)
    secure_epoch = party_seconds + secure_seconds + solve_seconds

    def row(step: str, seconds: float, bold: bool = False) -> str:
        ratio = f"{seconds / baseline:.2f}"
        return f"| {step} | {seconds:.1f} | {'**' + ratio + '**' if bold else ratio} |"

    lines = [
        f"Three retailers x {args.customers:,} customers x {args.items:,} products, about {args.purchases} "
        f"purchases each ({int(sum(run['pairs'] for run in runs)):,} customer-product pairs), {args.factors} "
        "factors; one epoch. Each retailer's part ran in a process of its own, one after the other; the "
        "slowest is counted (on their own hosts they run at the same time).",
        "",
        "| step | seconds | x pooled epoch |",
        "| --- | --- | --- |",
        row("pooled plaintext epoch (`implicit` ALS, CG, baseline)", baseline),
        row("customers' factors (implicit, same solver)", slowest("users")),
        row("per-item statistics, an epoch after the first", slowest("statistics")),
        row(f"fixed-point vector ({length:,} int64 per retailer)", slowest("encode")),
        row("secure sum of 3 vectors + 3 noise shares (ABY3, players in one process)", secure_seconds),
        row("item solve (coordinator)", solve_seconds),
        row("**secure epoch** (a retailer's part + sum + solve)", secure_epoch, bold=True),
        "",
        f"The first epoch in a retailer's process takes {slowest('first_statistics'):.1f} s for the statistics "
        "(fresh memory). Peak memory per retailer process: "
        + ", ".join(f"{p} {run['peak_gib']:.1f} GiB" for p, run in zip(PARTIES, runs))
        + f". Noise: OpenDP's discrete Gaussian draws {rate:,.0f} values/s on one core; an epoch needs "
        f"{length:,} per compute party ({length / rate:,.0f} s), so each compute party draws it ahead of the "
        "run (it does not depend on the data); drawing it in the run would dominate the epoch.",
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
