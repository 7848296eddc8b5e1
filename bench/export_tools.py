"""Benchmark: a data engineer's tools on a 10 million line export, `cleanroom inspect` and `cleanroom
party check`, against a plain polars read of the same file in the same run.

    make bench-export-tools       # or: .venv/bin/python -m bench.export_tools --rows 10000000

Generates a retailer's exports (the preparation benchmark's generator), then runs each command in a
fresh interpreter as a user would (`.venv/bin/cleanroom ...`), sampling peak memory; writes the result
into BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from rich.console import Console

from bench.prepare_party import BASELINE, PARTY, gib, large_party, timed
from bench.report import publish
from cleanroom.demo_setup import node_config_path

console = Console()
CLEANROOM = str(Path(sys.executable).parent / "cleanroom")


def main() -> None:
    args, settings, spec_path, home, size = large_party(__doc__, "export-tools")
    export = home / "raw" / "transactions.csv"

    with console.status("baseline: plain polars read_csv of the same file"):
        base, base_peak = timed([sys.executable, *BASELINE, str(export)], home)
    with console.status("cleanroom inspect transactions.csv"):
        inspect, inspect_peak = timed([CLEANROOM, "inspect", str(export)], home)
    config = node_config_path(settings, PARTY)
    with console.status("cleanroom party check (all three exports)"):
        check, check_peak = timed(
            [CLEANROOM, "party", "check", "--spec", str(spec_path), "--config", str(config)], home
        )
    lines = [
        f"Measured {date.today()}; {args.rows:,} transaction lines ({size / 1e9:.2f} GB CSV), "
        f"{args.customers:,} customers, one party, each command in a fresh interpreter as a user runs it.",
        "",
        "| command | wall time | ratio to the baseline | peak resident |",
        "| --- | --- | --- | --- |",
        f"| baseline: polars `read_csv` of transactions.csv | {base:.1f} s | 1.0x | {gib(base_peak.resident)} |",
        f"| `cleanroom inspect transactions.csv` (every row profiled) | {inspect:.1f} s | {inspect / base:.1f}x | "
        f"{gib(inspect_peak.resident)} |",
        f"| `cleanroom party check` (three exports, every rule on every row, writes nothing) | {check:.1f} s | "
        f"{check / base:.1f}x | {gib(check_peak.resident)} |",
        "",
        "`inspect` tries every type and date format on the first 100,000 rows, then profiles the whole file",
        "in one streaming pass (fill, approximate distinct values, parse share of the chosen type). `party",
        "check` runs preparation's row checks (parsing, every rule, foreign keys, duplicate keys) without",
        "Great Expectations, pseudonyms or writing anything.",
    ]
    publish(
        lines, "export-tools", "Export tools, 10 M lines", command="make bench-export-tools", dry_run=args.no_write
    )


if __name__ == "__main__":
    main()
