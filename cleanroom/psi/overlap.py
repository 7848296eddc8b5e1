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
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cleanroom.psi.ecdh import POINT_BYTES, matching_rows, shared_with_any


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


def distinct_customers(blinded: dict[str, np.ndarray]) -> tuple[int, int]:
    """(distinct customers over all parties, those of them at two or more parties). Rows sharing any
    key of the same kind are one customer, transitively (email at one retailer, email and phone at a
    second, phone at a third: one person), so pairwise counts cannot be summed to get this."""
    rows = np.concatenate(list(blinded.values()))
    owner = np.repeat(np.arange(len(blinded)), [len(b) for b in blinded.values()])
    n, kinds = rows.shape[0], rows.shape[1]
    # A bipartite graph, rows -> the distinct (kind, point) keys they hold; its components are customers.
    slots = rows.reshape(n * kinds, POINT_BYTES)
    present = slots.any(axis=1)
    tagged = np.concatenate([np.repeat(np.arange(kinds, dtype=np.uint8)[None, :], n, 0).reshape(-1, 1), slots], 1)
    tagged = np.ascontiguousarray(tagged[present]).view(np.dtype((np.void, POINT_BYTES + 1))).ravel()
    _, key_index = np.unique(tagged, return_inverse=True)
    row_index = np.repeat(np.arange(n), kinds)[present]
    size = n + (int(key_index.max()) + 1 if len(key_index) else 0)
    graph = coo_matrix((np.ones(len(row_index), dtype=np.int8), (row_index, n + key_index)), shape=(size, size))
    _, component = connected_components(graph, directed=False)
    customers = component[:n]
    parties_per_customer = np.unique(np.stack([customers, owner], axis=1), axis=0)[:, 0]
    per_customer = np.bincount(parties_per_customer)
    distinct = int(np.count_nonzero(per_customer))
    return distinct, int(np.count_nonzero(per_customer >= 2))


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
    # Each customer once, over all parties (None: suppressed); the counts above are per first party.
    distinct_customers: int | None = None
    distinct_shared: int | None = None


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
    distinct, shared = distinct_customers(blinded)
    revealed = RevealedOverlap(
        join_keys=join_keys,
        groups=[list(group) for group in counts],
        counts=list(counts.values()),
        min_group_size=min_group_size,
        seconds=round(seconds, 2),
        distinct_customers=distinct if distinct >= min_group_size else None,
        distinct_shared=shared if shared >= min_group_size else None,
    )
    return revealed, indicators
