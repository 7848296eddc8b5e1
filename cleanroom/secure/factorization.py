"""Secure matrix factorization: dense, data-oblivious full-batch gradient descent on secret shares.

Each party's centred ratings and its mask (which user bought what) enter as shares from its own
player; the mask is an unscaled 0/1 integer, so masking costs a multiplication but no truncation. The
whole training loop is one tf.function (a tf.range loop assigning private variables), so players run
it without a round trip to the coordinator per operation. Only the trained factors are revealed:
item factors to everyone, each party's user factors to that party only (`receive_user_factors`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from cleanroom.recommend.factorization import MFConfig, initial_factors
from cleanroom.recommend.retail import TriedSettings
from cleanroom.secure.runtime import import_tfe
from cleanroom.spec.models import Protocol

# Relative to each player's working directory (the run's player folder on its node).
RATINGS_INPUT_PATH = "ratings.f64"  # [2, rows, items] float64: weighted targets, weights
USER_FACTORS_OUTPUT_PATH = "user_factors.csv"  # text, so the party reads it without TF
MASK_SCALED = False


class FactorizationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    protocol: Protocol
    players: list[str]  # compute parties (protocol servers)
    input_parties: list[str] = []  # parties whose rows are trained on; empty: the compute parties
    rows_per_party: int  # public bound: every party pads its users to this many rows
    items: int
    factors: int
    epochs: int
    learning_rate: float
    regularization: float
    initial_users: list[list[float]]  # public random start (no data in it)
    initial_items: list[list[float]]
    timing_epochs: int = 0  # benchmarks: trace with one epoch, then time this many (no training result)
    input_paths: dict[str, str] = {}
    output_paths: dict[str, str] = {}

    def providers(self) -> list[str]:
        return self.input_parties or self.players

    @classmethod
    def from_config(
        cls, config: MFConfig, protocol: Protocol, players: list[str], rows_per_party: int, items: int, **more: Any
    ) -> FactorizationRequest:
        """The request for `config`'s model, starting from its public random factors (no data in them)."""
        providers = more.get("input_parties") or players
        users, item_start = initial_factors(rows_per_party * len(providers), items, config)
        return cls(
            protocol=protocol,
            players=players,
            rows_per_party=rows_per_party,
            items=items,
            factors=config.factors,
            epochs=config.epochs,
            learning_rate=config.learning_rate,
            regularization=config.regularization,
            initial_users=users.tolist(),
            initial_items=item_start.tolist(),
            **more,
        )


class TrainedFactors(BaseModel):
    item_factors: list[list[float]]
    user_factors_delivered: dict[str, bool]  # each party confirms it received its own rows
    seconds: float
    seconds_per_epoch: float | None = None  # set by timing runs
    # The scalable mode: items that passed the support check, the settings of the final training (the
    # search's choice) and every candidate the search tried.
    items_modelled: int | None = None
    factors: int | None = None
    epochs: int | None = None
    search: list[TriedSettings] = []


def write_party_ratings(path: str, centred: np.ndarray, mask: np.ndarray, rows: int) -> None:
    """A party's input file, its rows padded to the public bound with zeros (padding has no mask)."""
    padded = np.zeros((2, rows, centred.shape[1]))
    padded[0, : centred.shape[0]] = centred
    padded[1, : mask.shape[0]] = mask
    with open(path, "wb") as handle:
        handle.write(padded.astype("<f8").tobytes())


def build_training(request: FactorizationRequest) -> Any:
    import tensorflow as tf

    tfe = import_tfe()
    rows, items = request.rows_per_party, request.items

    def party_matrix(party: str, index: int, scaled: bool) -> Any:
        path = request.input_paths.get(party, RATINGS_INPUT_PATH)

        @tfe.local_computation(party, apply_scaling=scaled)
        def load() -> Any:  # runs on the party's player: the file never reaches the coordinator
            raw = tf.io.decode_raw(tf.io.read_file(path), tf.float64, little_endian=True)
            matrix = tf.reshape(tf.ensure_shape(raw, (2 * rows * items,)), (2, rows, items))[index]
            return matrix if scaled else tf.cast(matrix, tf.int64)

        return load()

    def receive_user_factors(party: str, factors: Any) -> Any:
        path = request.output_paths.get(party, USER_FACTORS_OUTPUT_PATH)

        @tfe.local_computation(party)
        def receive(own_factors: Any) -> Any:  # revealed on the party's own player only
            cells = tf.strings.as_string(tf.cast(own_factors, tf.float64), precision=17, scientific=True)
            rows = tf.strings.reduce_join(cells, axis=1, separator=",")
            written = tf.io.write_file(path, tf.strings.reduce_join(rows, separator="\n"))
            with tf.control_dependencies([written]):
                return tf.ones((1,), dtype=tf.float64)

        return receive(factors)

    users = tfe.define_private_variable(np.asarray(request.initial_users))
    item_factors = tfe.define_private_variable(np.asarray(request.initial_items))
    lr, reg = request.learning_rate, request.regularization

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32)])
    def train(epochs: Any) -> tuple[Any, list[Any]]:
        centred = tfe.concat([party_matrix(p, 0, True) for p in request.providers()], axis=0)
        mask = tfe.concat([party_matrix(p, 1, MASK_SCALED) for p in request.providers()], axis=0)
        for _ in tf.range(epochs):
            # Read the variables each step: a private variable used directly is its value at trace time.
            u, v = users.read_value(), item_factors.read_value()
            error = mask * tfe.matmul(u, tfe.transpose(v)) - centred
            grad_users = tfe.matmul(error, v) + u * reg
            grad_items = tfe.matmul(tfe.transpose(error), u) + v * reg
            tfe.assign(users, u - grad_users * lr)
            tfe.assign(item_factors, v - grad_items * lr)
        acks = [
            receive_user_factors(p, users.read_value()[i * rows : (i + 1) * rows]).reveal().to_native()
            for i, p in enumerate(request.providers())
        ]
        return item_factors.read_value().reveal().to_native(), acks

    return train


def run_training(request: FactorizationRequest) -> TrainedFactors:
    if request.timing_epochs:
        per_epoch, first = seconds_per_epoch(request, request.timing_epochs)
        return TrainedFactors(
            item_factors=[], user_factors_delivered={}, seconds=first, seconds_per_epoch=per_epoch
        )
    started = time.perf_counter()
    items_revealed, acks = build_training(request)(request.epochs)
    return TrainedFactors(
        item_factors=np.asarray(items_revealed).tolist(),
        user_factors_delivered={
            p: bool(np.asarray(a).reshape(-1)[0] == 1) for p, a in zip(request.providers(), acks)
        },
        seconds=round(time.perf_counter() - started, 3),
    )


def read_user_factors(path: str) -> np.ndarray:
    """In the party's process: the user factors its player received."""
    return np.loadtxt(path, delimiter=",", ndmin=2)


def seconds_per_epoch(request: FactorizationRequest, epochs: int) -> tuple[float, float]:
    """(seconds per epoch, seconds for tracing + the first epoch): the graph is traced by a one-epoch
    call, then `epochs` more run in the same graph. For benchmarks; it writes outputs like training."""
    train = build_training(request)
    started = time.perf_counter()
    train(1)
    first = time.perf_counter() - started
    started = time.perf_counter()
    train(epochs)
    return (time.perf_counter() - started) / epochs, first
