"""The few libsodium functions PSI needs, through ctypes (PyNaCl does not expose them).

Loops over many points run here, one foreign call per point; ctypes releases the GIL during each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache

from cleanroom.errors import ConfigurationError

POINT_BYTES = 32


@lru_cache(maxsize=1)
def libsodium() -> ctypes.CDLL:
    name = ctypes.util.find_library("sodium")
    if name is None:
        raise ConfigurationError(
            "libsodium is not installed",
            where="private set intersection",
            fix="run `make setup` as root (installs Debian's libsodium23), or `apt-get install libsodium23`",
        )
    library = ctypes.CDLL(name)
    if library.sodium_init() < 0:
        raise ConfigurationError("libsodium failed to initialise", where=name, fix="reinstall libsodium23")
    return library


def edwards_from_uniform(field_elements: list[bytes]) -> list[bytes]:
    """Elligator 2 onto edwards25519 with the cofactor cleared (crypto_core_ed25519_from_uniform)."""
    sodium = libsodium()
    out = ctypes.create_string_buffer(POINT_BYTES)
    points = []
    for element in field_elements:
        sodium.crypto_core_ed25519_from_uniform(out, element)
        points.append(out.raw)
    return points


def x25519(scalar: bytes, u_coordinates: list[bytes]) -> list[bytes]:
    """X25519(scalar, u) for every u (crypto_scalarmult: clamped scalar, so the cofactor is cleared)."""
    sodium = libsodium()
    out = ctypes.create_string_buffer(POINT_BYTES)
    results = []
    for u in u_coordinates:
        if sodium.crypto_scalarmult(out, scalar, u) != 0:
            raise ValueError("a point of small order reached X25519")  # never from hash-to-curve output
        results.append(out.raw)
    return results
