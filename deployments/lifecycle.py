"""Deployments of the collaboration lifecycle, served by one long-running process.

    .venv/bin/python -m deployments.lifecycle --spec var/demo/consortium.yaml

Needs a Prefect server (`make server`; PREFECT_API_URL=http://127.0.0.1:4200/api). For the demo spec it
also starts the object store and one node per retailer (`--no-demo-nodes` when the parties run their
own, as in a real consortium). Three ways in:
the UI ("Run" on `collaboration-lifecycle/on-demand`), the monthly schedule, and the event
`cleanroom.party.data-arrived` that `cleanroom notify-data --party NAME` emits when a retailer has
dropped a new export (self-hosted Prefect has no webhooks, so events come in through emit_event).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger

from flows.lifecycle import collaboration_lifecycle

DATA_ARRIVED_EVENT = "cleanroom.party.data-arrived"
MONTHLY_CRON = "0 6 2 * *"  # 06:00 on the 2nd: the previous month's exports are in


def build_deployments(spec_path: Path) -> list[RunnerDeployment]:
    """The on-demand, scheduled and event-triggered deployments for one spec."""
    parameters = {"spec_path": str(spec_path.resolve())}
    return [
        collaboration_lifecycle.to_deployment(
            name="on-demand",
            parameters=parameters,
            tags=["cleanroom"],
            description="Run from the Prefect UI or `prefect deployment run`.",
        ),
        collaboration_lifecycle.to_deployment(
            name="monthly",
            cron=MONTHLY_CRON,
            parameters=parameters,
            tags=["cleanroom", "scheduled"],
            description="Monthly market report after every party's month-end export.",
        ),
        collaboration_lifecycle.to_deployment(
            name="on-new-data",
            parameters=parameters,
            tags=["cleanroom", "event"],
            description=f"Runs when a party emits {DATA_ARRIVED_EVENT}.",
            triggers=[
                DeploymentEventTrigger(
                    name="party data arrived",
                    expect={DATA_ARRIVED_EVENT},
                    match={"prefect.resource.id": "cleanroom.party.*"},
                    # Several parties often deliver together: one run for a burst of arrivals.
                    within=0,
                )
            ],
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=Path("var/demo/consortium.yaml"))
    parser.add_argument(
        "--no-demo-nodes", action="store_true", help="the parties run their own nodes (a real consortium)"
    )
    args = parser.parse_args()
    deployments = build_deployments(args.spec)
    if args.no_demo_nodes:
        serve(*deployments)
        return
    from cleanroom.settings import Settings
    from cleanroom.spec import load_spec
    from flows.consortium import demo_consortium

    parties = [p.name for p in load_spec(args.spec).data_parties]
    with demo_consortium(Settings(), parties):  # the demo's object store and one node per retailer
        serve(*deployments)


if __name__ == "__main__":
    main()
