"""The scalable recommender across the consortium (spec mode `scalable`): the coordinator's loop and
each node's, meeting through the run's sealed exchange and the players' secure sums.

1. Which items are modelled: every retailer's per-item buyers enter the secure totals with disclosure
   control (at least `min_item_customers` customers, at least `min_item_retailers` retailers); only
   which items pass is revealed, not their counts.
2. Each epoch: the coordinator sends the item factors the epoch starts from; each node solves its
   customers' factors (kept on the node), stages its statistics vector (and, on a compute party, its
   noise share) for its player and says so; the players sum them under MPC and reveal the noisy sum to
   the coordinator only, which solves the next item factors.
3. The final item factors go to the nodes, which rank and evaluate for their own customers.

What a party learns per epoch is the item factors (a function of the noisy sums); the coordinator also
sees the noisy sums themselves. Noise: rho for the whole training, split equally over the epochs."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cleanroom.errors import CleanroomError
from cleanroom.exchange.messages import RELEASED_ITEMS, epoch_item_factors, statistics_staged
from cleanroom.exchange.store import RunExchange
from cleanroom.network.topology import COORDINATOR
from cleanroom.party.scalable_recommendations import SUPPORT_FILE, USER_FACTORS_FILE
from cleanroom.recommend.federated_als import initial_item_factors
from cleanroom.recommend.federated_training import RetailerSide, next_item_factors
from cleanroom.recommend.retail import scalable_settings
from cleanroom.recommend.statistics_noise import Layout, calibrate_epoch, noise_share
from cleanroom.secure.engine import SecureEngine
from cleanroom.secure.requests import AggregateRequest
from cleanroom.secure.vector_sum import STATISTICS_FILE, STATISTICS_NOISE_FILE, VectorSumRequest
from cleanroom.spec.analyses import JointRecommender
from cleanroom.spec.models import CollaborationSpec

Abort = Callable[[], CleanroomError | None]


@dataclass(frozen=True)
class JointModel:
    item_factors: np.ndarray  # zero rows for items not modelled
    released: np.ndarray  # items modelled
    seconds: float  # the whole training, support check included
    secure_seconds: float  # of which in the players' secure sums


def support_request(spec: CollaborationSpec, analysis: JointRecommender, items: int) -> AggregateRequest:
    """Which of the catalogue's `items` enough customers at enough retailers bought (only that is revealed)."""
    return AggregateRequest(
        protocol=spec.protocol_for(analysis),
        players=[p.name for p in spec.compute_parties],
        input_parties=[p.name for p in spec.data_parties],
        cells=items,
        input_file=SUPPORT_FILE,
        value_units=[1.0] * items,
        min_group_size=analysis.min_item_customers or spec.privacy.min_group_size,
        min_contributors=analysis.min_item_retailers,
        reveal_sums=False,
    )


def coordinate(
    spec: CollaborationSpec,
    items: int,
    engine: SecureEngine,
    exchange: RunExchange,
    parties: list[str],
    timeout: float,
    abort: Abort,
    progress: Callable[[str], None] = lambda line: None,
) -> JointModel:
    """The coordinator's loop: the support check, then every epoch's sum and item solve."""
    analysis = spec.joint_recommender
    assert analysis is not None
    started = time.perf_counter()
    params, _clipping = scalable_settings(analysis)
    support = engine.secure_totals(support_request(spec, analysis, items))
    released = np.asarray(support.shown, dtype=bool)
    secure = support.seconds
    progress(f"joint recommender: {int(released.sum())} of {items} products modelled")
    exchange.send(RELEASED_ITEMS, np.packbits(released).tobytes(), parties)
    request = VectorSumRequest(
        protocol=spec.protocol_for(analysis),
        players=[p.name for p in spec.compute_parties],
        input_parties=parties,
        length=Layout(params.factors, int(released.sum())).size,
        noised=analysis.rho is not None,
    )
    y = initial_item_factors(items, params)
    for epoch in range(params.epochs):
        exchange.send(epoch_item_factors(epoch), npy(y), parties)
        for party in parties:
            exchange.receive(statistics_staged(party, epoch), party, timeout, abort)
        summed, seconds = engine.vector_sum(request)
        secure += seconds
        y = next_item_factors(summed, released, params, y)
        progress(f"joint recommender: epoch {epoch + 1} of {params.epochs}, secure sum {seconds:.1f} s")
    return JointModel(y, released, round(time.perf_counter() - started, 2), round(secure, 2))


def take_part(
    analysis: JointRecommender,
    side_for: Callable[[np.ndarray], RetailerSide],
    exchange: RunExchange,
    party: str,
    compute_party: bool,
    player_dir: Path,
    outputs_dir: Path,
    timeout: float,
    abort: Abort,
) -> int:
    """A node's loop, while its player serves: each epoch's statistics (and noise share) staged for the
    player; its customers' factors kept in the run's outputs. Returns the epochs taken part in."""
    params, clipping = scalable_settings(analysis)
    items = None
    released_bits = exchange.receive(RELEASED_ITEMS, COORDINATOR, timeout, abort)
    for epoch in range(params.epochs):
        y = read_npy(exchange.receive(epoch_item_factors(epoch), COORDINATOR, timeout, abort))
        if items is None:
            items = y.shape[0]
            released = np.unpackbits(np.frombuffer(released_bits, dtype=np.uint8), count=items).astype(bool)
            side = side_for(released)
            noise = calibrate_epoch(analysis.rho / params.epochs, params, clipping) if analysis.rho else None
            layout = Layout(params.factors, int(released.sum()))
        vector = side.statistics(y)
        _write_whole(player_dir / STATISTICS_FILE, vector)
        if compute_party and noise is not None:
            _write_whole(player_dir / STATISTICS_NOISE_FILE, noise_share(noise, layout))
        np.save(outputs_dir / USER_FACTORS_FILE, side.factors)
        exchange.send(statistics_staged(party, epoch), b"", [COORDINATOR])
    return params.epochs


def _write_whole(path: Path, values: np.ndarray) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(values.astype("<i8").tobytes())
    partial.replace(path)


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def read_npy(payload: bytes) -> np.ndarray:
    return np.load(io.BytesIO(payload), allow_pickle=False)
