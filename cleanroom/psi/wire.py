"""Framing for blinded-point arrays on a pipe: a 1-byte verb, the array's shape, then its bytes."""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

HEADER = struct.Struct("<cQQ")  # verb, rows, keys per row (each key is 32 bytes)
OWN, REBLIND, RESULT, END = b"O", b"R", b"A", b"E"


def send(stream: BinaryIO, verb: bytes, array: np.ndarray | None = None) -> None:
    rows, kinds = (array.shape[0], array.shape[1]) if array is not None else (0, 0)
    stream.write(HEADER.pack(verb, rows, kinds))
    if array is not None:
        stream.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    stream.flush()


def receive(stream: BinaryIO) -> tuple[bytes, np.ndarray | None]:
    header = _exactly(stream, HEADER.size)
    verb, rows, kinds = HEADER.unpack(header)
    if verb in (OWN, END):
        return verb, None
    payload = _exactly(stream, rows * kinds * 32)
    return verb, np.frombuffer(payload, dtype=np.uint8).reshape(rows, kinds, 32)


def _exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError(f"pipe closed after {len(data)} of {size} bytes")
    return data
