"""Customer overlap between retailers by private set intersection, cardinality only.

Every party's rows travel round the ring of parties (`cleanroom.psi.rounds`), each blinding and
shuffling them; the fully blinded sets are then compared here. The process that compares (the
coordinator) sees only points that no one but all parties together could link to a customer, and
releases only counts at or above the spec's minimum group size.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from cleanroom.psi.ecdh import matching_rows, shared_with_any


def overlap_counts(blinded: dict[str, np.ndarray]) -> dict[tuple[str, ...], int]:
    """For every group of two or more parties (in the given order): how many customers of the group's
    first party are customers of all the others too (matching on any join key, counted once)."""
    names = list(blinded)
    counts = {}
    for size in range(2, len(names) + 1):
        for group in itertools.combinations(names, size):
            first, *others = group
            counts[group] = int(matching_rows(blinded[first], *(blinded[o] for o in others)).sum())
    return counts


def disclosed(counts: dict[tuple[str, ...], int], min_group_size: int) -> dict[tuple[str, ...], int | None]:
    """Counts below the minimum group size are suppressed (None) before anything leaves this process."""
    return {group: (count if count >= min_group_size else None) for group, count in counts.items()}


@dataclass(frozen=True)
class RevealedOverlap:
    """The approved output: for each group of parties, its shared customers (None: suppressed)."""

    join_keys: list[str]
    groups: list[list[str]]
    counts: list[int | None]
    min_group_size: int
    seconds: float


def overlap_from_blinded(
    blinded: dict[str, np.ndarray], join_keys: list[str], min_group_size: int, ordered: bool, seconds: float
) -> tuple[RevealedOverlap, dict[str, np.ndarray]]:
    """The overlap counts (suppressed below the minimum group size) and, when the parties sent their
    rows in secret order, each party's indicator bits (its row's customer is at some other party), in
    that order; empty otherwise. The bits must not be kept, logged or sent as they are:
    `indicators.hand_out` splits them into shares."""
    parties = list(blinded)
    counts = disclosed(overlap_counts(blinded), min_group_size)
    indicators = (
        {p: shared_with_any(blinded[p], *(blinded[o] for o in parties if o != p)) for p in parties}
        if ordered
        else {}
    )
    revealed = RevealedOverlap(
        join_keys=join_keys,
        groups=[list(group) for group in counts],
        counts=list(counts.values()),
        min_group_size=min_group_size,
        seconds=round(seconds, 2),
    )
    return revealed, indicators
