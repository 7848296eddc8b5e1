"""Benchmark: the scalable recommender's whole training at retail scale through the product's own code,
all of it on this one 2-core machine: three retailers' node sides (`joint_epochs.Participant`, each in a
process of its own with its data and its customers' factors), their three players as sandboxed processes
behind mutual TLS, the coordinator's loop (`joint_epochs.coordinate`) and the sealed exchange through a
real S3 server (moto on loopback); against `implicit` ALS on the pooled data.

    .venv/bin/python -m bench.scalable_training [--customers 1000000] [--items 20000] [--epochs 10]
                                                [--sweep 0.25,0.5]

Synthetic purchases as in `bench.scalable_recommender` (the same generator and seeds). The support check
runs first, as in a run. With `--sweep`, the training is repeated at those fractions of the customers, to
show how its time grows with them. Peak memory per party is its node process's plus its player's.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import date
from pathlib import Path
from secrets import token_hex
from typing import Any

import numpy as np
import yaml
from scipy import sparse

from bench.memory import peak_resident_gib
from bench.report import bench_arguments, fresh_workspace, publish
from bench.scalable_recommender import pooled_epoch, synthetic
from cleanroom.recommend.federated_als import AlsParams
from cleanroom.spec.models import CollaborationSpec

PARTIES = ["northwind", "harbor", "alpine"]
TIMEOUT = 1800.0


def consortium_spec(spec_path: Path, factors: int, epochs: int, rho: float | None) -> CollaborationSpec:
    """The demo spec with its three compute retailers only, the recommender at the benchmark's settings;
    with `rho`, noised, each purchase counted once at confidence 1 (no S_i noise: see statistics_noise)."""
    raw = yaml.safe_load(spec_path.read_text())
    raw["parties"] = [p for p in raw["parties"] if p["name"] in PARTIES]
    for analysis in raw["analyses"]:
        if analysis["kind"] == "joint_recommender":
            analysis.pop("search", None)
            analysis.update(factors=factors, epochs=epochs, regularization=0.05, confidence=10)
            if rho is not None:
                analysis.update(rho=rho, confidence=1, max_purchases_per_item=1, max_items_per_customer=50)
                raw["privacy"]["budget"] = {"period": "month", "rho_per_period": rho + 1, "lifetime_rho": 100}
    return CollaborationSpec.model_validate(raw)


def retailer(party: str, seed: int, shape: dict[str, int], spec_json: str, workspace: str, endpoint: str,
             run_id: str, folder: str) -> dict[str, float]:  # fmt: skip
    """One retailer's node side, in a process of its own: its purchases, the support grid for its
    player, then every epoch's statistics until the coordinator's loop ends."""
    from threadpoolctl import threadpool_limits

    from cleanroom.demo_setup import node_config_path
    from cleanroom.exchange.store import RunExchange
    from cleanroom.node.config import Node
    from cleanroom.party.scalable_recommendations import Purchases
    from cleanroom.privacy.noise_reserve import NoiseReserve
    from cleanroom.recommend.federated_training import item_support
    from cleanroom.recommend.joint_epochs import SUPPORT_FILE, Participant
    from cleanroom.recommend.retail import scalable_settings
    from cleanroom.recommend.statistics_noise import run_needs
    from cleanroom.settings import Settings

    threadpool_limits(1, "blas")  # implicit's own threads do the parallel work
    settings = Settings(workspace=Path(workspace), s3_endpoint_url=endpoint)
    node = Node.load(node_config_path(settings, party), settings)
    spec = CollaborationSpec.model_validate_json(spec_json)
    analysis = spec.joint_recommender
    assert analysis is not None
    matrix = synthetic(shape["customers"], shape["items"], shape["purchases"], seed)
    player, outputs = Path(folder) / "player", Path(folder) / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    reserve, filled = None, 0.0
    if analysis.rho is not None:  # the noise is drawn ahead, as the node's keeper does: timed apart
        started = time.perf_counter()
        reserve = NoiseReserve(Path(folder) / "noise")
        for scale, count in run_needs(analysis, shape["items"]).items():
            reserve.fill(scale, count)
        filled = time.perf_counter() - started
    support = item_support(matrix, scalable_settings(analysis)[1])
    partial = player / "support.partial"
    partial.write_bytes(np.stack([support, support]).astype("<i8").tobytes())
    partial.replace(player / SUPPORT_FILE)
    purchases = Purchases(np.arange(matrix.shape[0]), matrix, sparse.csr_matrix(matrix.shape, dtype=np.float32))
    generated = peak_resident_gib()
    Path("/proc/self/clear_refs").write_text("5")  # peak from here: a node loads its data, it does not generate it
    started = time.perf_counter()
    exchange = RunExchange.for_run(node.store, spec, run_id, node.member)
    side = Participant(analysis, purchases, exchange, party, True, player, outputs, TIMEOUT, lambda: None, reserve)
    side.take_part()
    return {
        "seconds": time.perf_counter() - started,
        "noise_drawn_ahead": filled,
        "noise_ready": side.noise_ready,
        "noise_drawn": side.noise_drawn,
        "peak_gib": peak_resident_gib(),
        "generation_peak_gib": generated,
    }


def player_peaks() -> dict[str, float]:
    """Each serving player's peak resident memory (GiB), from /proc."""
    peaks = {}
    for process in Path("/proc").glob("[0-9]*"):
        try:
            command = (process / "cmdline").read_bytes().split(b"\0")
            if b"cleanroom.secure.player" not in command:
                continue
            party = command[command.index(b"cleanroom.secure.player") + 1].decode()
            peaks[party] = peak_resident_gib(process.name)
        except (OSError, ValueError, IndexError):
            continue
    return peaks


