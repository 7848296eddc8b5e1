"""Phase 5: review — every party cross-verifies the revealed outputs against its own data."""

from prefect import get_run_logger, task

from cleanroom.errors import SecureComputationError
from cleanroom.exchange.messages import REVEALED_TOTALS
from cleanroom.secure import RevealedTotals
from tasks import PRIVATE
from tasks.context import RunContext


def share_revealed_totals(context: RunContext, revealed: RevealedTotals) -> None:
    """The revealed market totals, sealed to the data parties as soon as they are known: each node
    checks them against its own data while the other analyses run."""
    payload = revealed.model_dump_json(include={"sales_cents", "shown"}).encode()
    context.exchange.send(REVEALED_TOTALS, payload, to=context.parties)


@task(name="cross-verify", **PRIVATE)
def cross_verify(context: RunContext, revealed: RevealedTotals) -> dict[str, bool]:
    """Combine the in-MPC check (each party's shares reconstruct to its own input, checked on its own
    player) with each party's check, on its node, that every revealed total is at least its own
    figure (`share_revealed_totals` sealed the totals to them); stop if any fails."""
    checks = {f"{p}: shares reconstruct to its input": ok for p, ok in revealed.contribution_consistent.items()}
    statuses = context.nodes.run("verify", context.parties)
    checks |= {
        f"{p}: revealed totals consistent with its own data": bool(s.get("consistent"))
        for p, s in statuses.items()
    }
    failed = [name for name, ok in checks.items() if not ok]
    get_run_logger().info("cross-verification: %d checks, %d failed", len(checks), len(failed))
    if failed:
        raise SecureComputationError(
            f"cross-verification failed: {'; '.join(failed)}",
            where="review",
            fix="do not publish; the named party inspects its logs and the run is repeated",
        )
    return checks
