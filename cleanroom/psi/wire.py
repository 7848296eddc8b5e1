"""Blinded-point arrays as bytes: the array's shape, then its 32-byte points."""

from __future__ import annotations

import struct

import numpy as np

from cleanroom.psi.sodium import POINT_BYTES

HEADER = struct.Struct("<QQ")  # rows, keys per row


def encode_points(array: np.ndarray) -> bytes:
    rows, kinds = array.shape[0], array.shape[1]
    return HEADER.pack(rows, kinds) + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def decode_points(payload: bytes) -> np.ndarray:
    rows, kinds = HEADER.unpack_from(payload)
    body = payload[HEADER.size :]
    if len(body) != rows * kinds * POINT_BYTES:
        raise ValueError(f"{len(body)} bytes of points for {rows} x {kinds} keys")
    return np.frombuffer(body, dtype=np.uint8).reshape(rows, kinds, POINT_BYTES)
