"""Secret-shared overlap indicators: each retailer's bits (its customer is also at another retailer),
in the retailer's own secret row order, split into two random additive shares held by two different
parties. The coordinator computes the bits from fully blinded PSI rows and drops them here."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import numpy as np

from cleanroom.errors import SecureComputationError
from cleanroom.party.host import LocalPartyHost
from cleanroom.secure.shared_sales import SharedIndicators


def hand_out(host: LocalPartyHost, spec_path: Path, indicators: dict[str, np.ndarray]) -> SharedIndicators:
    """Party P keeps one share of its own bits, the next party the other; neither alone can read them."""
    parties = list(indicators)
    holders = {owner: [owner, parties[(i + 1) % len(parties)]] for i, owner in enumerate(parties)}
    for owner, bits in indicators.items():
        for holder, share in zip(holders[owner], split_indicators(bits)):
            message = json.dumps({"share": base64.b64encode(share.astype("<i8").tobytes()).decode()})
            result = host.run_worker(holder, "receive-share", spec_path, message, args=("--owner", owner))
            if not result.get("stored"):
                raise SecureComputationError(result.get("error", "share not stored"), where=f"party {holder}")
    return SharedIndicators(rows={p: len(b) for p, b in indicators.items()}, holders=holders)


def split_indicators(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two int64 vectors, each uniformly random on its own, that add up (mod 2^64) to the bits."""
    first = np.random.default_rng(secrets.randbits(128)).integers(0, 2**64, bits.size, dtype=np.uint64)
    second = bits.astype(np.uint64) - first  # wraps mod 2^64
    return first.view(np.int64), second.view(np.int64)
