"""What the oblivious (dense, under MPC) recommender costs, so a spec it cannot train in reasonable
time is refused when it is pinned, with the estimate, rather than after hours of computation."""

from __future__ import annotations

# Measured (bench.recommender, 2026-12-01): a full-batch epoch across three sandboxed player processes
# with mutual TLS costs 633 ms for 975 users x 1682 items x 10 factors.
SECONDS_PER_PRODUCT = 0.633 / (975 * 1682 * 10)
TRACE_SECONDS = 6.0  # graph tracing and the first epoch's set-up, once
LIMIT_SECONDS = 3600.0


def estimated_seconds(users_per_party: int, parties: int, items: int, factors: int, epochs: int) -> float:
    return TRACE_SECONDS + epochs * users_per_party * parties * items * factors * SECONDS_PER_PRODUCT


def too_slow(users_per_party: int, parties: int, items: int, factors: int, epochs: int) -> str | None:
    """Why the oblivious training is refused (None when it fits in LIMIT_SECONDS)."""
    seconds = estimated_seconds(users_per_party, parties, items, factors, epochs)
    if seconds <= LIMIT_SECONDS:
        return None
    return (
        f"training under MPC would take about {seconds / 3600:.1f} h ({parties} parties x {users_per_party} "
        f"customers x {items} products x {factors} factors x {epochs} epochs at "
        f"{SECONDS_PER_PRODUCT * 1e9:.1f} ns each, measured in BENCHMARKS.md); at most "
        f"{LIMIT_SECONDS / 3600:.0f} h"
    )
