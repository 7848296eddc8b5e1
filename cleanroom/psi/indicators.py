"""Secret-shared overlap indicators: each retailer's bits (its customer is also at another retailer),
in the retailer's own secret row order, split into two random additive shares held by two different
parties. The coordinator computes the bits from fully blinded PSI rows, seals each share to its holder
and drops the bits."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np

from cleanroom.errors import CleanroomError
from cleanroom.exchange.store import RunExchange
from cleanroom.network.topology import COORDINATOR
from cleanroom.secure.shared_sales import SharedIndicators


def share_holders(parties: list[str]) -> dict[str, list[str]]:
    """Party P keeps one share of its own bits, the next party in spec order the other."""
    return {owner: [owner, parties[(i + 1) % len(parties)]] for i, owner in enumerate(parties)}


def share_name(owner: str, holder: str) -> str:
    return f"shares/{owner}/{holder}"


def hand_out(exchange: RunExchange, indicators: dict[str, np.ndarray]) -> SharedIndicators:
    """Seal each share to its holder; neither holder alone can read the bits."""
    holders = share_holders(list(indicators))
    for owner, bits in indicators.items():
        for holder, share in zip(holders[owner], split_indicators(bits)):
            exchange.send(share_name(owner, holder), share.astype("<i8").tobytes(), [holder])
    return SharedIndicators(rows={p: len(b) for p, b in indicators.items()}, holders=holders)


def receive_shares(
    exchange: RunExchange,
    parties: list[str],
    me: str,
    timeout: float,
    abort: Callable[[], CleanroomError | None],
) -> dict[str, bytes]:
    """The shares a party holds (of its own bits and of its predecessor's), by owner."""
    held = [owner for owner, holders in share_holders(parties).items() if me in holders]
    return {owner: exchange.receive(share_name(owner, me), COORDINATOR, timeout, abort) for owner in held}


def split_indicators(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two int64 vectors, each uniformly random on its own, that add up (mod 2^64) to the bits."""
    first = np.random.default_rng(secrets.randbits(128)).integers(0, 2**64, bits.size, dtype=np.uint64)
    second = bits.astype(np.uint64) - first  # wraps mod 2^64
    return first.view(np.int64), second.view(np.int64)
