"""Commutative blinding of customer keys and cardinality-only comparison.

A party's customers are rows of up to K join keys (email, phone). Every present key is encoded to the
curve and raised to the party's secret scalar; other parties raise the result to theirs. Because
X25519 scalar multiplication commutes, a key held by two parties ends as the same point once every
party has blinded it, and nothing else about it can be learned. Rows are shuffled at every step, so
nobody can tell which customer a fully blinded row belongs to. A missing key stays all-zero bytes.
"""

from __future__ import annotations

import secrets

import numpy as np

from cleanroom.psi.hash_to_curve import SUITE, encode_to_curve
from cleanroom.psi.sodium import POINT_BYTES, x25519

DST = f"CLEANROOM-PSI-V01-CS01-with-{SUITE}".encode()
ABSENT = bytes(POINT_BYTES)


def new_scalar() -> bytes:
    """An ephemeral X25519 scalar for one run; it lives only in the party's process memory."""
    return secrets.token_bytes(32)


def blind_own(
    rows: list[tuple[str | None, ...]], kinds: tuple[str, ...], scalar: bytes, shuffle: bool = True
) -> np.ndarray:
    """[rows, K, 32] uint8: each present key, domain-tagged by its kind, encoded and blinded; in the
    given row order when `shuffle` is off (the caller has already permuted them secretly)."""
    present = [
        (i, k, f"{kinds[k]}:{value}".encode())
        for i, row in enumerate(rows)
        for k, value in enumerate(row)
        if value
    ]
    blinded = x25519(scalar, encode_to_curve([message for _, _, message in present], DST))
    out = np.zeros((len(rows) * len(kinds), POINT_BYTES), dtype=np.uint8)
    if present:
        slots = np.fromiter((i * len(kinds) + k for i, k, _ in present), dtype=np.int64, count=len(present))
        out[slots] = np.frombuffer(b"".join(blinded), dtype=np.uint8).reshape(-1, POINT_BYTES)
    out = out.reshape(len(rows), len(kinds), POINT_BYTES)
    return shuffled(out) if shuffle else out


def reblind(blinded: np.ndarray, scalar: bytes, shuffle: bool = True) -> np.ndarray:
    """Raise every present point of another party's rows to this party's scalar, then shuffle (unless
    the rows must keep their owner's order, for secret-shared overlap indicators)."""
    flat = blinded.reshape(-1, POINT_BYTES)
    present = np.flatnonzero(flat.any(axis=1))
    packed = flat[present].tobytes()
    points = x25519(scalar, [packed[j : j + POINT_BYTES] for j in range(0, len(packed), POINT_BYTES)])
    out = np.zeros_like(flat)
    if len(points):
        out[present] = np.frombuffer(b"".join(points), dtype=np.uint8).reshape(-1, POINT_BYTES)
    out = out.reshape(blinded.shape)
    return shuffled(out) if shuffle else out


def shuffled(rows: np.ndarray) -> np.ndarray:
    """Rows in an order drawn from the operating system's randomness."""
    return rows[secret_permutation(len(rows))]


def secret_permutation(n: int) -> np.ndarray:
    return np.random.default_rng(secrets.randbits(128)).permutation(n)


def shared_with_any(probe: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """For each row of `probe` (fully blinded): does some key of it occur in at least one other set?"""
    hit = np.zeros(len(probe), dtype=bool)
    for other in others:
        hit |= matching_rows(probe, other)
    return hit


def matching_rows(probe: np.ndarray, *references: np.ndarray) -> np.ndarray:
    """For each row of `probe` (fully blinded): does some key of it occur, as the same kind of key,
    in every reference set? A customer matching on email and on phone is counted once."""
    matched = np.ones(len(probe), dtype=bool)
    for reference in references:
        hit = np.zeros(len(probe), dtype=bool)
        for kind in range(probe.shape[1]):
            hit |= _present_in(probe[:, kind], reference[:, kind])
        matched &= hit
    return matched


def _present_in(keys: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Which present 32-byte keys occur among the present reference keys (exact, vectorized)."""
    as_void = np.dtype((np.void, POINT_BYTES))
    probe = np.ascontiguousarray(keys).view(as_void).ravel()
    known = np.ascontiguousarray(reference[reference.any(axis=1)]).view(as_void).ravel()
    return keys.any(axis=1) & np.isin(probe, known)
