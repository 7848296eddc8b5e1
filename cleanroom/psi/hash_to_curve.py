"""RFC 9380 encode_to_curve for the suite curve25519_XMD:SHA-512_ELL2_NU_, returning X25519 inputs.

expand_message_xmd and hash_to_field are RFC 9380 sections 5.3.1 and 5.2, written out here; the map
(Elligator 2, section 6.7.1) and cofactor clearing come from libsodium's edwards25519 from_uniform, and
the birational map to the Montgomery u-coordinate is u = (1 + y) / (1 - y). The u-coordinate does not
depend on the point's sign, so this equals the suite's P.x exactly (tests check the RFC's vectors).
The NU (single map) suite is used because the RO suite's point addition needs the RFC's sign choice,
which libsodium 1.0.18 does not expose; see the PSI notes in README.
"""

from __future__ import annotations

import hashlib

from cleanroom.psi.sodium import edwards_from_uniform

P = 2**255 - 19
SUITE = "curve25519_XMD:SHA-512_ELL2_NU_"
FIELD_BYTES = 48  # L = ceil((ceil(log2(p)) + k) / 8) with k = 128
Y_MASK = (1 << 255) - 1


def expand_message_xmd(message: bytes, dst: bytes, length: int) -> bytes:
    """RFC 9380 section 5.3.1 with SHA-512 (b_in_bytes 64, s_in_bytes 128)."""
    if len(dst) > 255 or length > 255 * 64:
        raise ValueError("DST longer than 255 bytes or output too long")
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(bytes(128) + message + length.to_bytes(2, "big") + b"\x00" + dst_prime).digest()
    blocks = [hashlib.sha512(b0 + b"\x01" + dst_prime).digest()]
    for i in range(2, -(-length // 64) + 1):
        mixed = bytes(x ^ y for x, y in zip(b0, blocks[-1]))
        blocks.append(hashlib.sha512(mixed + bytes([i]) + dst_prime).digest())
    return b"".join(blocks)[:length]


def hash_to_field(message: bytes, dst: bytes) -> int:
    """One element of GF(2^255 - 19) (RFC 9380 section 5.2, count = 1)."""
    return int.from_bytes(expand_message_xmd(message, dst, FIELD_BYTES), "big") % P


def encode_to_curve(messages: list[bytes], dst: bytes) -> list[bytes]:
    """X25519 u-coordinates (32 bytes, little-endian) of encode_to_curve(msg) for every message."""
    field = [hash_to_field(m, dst).to_bytes(32, "little") for m in messages]
    ys = [int.from_bytes(point, "little") & Y_MASK for point in edwards_from_uniform(field)]
    return [u.to_bytes(32, "little") for u in _montgomery_u(ys)]


def _montgomery_u(ys: list[int]) -> list[int]:
    """u = (1 + y) / (1 - y) for many y with one inversion (Montgomery's batch trick)."""
    denominators = [(1 - y) % P for y in ys]
    prefix, running = [], 1
    for d in denominators:
        prefix.append(running)
        running = running * d % P
    if running == 0:  # y = 1 is the identity: unreachable from the map except with negligible odds
        raise ValueError("hash-to-curve produced the identity point")
    inverse = pow(running, P - 2, P)
    us = [0] * len(ys)
    for i in range(len(ys) - 1, -1, -1):
        us[i] = (1 + ys[i]) * (inverse * prefix[i] % P) % P
        inverse = inverse * denominators[i] % P
    return us
