"""Phase 2: data preparation, each party on its own node, on its own data."""

from prefect import get_run_logger, task

from cleanroom.errors import DataContractError
from tasks import PRIVATE
from tasks.context import RunContext


@task(name="prepare-parties", **PRIVATE)
def prepare_all_parties(context: RunContext) -> dict[str, dict]:
    """Every data party's node loads (polars), validates (Great Expectations), quarantines, anonymizes
    and pre-aggregates its exports, all at once. The coordinator gets back statuses and expectation
    names, never rows or figures; it stops the run if any party's data is blocked."""
    statuses = context.nodes.run("prepare", context.parties)
    for party, status in statuses.items():
        if status.get("status") in ("ok", "unchanged"):  # a stopped party's counts would read "0 expectations"
            get_run_logger().info(
                "party %s: %s, %d expectations evaluated, %d with warnings",
                party,
                status.get("status"),
                status.get("expectations_evaluated", 0),
                len(status.get("failed_warning", [])),
            )
        else:
            raise DataContractError(
                "data did not pass its contract",
                where=f"party {party}",
                fix="that party fixes its export (its Data Docs, quarantine/ and logs/ say what), then run again",
            )
    return statuses
