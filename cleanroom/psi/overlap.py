"""Customer overlap between retailers by private set intersection, cardinality only.

Every party's rows travel round-robin through every other party (N - 1 rounds, all parties working in
parallel), each blinding and shuffling them; the fully blinded sets are then compared. The process
that compares (the coordinator) sees only points that no one but all parties together could link to
a customer, and releases only counts at or above the spec's minimum group size.
"""

from __future__ import annotations

import itertools
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cleanroom.errors import PartyUnavailableError
from cleanroom.psi import wire
from cleanroom.psi.ecdh import blind_own, matching_rows, new_scalar, reblind, shared_with_any


class PsiPeer(Protocol):
    """One party's PSI session, as the coordinator sees it: requests out, blinded arrays back."""

    def request_own(self) -> None: ...
    def request_reblind(self, rows: np.ndarray) -> None: ...
    def result(self) -> np.ndarray: ...
    def close(self) -> None: ...


@dataclass
class ProcessPeer:
    """A party's `python -m cleanroom.party psi` process, spoken to over its stdin/stdout."""

    party: str
    process: subprocess.Popen

    def request_own(self) -> None:
        wire.send(self.process.stdin, wire.OWN)  # type: ignore[arg-type]

    def request_reblind(self, rows: np.ndarray) -> None:
        wire.send(self.process.stdin, wire.REBLIND, rows)  # type: ignore[arg-type]

    def result(self) -> np.ndarray:
        try:
            verb, array = wire.receive(self.process.stdout)  # type: ignore[arg-type]
        except (EOFError, struct.error) as exc:
            raise PartyUnavailableError(
                "the PSI session ended early", where=f"party {self.party}", fix="see that party's logs/psi.stderr"
            ) from exc
        if verb != wire.RESULT or array is None:
            raise PartyUnavailableError(
                "the PSI session answered out of protocol", where=f"party {self.party}", fix="see its logs/"
            )
        return array

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                wire.send(self.process.stdin, wire.END)  # type: ignore[arg-type]
                self.process.stdin.close()  # type: ignore[union-attr]
                self.process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


@dataclass
class InProcessPeer:
    """The same party logic in this process, for tests of the protocol itself."""

    rows: list[tuple[str | None, ...]]
    kinds: tuple[str, ...]

    def __post_init__(self) -> None:
        self._scalar = new_scalar()
        self._pending: np.ndarray | None = None

    def request_own(self) -> None:
        self._pending = blind_own(self.rows, self.kinds, self._scalar)

    def request_reblind(self, rows: np.ndarray) -> None:
        self._pending = reblind(rows, self._scalar)

    def result(self) -> np.ndarray:
        assert self._pending is not None
        pending, self._pending = self._pending, None
        return pending

    def close(self) -> None:
        self._scalar = b""


def fully_blinded_sets(peers: dict[str, PsiPeer]) -> dict[str, np.ndarray]:
    """Each party's rows blinded by every party's scalar (and shuffled by each of them)."""
    names = list(peers)
    for name in names:
        peers[name].request_own()
    current = {name: peers[name].result() for name in names}
    for step in range(1, len(names)):
        holder = {name: names[(i + step) % len(names)] for i, name in enumerate(names)}
        for owner, party in holder.items():
            peers[party].request_reblind(current[owner])
        current = {owner: peers[party].result() for owner, party in holder.items()}
    return current


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


def party_overlap(
    start_session: Callable[[str], subprocess.Popen],
    parties: list[str],
    join_keys: list[str],
    min_group_size: int,
) -> RevealedOverlap:
    """Run PSI across the parties' own session processes; always ends them; reveal suppressed counts."""
    return overlap_with_indicators(start_session, parties, join_keys, min_group_size, ordered=False)[0]


def overlap_with_indicators(
    start_session: Callable[[str], subprocess.Popen],
    parties: list[str],
    join_keys: list[str],
    min_group_size: int,
    ordered: bool,
) -> tuple[RevealedOverlap, dict[str, np.ndarray]]:
    """The overlap counts and, when the sessions run in ordered mode, each party's indicator bits
    (shared with any other party) for its rows in its own secret order; empty otherwise. The bits
    must not be kept, logged or sent to anyone as they are: `indicators.hand_out` splits them."""
    started = time.perf_counter()
    peers: dict[str, PsiPeer] = {}
    try:
        for party in parties:
            peers[party] = ProcessPeer(party, start_session(party))
        blinded = fully_blinded_sets(peers)
        counts = disclosed(overlap_counts(blinded), min_group_size)
        others = {p: [blinded[o] for o in parties if o != p] for p in parties}
        indicators = {p: shared_with_any(blinded[p], *others[p]) for p in parties} if ordered else {}
    finally:
        for peer in peers.values():
            peer.close()
    revealed = RevealedOverlap(
        join_keys=join_keys,
        groups=[list(group) for group in counts],
        counts=list(counts.values()),
        min_group_size=min_group_size,
        seconds=round(time.perf_counter() - started, 2),
    )
    return revealed, indicators
