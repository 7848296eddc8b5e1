"""The names of a run's messages in its exchange (each relative to the run's prefix)."""

from __future__ import annotations

RELEASE = "players/release"  # coordinator -> data parties: the secure computations are done
ITEM_FACTORS = "recommender/item-factors"  # coordinator -> data parties: revealed item factors (JSON)
EVALUATION = "recommender/evaluation/{party}"  # party -> coordinator: its Recall@N, when the spec shares it
REVEALED_TOTALS = "review/revealed-totals"  # coordinator -> data parties: what was revealed, to check


def player_ready(party: str) -> str:
    """party -> coordinator: its player serves behind its TLS terminator."""
    return f"players/ready/{party}"


def heartbeats() -> str:
    """The prefix of the coordinator's heartbeats during a run (one object each, written once)."""
    return "coordinator/alive-"


def heartbeat(sequence: int) -> str:
    return f"{heartbeats()}{sequence:06d}"


def shares_staged(party: str) -> str:
    """party -> coordinator: the overlap-indicator shares it holds are where its player reads them."""
    return f"players/shares-staged/{party}"


LEDGER_ENTRY = "release/ledger-entry"  # coordinator -> data parties: the release's entry, to countersign
LEDGER_COMMITTED = "release/ledger-committed"  # coordinator -> data parties: the entry as committed, to mirror

# The scalable recommender (spec mode scalable), epoch by epoch.
RELEASED_ITEMS = "recommender/released-items"  # coordinator -> data parties: which items are modelled (bytes)


def epoch_item_factors(epoch: int) -> str:
    """coordinator -> data parties: the item factors an epoch starts from (.npy)."""
    return f"recommender/epochs/{epoch:04d}/item-factors"


def statistics_staged(party: str, epoch: int) -> str:
    """party -> coordinator: its statistics (and noise share) for the epoch are where its player reads them."""
    return f"recommender/epochs/{epoch:04d}/staged/{party}"
