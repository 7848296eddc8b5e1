"""Entry point of a party's own worker process: `python -m cleanroom.party COMMAND ...`.

It runs with the party's workspace as working directory, prints one JSON line for the coordinator
(statuses and expectation names only) and keeps details in the party's own log.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import sys
from pathlib import Path

import numpy as np

from cleanroom.errors import CleanroomError, ConfigurationError
from cleanroom.party.host import RESULT_PREFIX
from cleanroom.party.preparation import PreparationSummary, prepare_party
from cleanroom.party.verification import check_contribution, load_own_aggregates, write_market_share
from cleanroom.spec import load_spec

log = logging.getLogger("cleanroom.party")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cleanroom.party")
    parser.add_argument(
        "command", choices=["prepare", "verify", "psi", "receive-share", "recommender-input", "recommend"]
    )
    parser.add_argument("--party", required=True)
    parser.add_argument("--spec", required=True, type=Path)
    parser.add_argument("--keys", default="email,phone", help="psi: join keys to match on")
    parser.add_argument("--ordered", action="store_true", help="psi: keep row order for overlap indicators")
    parser.add_argument("--owner", help="receive-share: whose indicator bits the share is of")
    args = parser.parse_args(argv)
    workspace = Path.cwd()
    log_dir = workspace / "logs"
    log_dir.mkdir(exist_ok=True)
    handler = logging.FileHandler(log_dir / "party.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    spec = load_spec(args.spec)
    try:
        if args.command == "psi":
            # stdout carries the binary PSI session; only blinded points are ever written to it.
            from cleanroom.party import psi_session

            served = psi_session.run(workspace, args.party, tuple(args.keys.split(",")), args.ordered)
            log.info("psi: session ended after %d requests", served)
            return 0
        if args.command == "receive-share":
            from cleanroom.secure.shared_sales import indicator_share_file

            # A random-looking share of another party's (or its own) overlap indicators, kept for its player.
            if args.owner not in {p.name for p in spec.data_parties}:
                raise ConfigurationError(f"unknown party '{args.owner}'", where="receive-share --owner")
            share = base64.b64decode(json.loads(sys.stdin.read())["share"])
            (workspace / indicator_share_file(args.owner)).write_bytes(share)
            emit({"stored": True})
            return 0
        if args.command == "recommender-input":
            from cleanroom.party.recommendations import prepare_recommender_input

            modelled = prepare_recommender_input(spec, args.spec, workspace)
            log.info("recommender-input: %d customers modelled", modelled)
            emit({"ready": True})  # the count stays here: it is this party's own figure
            return 0
        if args.command == "recommend":
            from cleanroom.party.recommendations import deliver_recommendations

            item_factors = np.asarray(json.loads(sys.stdin.read())["item_factors"], dtype=np.float64)
            recall = deliver_recommendations(spec, args.spec, workspace, item_factors)
            log.info("recommend: %s", recall.model_dump_json())
            shared = (
                recall.model_dump() if spec.joint_recommender and spec.joint_recommender.share_evaluation else {}
            )
            emit({"delivered": True, "recall": shared})
            return 0
        if args.command == "prepare":
            summary = prepare_party(spec, args.party, workspace)
            log.info("prepare: %s", summary.to_json())
            emit(json.loads(summary.to_json()))
            return 0
        analysis = spec.category_month_sales
        cells = analysis.cells
        revealed = json.loads(sys.stdin.read())
        own = load_own_aggregates(workspace, cells)
        check = check_contribution(args.party, own, revealed["sales_cents"], revealed["shown"])
        # The party's own share of each revealed cell: computed and kept here, never sent anywhere.
        write_market_share(workspace, analysis, own, revealed["sales_cents"])
        log.info("verify: %s", check.to_dict())
        emit(check.to_dict())
        return 0
    except CleanroomError as exc:
        log.exception("%s failed", args.command)
        emit(PreparationSummary(party=args.party, status="failed", error=exc.one_line()).__dict__)
        return 3


def emit(payload: dict) -> None:
    print(RESULT_PREFIX + json.dumps(payload, sort_keys=True), flush=True)


if __name__ == "__main__":
    sys.exit(main())
