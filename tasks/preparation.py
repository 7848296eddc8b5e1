"""Phase 2: data preparation, each party in its own process on its own data."""

from prefect import get_run_logger, task

from cleanroom.errors import DataContractError
from cleanroom.party.host import LocalPartyHost
from cleanroom.spec import PinnedSpec
from tasks import PRIVATE


@task(name="prepare-party", **PRIVATE)
def prepare_party(pinned: PinnedSpec, party: str, host: LocalPartyHost) -> dict:
    """Load (polars), validate (Great Expectations), quarantine, anonymize and pre-aggregate inside the
    party's process. The coordinator gets back a status and expectation names, never rows or figures."""
    summary = host.run_worker(party, "prepare", pinned.path)
    get_run_logger().info(
        "party %s: %s, %d expectations, %d warnings",
        party,
        summary["status"],
        summary["expectations_evaluated"],
        len(summary["failed_warning"]),
    )
    return summary


def prepare_all_parties(pinned: PinnedSpec, host: LocalPartyHost) -> list[dict]:
    """Run every data party's preparation concurrently; stop the run if any party's data is blocked."""
    futures = [prepare_party.submit(pinned, p.name, host) for p in pinned.spec.data_parties]
    summaries = [future.result() for future in futures]
    for summary in summaries:
        if summary["status"] not in ("ok", "unchanged"):
            failed = summary["error"] or ", ".join(summary["failed_blocking"])
            raise DataContractError(
                f"data did not pass its contract: {failed}",
                where=f"party {summary['party']}",
                fix="that party fixes its export (its Data Docs, quarantine/ and logs/ say what), then run again",
            )
    return summaries
