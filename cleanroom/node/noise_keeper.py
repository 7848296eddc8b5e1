"""Keeps a compute party's noise reserve (`privacy.noise_reserve`) ready for its next runs: for every
spec the party signed whose scalable recommender is noised, the draws a run may take.

`cleanroom node draw-noise` fills it once, with progress; `cleanroom node start` runs this module as a
child at the lowest CPU priority, which tops the reserve up after each run (a run on the same cores
barely notices it). Only scales and counts are logged, never a draw.

    python -m cleanroom.node.noise_keeper --config node.yaml [--runs 1] [--every 60]
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable

from cleanroom.errors import ConfigurationError
from cleanroom.node import registry
from cleanroom.node.config import Node
from cleanroom.privacy.noise_reserve import NOISE_DIR, NoiseReserve
from cleanroom.recommend.statistics_noise import run_needs
from cleanroom.spec.analyses import RecommenderMode
from cleanroom.spec.catalogue import load_catalogue

log = logging.getLogger("cleanroom.noise")
KEEPER_SECONDS = 60.0  # how often the keeper looks whether a run took from the reserve


def reserve_of(node: Node) -> NoiseReserve:
    return NoiseReserve(node.workspace / NOISE_DIR)


def planned(node: Node, runs: int = 1) -> dict[float, int]:
    """Per scale, the draws the next `runs` runs of every spec this party computes for may take. A spec
    the node cannot serve (altered since signed) is skipped: `node start` says so."""
    plan: dict[float, int] = {}
    for signature in registry.signatures(node):
        try:
            pinned = registry.resolve(node, signature.spec_sha256)
        except ConfigurationError:
            continue
        spec, analysis = pinned.spec, pinned.spec.joint_recommender
        computes = node.party in {p.name for p in spec.compute_parties}
        if analysis is None or analysis.mode is not RecommenderMode.SCALABLE or not computes:
            continue
        items = len(load_catalogue(pinned.path, spec))
        for scale, count in run_needs(analysis, items).items():
            plan[scale] = plan.get(scale, 0) + count * runs
    return plan


def missing(node: Node, runs: int = 1) -> dict[float, int]:
    reserve = reserve_of(node)
    gaps = {scale: count - reserve.available(scale) for scale, count in planned(node, runs).items()}
    return {scale: gap for scale, gap in gaps.items() if gap > 0}


def top_up(node: Node, runs: int = 1, progress: Callable[[int], object] | None = None) -> int:
    """Draw what the reserve lacks for the next `runs` runs; returns how many draws that took."""
    reserve = reserve_of(node)
    return sum(reserve.fill(scale, count, progress) for scale, count in planned(node, runs).items())


def keep(node: Node, runs: int, every: float) -> None:
    """Top up, then look again every `every` seconds, until killed (with the node)."""
    os.nice(19)  # runs always come first
    while True:
        started = time.monotonic()
        drawn = top_up(node, runs)
        if drawn:
            seconds = time.monotonic() - started
            log.info("noise reserve of %s: %d draws added in %.0f s", node.party, drawn, seconds)
        time.sleep(every)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--every", type=float, default=KEEPER_SECONDS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    keep(Node.load(args.config), args.runs, args.every)


if __name__ == "__main__":
    main()
