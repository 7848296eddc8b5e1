"""A secure sum of one long int64 vector per party, plus every compute party's noise share, revealed
as one noisy sum: the scalable recommender's item statistics each epoch. No comparison runs here (the
items' support was checked once, by the secure totals with disclosure control); each party's vector
enters as shares on its own player and only the noisy sum is revealed."""

from __future__ import annotations

import operator
import time
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from cleanroom.secure.runtime import import_tfe
from cleanroom.spec.kinds import Protocol

# In the run's player folder (each player's working directory).
STATISTICS_FILE = Path("item_statistics.i64")
STATISTICS_NOISE_FILE = Path("item_statistics.noise.i64")


CHUNK = 1 << 20  # entries summed per graph run: a player holds a chunk's shares, not the whole vector's


class VectorSumRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    protocol: Protocol
    players: list[str]  # compute parties: each adds its noise share
    input_parties: list[str] = []  # whose vectors are summed; empty: the compute parties
    length: int
    noised: bool = True
    input_file: str = str(STATISTICS_FILE)  # in each player's folder
    chunk: int = CHUNK
    # In-process tests and benchmarks only: party -> absolute file.
    input_paths: dict[str, str] = {}
    noise_paths: dict[str, str] = {}

    def providers(self) -> list[str]:
        return self.input_parties or self.players

    def input_of(self, party: str) -> str:
        return self.input_paths.get(party, self.input_file)

    def noise_file(self, party: str) -> str:
        return self.noise_paths.get(party, str(STATISTICS_NOISE_FILE))

    @property
    def chunk_length(self) -> int:
        return min(self.chunk, self.length)


def build_vector_sum(request: VectorSumRequest) -> Any:
    """One graph, traced once, that sums the chunk of every vector starting at its (public) `offset`
    argument; the last chunk is padded with zeros on each player."""
    import tensorflow as tf

    tfe = import_tfe()
    size = request.chunk_length

    def read(party: str, path: str, offset: Any) -> Any:
        @tfe.local_computation(party, apply_scaling=False)
        def load() -> Any:  # on the party's player: the file never leaves it
            window = tf.strings.substr(tf.io.read_file(path), offset * 8, size * 8)
            raw = tf.io.decode_raw(window, tf.int64, little_endian=True)
            return tf.ensure_shape(tf.pad(raw, [[0, size - tf.shape(raw)[0]]]), (size,))

        return load()

    @tf.function(input_signature=[tf.TensorSpec([], tf.int64)])
    def vector_sum(offset: Any) -> Any:
        total = reduce(operator.add, [read(p, request.input_of(p), offset) for p in request.providers()])
        if request.noised:
            total = reduce(operator.add, [read(p, request.noise_file(p), offset) for p in request.players], total)
        return total.reveal().to_native()

    return vector_sum


def run_vector_sum(request: VectorSumRequest) -> tuple[np.ndarray, float]:
    """The revealed (noisy) sum and the seconds it took, under the protocol in scope, chunk by chunk."""
    started = time.perf_counter()
    summed = build_vector_sum(request)
    revealed = np.empty(request.length, dtype=np.int64)
    for offset in range(0, request.length, request.chunk_length):
        part = np.asarray(summed(np.int64(offset))).astype(np.int64).reshape(-1)
        revealed[offset : offset + request.chunk_length] = part[: request.length - offset]
    return revealed, round(time.perf_counter() - started, 3)
