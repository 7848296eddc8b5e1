"""Benchmark: the demo lifecycle as a consortium of nodes vs the previous single-host topology.

    sudo make bench-topology   # or: .venv/bin/python -m bench.lifecycle_topology (as root)

Same demo data (scale 1.0, seed 7) for every topology, each lifecycle run three times (the later runs
find every party's prepared data unchanged, as a monthly rerun of unchanged exports would; their mean
is compared, as one run varies by several seconds on a busy 2-core host):
- baseline, in the same run: the lifecycle of commit e42b64a (the coordinator starts every party's
  processes itself on one host, players on loopback without TLS), from a git worktree;
- `make demo` now: one node per retailer as its own processes, Prefect deployments on per-party work
  pools, sandboxed players behind mutual TLS, messages through the object store, all on one host;
- the consortium across hosts: every node, the coordinator and the shared services in their own
  network namespace, each node under its own Unix user (as the end-to-end tests build it).
Times are the lifecycle flow's own (its KPI history), without starting servers or nodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from statistics import mean

from rich.console import Console

from bench.cpu_split import CpuSplit
from bench.report import ROOT, bench_arguments, fresh_workspace, publish
from cleanroom.spec import pin_spec

BASELINE_COMMIT = "e42b64a"
RUNS = 3
console = Console()


def lifecycle_seconds(history: Path) -> list[float]:
    return [json.loads(line)["total_seconds"] for line in history.read_text().splitlines()]


def run_demo(environment: dict[str, str], cwd: Path | None = None) -> None:
    """One `cleanroom demo`; a failure stops the benchmark with the end of what the demo printed."""
    outcome = subprocess.run(
        [sys.executable, "-m", "flows.cli", "demo"], cwd=cwd, env=environment, capture_output=True, text=True
    )
    if outcome.returncode != 0:
        raise SystemExit(f"demo failed in {cwd or ROOT}:\n{outcome.stdout[-3000:]}{outcome.stderr[-3000:]}")


def baseline(workspace: Path) -> list[float]:
    """Two demo runs of the previous topology, from a worktree of its commit."""
    tree = workspace / "baseline-tree"
    shutil.rmtree(tree, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=True)
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), BASELINE_COMMIT],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        environment = os.environ | {
            "PYTHONPATH": str(tree),
            "CLEANROOM_WORKSPACE": str(workspace / "baseline"),
            "PREFECT_HOME": str(workspace / "baseline" / "prefect"),
        }
        environment.pop("PREFECT_API_URL", None)
        (workspace / "baseline" / "prefect").mkdir(parents=True, exist_ok=True)
        for _ in range(RUNS):
            run_demo(environment, cwd=tree)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    return lifecycle_seconds(workspace / "baseline" / "history" / "kpis.jsonl")


def demo_now(workspace: Path) -> list[float]:
    fresh_workspace(workspace / "demo", scale=1.0)
    environment = os.environ | {"CLEANROOM_WORKSPACE": str(workspace / "demo")}
    environment.pop("PREFECT_API_URL", None)
    environment.pop("CLEANROOM_S3_ENDPOINT_URL", None)
    for _ in range(RUNS):
        run_demo(environment)
    return lifecycle_seconds(workspace / "demo" / "history" / "kpis.jsonl")


def across_hosts(workspace: Path) -> tuple[list[float], CpuSplit]:
    from tests.e2e.conftest import consortium_across_hosts

    settings, spec_path = fresh_workspace(workspace / "hosts", scale=1.0)
    split = CpuSplit()
    with consortium_across_hosts(settings, pin_spec(spec_path)) as consortium:
        for run in range(RUNS):
            with split if run == 1 else contextlib.nullcontext():
                outcome = consortium.run()
            if outcome.returncode != 0:
                raise SystemExit(outcome.stdout[-2000:] + outcome.stderr[-2000:])
        return lifecycle_seconds(consortium.coordinator_workspace / "history" / "kpis.jsonl"), split


def _listed(seconds: list[float]) -> str:
    return ", ".join(f"{value:.0f} s" for value in seconds)


def main() -> None:
    parser = bench_arguments(__doc__, "topology")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the consortium across hosts uses network namespaces and a user per node")
    shutil.rmtree(args.workspace, ignore_errors=True)
    args.workspace.mkdir(parents=True)
    with console.status(f"baseline: the previous single-host topology ({BASELINE_COMMIT}), {RUNS} demo runs"):
        old = baseline(args.workspace)
    with console.status(f"make demo now: one node per retailer on this host, {RUNS} runs"):
        demo = demo_now(args.workspace)
    with console.status(f"the consortium across network namespaces, {RUNS} runs"):
        hosts, split = across_hosts(args.workspace)
    rows = [("previous single-host topology (baseline)", old), ("`make demo` now: nodes on one host, TLS", demo)]
    rows.append(("consortium across hosts (namespaces, own users, Prefect on PostgreSQL), TLS", hosts))
    lines = [
        f"Measured {date.today()} on 2 cores; the demo consortium (four retailers, scale 1.0), lifecycle flow "
        "time from its KPI history. Target for the consortium across hosts: <= 1.3x the previous topology.",
        "",
        "| topology | first run (prepares) | later runs (data unchanged) | their mean vs baseline |",
        "| --- | --- | --- | --- |",
        *[
            f"| {name} | {t[0]:.0f} s | {_listed(t[1:])} | {mean(t[1:]) / mean(old[1:]):.2f}x |"
            for name, t in rows
        ],
        "",
        *split.table(hosts[1]),
    ]
    publish(
        lines,
        "topology",
        "Demo lifecycle: a consortium of nodes vs one host",
        command="sudo make bench-topology",
        dry_run=args.no_write,
    )


if __name__ == "__main__":
    main()
