"""Benchmark: the secure joint recommender (matrix factorization under MPC) against plaintext.

    make bench-recommender    # or: .venv/bin/python -m bench.recommender

MovieLens-100K (from the recbole 1.2.1 wheel) split across three retailers by user, each user's latest
20% held out. In one run: plaintext epoch (numpy, the same dense algorithm) as the baseline; secure
epoch with the three players in one process (TF Encrypted LocalConfig) and as three processes over
gRPC; accuracy of the secure model against plaintext pooled training and against each retailer
training alone (the collaboration lift); and an epoch at ML-1M shape (6040 x 3706, synthetic ratings).
Per-epoch times are the difference between two run lengths, so graph tracing is excluded (and shown).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.report import bench_arguments, fresh_workspace, publish
from cleanroom.recommend import factorization as mf
from cleanroom.recommend.movielens import PartyRatings, load_interactions, split_parties
from cleanroom.secure.engine import InProcessEngine
from cleanroom.secure.factorization import (
    RATINGS_INPUT_PATH,
    USER_FACTORS_OUTPUT_PATH,
    FactorizationRequest,
    read_user_factors,
    write_party_ratings,
)
from cleanroom.secure.local_cluster import local_cluster
from cleanroom.spec import Protocol

console = Console()


def request_for(
    players: list[str],
    rows: int,
    items: int,
    config: mf.MFConfig,
    epochs: int,
    paths: dict[str, Path] | None,
    timing_epochs: int = 0,
    protocol: Protocol = Protocol.ABY3,
) -> FactorizationRequest:
    return FactorizationRequest.from_config(
        replace(config, epochs=epochs),
        protocol,
        players,
        rows,
        items,
        timing_epochs=timing_epochs,
        input_paths={p: str(paths[p] / RATINGS_INPUT_PATH) for p in players} if paths else {},
        output_paths={p: str(paths[p] / USER_FACTORS_OUTPUT_PATH) for p in players} if paths else {},
    )


def plaintext_epoch(ratings: np.ndarray, mask: np.ndarray, config: mf.MFConfig, repeats: int = 30) -> float:
    """Fastest of single epochs: BLAS timings on this shared 2-core machine vary 4-8 ms between runs,
    so the fastest is the stable baseline (and gives the least flattering ratio)."""
    u, v = mf.initial_factors(*ratings.shape, config)
    centred = mf.centred(ratings, mask, config)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        mf.epoch(u, v, centred, mask, config)
        times.append(time.perf_counter() - started)
    return float(np.min(times))


def padded(parties: list[PartyRatings], rows: int) -> tuple[np.ndarray, np.ndarray]:
    items = parties[0].train_ratings.shape[1]
    ratings, mask = np.zeros((rows * len(parties), items)), np.zeros((rows * len(parties), items))
    for i, p in enumerate(parties):
        n = p.train_ratings.shape[0]
        ratings[i * rows : i * rows + n], mask[i * rows : i * rows + n] = p.train_ratings, p.train_mask
    return ratings, mask


def main() -> None:
    parser = bench_arguments(__doc__, "recommender")
    parser.add_argument("--epochs", type=int, default=60, help="training length for the accuracy comparison")
    args = parser.parse_args()
    config = mf.MFConfig(epochs=args.epochs, learning_rate=0.005)

    fresh_workspace(args.workspace)
    players = ["northwind", "harbor", "alpine"]
    homes = {p: args.workspace / "players" / p for p in players}  # each player's working folder
    parties = split_parties(load_interactions(), parties=len(players))
    rows = max(p.train_ratings.shape[0] for p in parties)
    items = parties[0].train_ratings.shape[1]
    for name, party in zip(players, parties):
        homes[name].mkdir(parents=True, exist_ok=True)
        centred = mf.centred(party.train_ratings, party.train_mask, config)
        write_party_ratings(str(homes[name] / RATINGS_INPUT_PATH), centred, party.train_mask, rows)

    ratings, mask = padded(parties, rows)
    plain = plaintext_epoch(ratings, mask, config)

    with console.status("secure epochs, players in one process"):
        timed = InProcessEngine().train_factorization(request_for(players, rows, items, config, 1, homes, 10))
        local, local_fixed = timed.seconds_per_epoch or 0.0, timed.seconds
    with console.status("secure epochs, Pond, players in one process"):
        pond_request = request_for(players, rows, items, config, 1, homes, 10, Protocol.POND)
        pond = InProcessEngine().train_factorization(pond_request).seconds_per_epoch or 0.0

    with local_cluster(homes, args.workspace / "cluster") as engine:
        with console.status("secure epochs, players as sandboxed processes behind mutual TLS"):
            timed = engine.train_factorization(request_for(players, rows, items, config, 1, None, 10))
            remote, remote_fixed = timed.seconds_per_epoch or 0.0, timed.seconds
        with console.status(f"secure training, {args.epochs} epochs, players as processes"):
            trained = engine.train_factorization(request_for(players, rows, items, config, args.epochs, None))

    secure_items = np.asarray(trained.item_factors)
    u, v = mf.train(ratings, mask, config)
    table = []
    for i, (name, party) in enumerate(zip(players, parties)):
        n = party.train_ratings.shape[0]
        secure_users = read_user_factors(str(homes[name] / USER_FACTORS_OUTPUT_PATH))[:n]
        alone = mf.train(party.train_ratings, party.train_mask, config)
        table.append(
            (
                name,
                mf.rmse(secure_users, secure_items, party.test, config),
                mf.rmse(u[i * rows : i * rows + n], v, party.test, config),
                mf.rmse(*alone, party.test, config),
                mf.recall_at(secure_users, secure_items, party),
                mf.recall_at(*alone, party),
            )
        )

    with console.status("ML-1M shape: one secure epoch, players in one process"):
        big = synthetic_parties(6040, 3706, len(players))
        big_rows = max(p.train_ratings.shape[0] for p in big)
        big_homes = {p: args.workspace / "ml1m" / p for p in players}
        for name, party in zip(players, big):
            big_homes[name].mkdir(parents=True, exist_ok=True)
            write_party_ratings(
                str(big_homes[name] / RATINGS_INPUT_PATH),
                mf.centred(party.train_ratings, party.train_mask, config),
                party.train_mask,
                big_rows,
            )

        timed = InProcessEngine().train_factorization(
            request_for(players, big_rows, 3706, config, 1, big_homes, 2)
        )
        big_epoch = timed.seconds_per_epoch or 0.0
        big_plain = plaintext_epoch(*padded(big, big_rows), replace(config), repeats=3)

    worst_gap = max(abs(s - p) / p for _, s, p, _, _, _ in table)
    lines = [
        f"Measured {date.today()}; ABY3, MovieLens-100K ({len(players)} retailers, {rows} users each after "
        f"padding, {items} items, k = {config.factors}), full-batch dense training; per-epoch times exclude "
        "graph tracing (shown separately).",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| plaintext epoch (numpy, fastest of 30) | {plain * 1000:.1f} ms | baseline |",
        f"| secure epoch, players in one process | {local * 1000:.0f} ms ({local / plain:.0f}x) | retired |",
        f"| secure epoch, players as 3 sandboxed processes, mutual TLS | {remote * 1000:.0f} ms "
        f"({remote / plain:.0f}x) "
        "| retired |",
        f"| secure epoch, Pond (2 parties + dealer), one process | {pond * 1000:.0f} ms ({pond / plain:.0f}x) | |",
        f"| graph tracing + first epoch, one process / processes | {local_fixed:.1f} s / {remote_fixed:.1f} s | |",
        f"| worst secure vs plaintext RMSE gap after {args.epochs} epochs | {worst_gap:.2%} | <= 1% |",
        f"| ML-1M shape (6040 x 3706) secure epoch, one process | {big_epoch:.1f} s "
        f"(plaintext {big_plain:.2f} s) | <= 20 s |",
        "",
        "Accuracy on each retailer's held-out interactions (RMSE lower is better, Recall@10 higher):",
        "",
        "| retailer | secure joint RMSE | plaintext pooled RMSE | alone RMSE | lift (alone - joint) "
        "| secure Recall@10 | alone Recall@10 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {n} | {s:.4f} | {p:.4f} | {a:.4f} | {a - s:+.4f} | {rs:.3f} | {ra:.3f} |"
            for n, s, p, a, rs, ra in table
        ],
        "",
        "This dense model is kept as the oblivious mode for small catalogues: it hides even who bought what "
        "from the computation, at a cost of users x items x factors per epoch. The earlier targets (<= 10x in "
        "one process, <= 25x across processes) are retired: int64 matrix products get no vector units on "
        "this CPU, which puts the floor at >= 21x the plaintext epoch before secure randomness and truncation "
        "(443 M int64 multiply-adds per epoch at this shape). Across processes an epoch costs "
        f"{remote / (rows * len(players) * items * config.factors) * 1e9:.1f} ns per user x item x factor; "
        "a spec whose oblivious training would exceed an hour at that rate is refused when it is pinned, "
        "with the estimate (`cleanroom/recommend/oblivious_cost.py`). Retail scale is the scalable mode's "
        "(next section).",
    ]
    publish(
        lines,
        "recommender",
        "Secure joint recommender (matrix factorization under MPC)",
        command="make bench-recommender",
        dry_run=args.no_write,
    )


def synthetic_parties(users: int, items: int, parties: int, density: float = 0.045) -> list[PartyRatings]:
    """ML-1M-shaped random ratings (only the shape matters for the time per epoch)."""
    rng = np.random.default_rng(1)
    out = []
    for part in np.array_split(np.arange(users), parties):
        mask = (rng.random((part.size, items)) < density).astype(np.float64)
        ratings = mask * rng.integers(1, 6, (part.size, items))
        out.append(PartyRatings(part, ratings, mask, np.zeros((0, 3))))
    return out


if __name__ == "__main__":
    main()
