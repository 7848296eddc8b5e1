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

# The scalable recommender (spec mode scalable): trainings (rounds: each candidate of a search, then the
# final one), epoch by epoch.
RELEASED_ITEMS = "recommender/released-items"  # coordinator -> data parties: which items are modelled (bits)
CHOSEN_SETTINGS = "recommender/chosen"  # coordinator -> data parties: the search's choice (JSON)


def epoch_item_factors(round_: int, epoch: int) -> str:
    """coordinator -> data parties: the item factors an epoch of a training starts from (.npy)."""
    return f"recommender/rounds/{round_:02d}/epochs/{epoch:04d}/item-factors"


def statistics_staged(party: str, round_: int, epoch: int) -> str:
    """party -> coordinator: its statistics (and noise share) for the epoch are where its player reads them."""
    return f"recommender/rounds/{round_:02d}/epochs/{epoch:04d}/staged/{party}"


def candidate_item_factors(round_: int) -> str:
    """coordinator -> data parties: a search candidate's trained item factors, to score on validation (.npy)."""
    return f"recommender/rounds/{round_:02d}/item-factors"


def validation_staged(party: str, round_: int) -> str:
    """party -> coordinator: its validation hits for a candidate are where its player reads them."""
    return f"recommender/rounds/{round_:02d}/validation-staged/{party}"