def training(root: Path, spec: CollaborationSpec, settings: Any, shape: dict[str, int]) -> dict[str, Any]:
    """One whole training in the real topology; its seconds, secure seconds and peaks."""
    from cleanroom.errors import CleanroomError
    from cleanroom.exchange.store import RunExchange
    from cleanroom.recommend.joint_epochs import SUPPORT_FILE, coordinate
    from cleanroom.secure.local_cluster import local_cluster
    from cleanroom.storage.moto_server import MotoServer
    from cleanroom.storage.s3 import S3ObjectStore
    from tasks.context import coordinator_member

    run_id = f"{date.today():%Y%m%d}T000000Z-{token_hex(4)}"
    folders = {party: root / run_id / party for party in PARTIES}
    for folder in folders.values():
        (folder / "player").mkdir(parents=True)
    with MotoServer(root / "moto") as server:
        store = S3ObjectStore(server.endpoint_url, "eu-central-1", settings.aws_access_key_id,
                              settings.aws_secret_access_key)  # fmt: skip
        store.ensure_bucket(spec.exchange_bucket)
        spawn = multiprocessing.get_context("spawn")
        with spawn.Pool(len(PARTIES)) as pool:
            arguments = (
                shape,
                spec.model_dump_json(exclude_unset=True),
                str(settings.workspace),
                server.endpoint_url,
                run_id,
            )
            sides = [
                pool.apply_async(retailer, (party, seed, *arguments, str(folders[party])))
                for seed, party in enumerate(PARTIES)
            ]

            def failed() -> CleanroomError | None:
                for side in sides:
                    if side.ready() and not side.successful():
                        side.get()  # raises the retailer's own error
                return None

            while not all((folder / "player" / SUPPORT_FILE).exists() for folder in folders.values()):
                failed()
                time.sleep(0.5)
            exchange = RunExchange.for_run(store, spec, run_id, coordinator_member(settings))
            workdirs = {party: folder / "player" for party, folder in folders.items()}
            with local_cluster(workdirs, root / run_id / "cluster", tls=True) as engine:
                started = time.perf_counter()
                model = coordinate(
                    spec, shape["items"], engine, exchange, PARTIES, TIMEOUT, failed, lambda line: print(line)
                )
                wall = time.perf_counter() - started
                players = player_peaks()
            parties = [side.get(timeout=TIMEOUT) for side in sides]
    return {
        "wall": wall,
        "secure": model.secure_seconds,
        "items": int(model.released.sum()),
        "node_peak": {p: r["peak_gib"] for p, r in zip(PARTIES, parties)},
        "parties": parties,
        "player_peak": players,
    }


