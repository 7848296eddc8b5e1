"""Phase 5: review — every party cross-verifies the revealed outputs against its own data."""

from prefect import get_run_logger, task

from cleanroom.errors import SecureComputationError
from cleanroom.party.host import LocalPartyHost
from cleanroom.secure import RevealedTotals
from cleanroom.spec import PinnedSpec
from tasks import PRIVATE


@task(name="verify-party-contribution", **PRIVATE)
def verify_party(pinned: PinnedSpec, party: str, revealed: RevealedTotals, host: LocalPartyHost) -> bool:
    """Inside the party's process: each revealed market total is at least the party's own figure."""
    message = revealed.model_dump_json(include={"sales_cents", "shown"})
    return bool(host.run_worker(party, "verify", pinned.path, stdin=message)["consistent"])


def cross_verify(pinned: PinnedSpec, revealed: RevealedTotals, host: LocalPartyHost) -> dict[str, bool]:
    """Combine the in-MPC check (each party's shares reconstruct to its own input, checked on its own
    player) with each party's local check of the revealed totals; stop if any fails."""
    checks = {f"{p}: shares reconstruct to its input": ok for p, ok in revealed.contribution_consistent.items()}
    futures = {p.name: verify_party.submit(pinned, p.name, revealed, host) for p in pinned.spec.data_parties}
    checks |= {f"{p}: revealed totals consistent with its own data": f.result() for p, f in futures.items()}
    failed = [name for name, ok in checks.items() if not ok]
    get_run_logger().info("cross-verification: %d checks, %d failed", len(checks), len(failed))
    if failed:
        raise SecureComputationError(
            f"cross-verification failed: {'; '.join(failed)}",
            where="review",
            fix="do not publish; the named party inspects its logs and the run is repeated",
        )
    return checks