def main() -> None:
    parser = bench_arguments(__doc__ or "", "scalable-training")
    parser.add_argument("--customers", type=int, default=1_000_000, help="per retailer")
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=30, help="per customer")
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sweep", default="", help="fractions of --customers to train at as well, e.g. 0.25,0.5")
    parser.add_argument("--rho", type=float, help="noise the training (each purchase counted once)")
    args = parser.parse_args()
    settings, spec_path = fresh_workspace(args.workspace / "consortium")
    spec = consortium_spec(spec_path, args.factors, args.epochs, args.rho)
    params = AlsParams(factors=args.factors, regularization=0.05, alpha=1.0 if args.rho else 10.0)
    pooled = sparse.vstack([synthetic(args.customers, args.items, args.purchases, s) for s in range(3)]).tocsr()
    pairs = pooled.nnz
    baseline = pooled_epoch(pooled, params)
    del pooled
    fractions = sorted({1.0, *(float(f) for f in args.sweep.split(",") if f)})
    results = {}
    for fraction in fractions:
        shape = {"customers": int(args.customers * fraction), "items": args.items, "purchases": args.purchases}
        results[fraction] = training(args.workspace / "runs", spec, settings, shape)
    full = results[1.0]
    lines = [
        f"Measured {date.today()} on 2 cores, everything on this one machine: three retailers x "
        f"{args.customers:,} customers x {args.items:,} products, about {args.purchases} purchases each "
        f"({pairs:,} customer-product pairs), {args.factors} factors, {args.epochs} epochs, no search; "
        f"{full['items']:,} products passed the support check.",
        "",
        "| measure | value | target |",
        "| --- | --- | --- |",
        f"| pooled plaintext epoch (`implicit` ALS, baseline) | {baseline:.1f} s | |",
        f"| whole secure training (support check, {args.epochs} epochs) | {full['wall'] / 60:.1f} min "
        "| <= 10 min |",
        f"| per epoch | {full['wall'] / args.epochs:.1f} s ({full['wall'] / args.epochs / baseline:.2f}x pooled) "
        "| <= 3x |",
        f"| of which in the players' secure sums | {full['secure']:.0f} s | |",
    ]
    for party in PARTIES:
        node, player = full["node_peak"][party], full["player_peak"].get(party, 0.0)
        lines.append(
            f"| peak memory, {party} (node {node:.1f} GiB + player {player:.1f} GiB) | {node + player:.1f} GiB "
            "| <= 4 GiB |"
        )
    generation = max(r["generation_peak_gib"] for r in full["parties"])
    lines += [
        "",
        "A node's figure is its peak during the training, its purchases in memory (generating the synthetic "
        f"purchases took up to {generation:.1f} GiB before; a node loads its prepared purchases instead).",
    ]
    if len(results) > 1:
        lines += [
            "",
            "| customers per retailer | whole training | per customer-epoch | added per 1 M customers |",
            "| --- | --- | --- | --- |",
        ]
        previous: tuple[int, float] | None = None
        for fraction, result in results.items():
            customers = int(args.customers * fraction)
            added = (
                f"{(result['wall'] - previous[1]) / (customers - previous[0]) * 1e6 / 60:.1f} min"
                if previous
                else ""
            )
            lines.append(
                f"| {customers:,} | {result['wall'] / 60:.1f} min | "
                f"{result['wall'] / (customers * args.epochs) * 1e6:.1f} us | {added} |"
            )
            previous = (customers, result["wall"])
    if args.rho is not None:
        ahead = max(r["noise_drawn_ahead"] for r in full["parties"])
        ready, drawn = full["parties"][0]["noise_ready"], full["parties"][0]["noise_drawn"]
        lines += [
            "",
            f"Noised: rho {args.rho:g} for the whole training, confidence 1 and each purchase counted once (so "
            f"the S_i carry no noise), at most 50 products per customer. Each retailer drew its noise ahead into "
            f"its reserve ({ahead:.0f} s, the three at once on the 2 cores; not counted above, as a node's "
            f"keeper draws it between runs); the training took {ready:,} draws from it per retailer and drew "
            f"{drawn:,} itself.",
        ]
    lines += [
        "",
        "The three retailers share the 2 cores here (each on its own host, their parts run at the same time "
        "on their own cores), so the time is an upper bound for one retailer per machine.",
    ]
    command = "python -m bench.scalable_training" + (f" --sweep {args.sweep}" if args.sweep else "")
    command += f" --rho {args.rho:g}" if args.rho is not None else ""
    noised = args.rho is not None
    publish(
        lines,
        "scalable-training" + ("-noised" if noised else ""),
        "Scalable joint recommender: the whole training in the real topology" + (", noised" if noised else ""),
        command=command,
        dry_run=args.no_write,
    )


if __name__ == "__main__":
    main()
