"""The scalable recommender across the consortium (spec mode `scalable`): the coordinator's loop and
each node's, meeting through the run's sealed exchange and the players' secure sums.

1. Which items are modelled: every retailer's per-item buyers enter the secure totals with disclosure
   control (at least `min_item_customers` customers, at least `min_item_retailers` retailers); only
   which items pass is revealed, not their counts.
2. A training, epoch by epoch: the coordinator sends the item factors the epoch starts from; each node
   solves its customers' factors (kept on the node), stages its statistics vector (and, on a compute
   party, its noise share) for its player and says so; the players sum them under MPC and reveal the
   noisy sum to the coordinator only, which solves the next item factors.
3. With a search (phase 5.2), one training per candidate setting on the purchases before the validation
   date; each node scores the candidate by Recall@N on its customers' first purchases from then to the
   holdout, and the players sum the retailers' recalls (and how many retailers had such purchases):
   only those totals are revealed, and their ratio, the recall averaged over the retailers (each counts
   the same, however many customers it has), chooses. The best candidate is trained on every purchase
   before the holdout.
4. The final item factors go to the nodes, which rank and evaluate for their own customers.

What a party learns per epoch is the item factors (a function of the noisy sums); the coordinator also
sees the noisy sums themselves. Noise: rho for the whole run, split equally over every epoch it may run
(`retail.rho_per_epoch`)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cleanroom.errors import CleanroomError
from cleanroom.exchange.messages import (
    CHOSEN_SETTINGS,
    RELEASED_ITEMS,
    candidate_item_factors,
    epoch_item_factors,
    statistics_staged,
    validation_staged,
)
from cleanroom.exchange.store import RunExchange
from cleanroom.network.topology import COORDINATOR
from cleanroom.privacy.calibration import draw
from cleanroom.privacy.noise_reserve import NoiseReserve
from cleanroom.recommend.blend import Factors, blended
from cleanroom.recommend.evaluation import ranked, top_n
from cleanroom.recommend.federated_als import AlsParams, initial_item_factors
from cleanroom.recommend.federated_training import RetailerSide, alone_model, item_support, next_item_factors
from cleanroom.recommend.retail import TriedSettings, rho_per_epoch, scalable_settings, search_candidates
from cleanroom.recommend.statistics_noise import Layout, calibrate_epoch, noise_share
from cleanroom.secure.engine import SecureEngine
from cleanroom.secure.requests import AggregateRequest
from cleanroom.secure.vector_sum import STATISTICS_FILE, STATISTICS_NOISE_FILE, VectorSumRequest
from cleanroom.spec.analyses import JointRecommender
from cleanroom.spec.models import CollaborationSpec
from cleanroom.whole_files import write_whole_file

if TYPE_CHECKING:  # the party module imports this one's file names
    from cleanroom.party.scalable_recommendations import Purchases

Abort = Callable[[], CleanroomError | None]
# In the run's player folder: [buyers, buyers] per catalogue item, the support check's grid; a search
# candidate's [Recall@N in fixed point, 1] on this party's validation purchases ([0, 0] without any).
SUPPORT_FILE = "item_support.i64"
VALIDATION_FILE = "validation_recall.i64"
RECALL_SCALE = 2**32  # fixed point of a recall in [0, 1]
NOISE_CLAIMS = ".noise-claims"  # where a run takes its chunks of the reserve (gone with the player folder)
# In the run's outputs folder (never shared): the final training's customers' factors and settings.
USER_FACTORS_FILE = Path("user_factors.npy")
SETTINGS_FILE = Path("recommender_settings.json")
LISTS_FILE = Path("recommender_lists.json")  # with a search: whose lists this retailer sends, and why


@dataclass(frozen=True)
class JointModel:
    item_factors: np.ndarray  # zero rows for items not modelled
    released: np.ndarray  # items modelled
    params: AlsParams  # the final training's (the search's choice)
    seconds: float  # the whole training, support check and search included
    secure_seconds: float  # of which in the players' secure sums
    tried: list[TriedSettings] = field(default_factory=list)


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


@dataclass
class _Coordinator:
    spec: CollaborationSpec
    analysis: JointRecommender
    engine: SecureEngine
    exchange: RunExchange
    parties: list[str]
    timeout: float
    abort: Abort
    progress: Callable[[str], None]
    secure_seconds: float = 0.0

    def vector_sum(self, length: int, input_file: str, noised: bool) -> np.ndarray:
        request = VectorSumRequest(
            protocol=self.spec.protocol_for(self.analysis),
            players=[p.name for p in self.spec.compute_parties],
            input_parties=self.parties,
            length=length,
            input_file=input_file,
            noised=noised,
        )
        summed, seconds = self.engine.vector_sum(request)
        self.secure_seconds += seconds
        return summed

    def train(self, round_: int, params: AlsParams, released: np.ndarray, what: str) -> np.ndarray:
        y = initial_item_factors(released.size, params)
        length = Layout(params.factors, int(released.sum())).size
        for epoch in range(params.epochs):
            self.exchange.send(epoch_item_factors(round_, epoch), npy(y), self.parties)
            for party in self.parties:
                self.exchange.receive(statistics_staged(party, round_, epoch), party, self.timeout, self.abort)
            summed = self.vector_sum(length, str(STATISTICS_FILE), self.analysis.rho is not None)
            y = next_item_factors(summed, released, params, y)
        self.progress(f"joint recommender, {what}: {params.epochs} epochs, {_settings(params)}")
        return y

    def score(self, round_: int, y: np.ndarray) -> float:
        """The candidate's Recall@N on validation purchases averaged over the retailers that have any (only
        the sum of their recalls and their number are revealed)."""
        self.exchange.send(candidate_item_factors(round_), npy(y), self.parties)
        for party in self.parties:
            self.exchange.receive(validation_staged(party, round_), party, self.timeout, self.abort)
        recalls, retailers = self.vector_sum(2, VALIDATION_FILE, noised=False)
        return float(recalls / RECALL_SCALE / retailers) if retailers else 0.0


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
    """The coordinator's loop: the support check, the search's trainings and scores, the final training."""
    analysis = spec.joint_recommender
    assert analysis is not None
    started = time.perf_counter()
    me = _Coordinator(spec, analysis, engine, exchange, parties, timeout, abort, progress)
    support = engine.secure_totals(support_request(spec, analysis, items))
    me.secure_seconds += support.seconds
    released = np.asarray(support.shown, dtype=bool)
    progress(f"joint recommender: {int(released.sum())} of {items} products modelled")
    exchange.send(RELEASED_ITEMS, np.packbits(released).tobytes(), parties)
    candidates = search_candidates(analysis)
    recalls = []
    for round_, params in enumerate(candidates):
        y = me.train(round_, params, released, f"candidate {round_ + 1} of {len(candidates)}")
        recalls.append(me.score(round_, y))
        progress(f"joint recommender: candidate {round_ + 1} scores Recall@{analysis.top_n} {recalls[-1]:.3f}")
    chosen = int(np.argmax(recalls)) if recalls else None  # the first of equals
    exchange.send(CHOSEN_SETTINGS, json.dumps({"candidate": chosen}).encode(), parties)
    params = candidates[chosen] if chosen is not None else scalable_settings(analysis)[0]
    y = me.train(len(candidates), params, released, "final training")
    tried = [
        TriedSettings(
            factors=c.factors,
            regularization=c.regularization,
            confidence=c.alpha,
            epochs=c.epochs,
            recall=recall,
            chosen=i == chosen,
        )
        for i, (c, recall) in enumerate(zip(candidates, recalls))
    ]
    seconds = round(time.perf_counter() - started, 2)
    return JointModel(y, released, params, seconds, round(me.secure_seconds, 2), tried)


def _settings(params: AlsParams) -> str:
    return (
        f"k={params.factors} lambda={params.regularization:g} confidence={params.alpha:g} epochs={params.epochs}"
    )


@dataclass
class Participant:
    """A node's side of the trainings, while its player serves: each epoch's statistics (and noise
    share) and each candidate's validation hits staged for the player."""

    analysis: JointRecommender
    purchases: Purchases
    exchange: RunExchange
    party: str
    compute_party: bool
    player_dir: Path
    outputs_dir: Path
    timeout: float
    abort: Abort
    reserve: NoiseReserve | None = None  # the node's noise drawn ahead (compute parties)
    noise_ready: int = field(default=0, init=False)  # draws taken from the reserve
    noise_drawn: int = field(default=0, init=False)  # draws the run had to make itself

    def receive(self, name: str) -> bytes:
        return self.exchange.receive(name, COORDINATOR, self.timeout, self.abort)

    def take_part(self) -> int:
        """Every training the coordinator runs; returns how many."""
        _, clipping = scalable_settings(self.analysis)
        items = self.purchases.training.shape[1]
        released = np.unpackbits(np.frombuffer(self.receive(RELEASED_ITEMS), dtype=np.uint8), count=items)
        released = released.astype(bool)
        candidates = search_candidates(self.analysis)
        models: list[Path] = []  # each candidate's model on this node (its customers' factors, its items)
        for round_, params in enumerate(candidates):
            assert self.purchases.fit is not None
            side = RetailerSide(self.purchases.fit, params, clipping, released)
            self.train(round_, side)
            y = read_npy(self.receive(candidate_item_factors(round_)))
            users = side.final_factors(y)
            models.append(self.outputs_dir / f".candidate-{round_}.npz")
            np.savez(models[-1], users=users, items=y)
            hits = self.validation_hits(users, y, released)
            write_whole_file(self.player_dir / VALIDATION_FILE, _bytes(_fixed_recall(*hits)))
            self.exchange.send(validation_staged(self.party, round_), b"", [COORDINATOR])
        chosen = json.loads(self.receive(CHOSEN_SETTINGS))["candidate"]
        params = candidates[chosen] if chosen is not None else scalable_settings(self.analysis)[0]
        (self.outputs_dir / SETTINGS_FILE).write_text(json.dumps(asdict(params)))
        if chosen is not None:
            with np.load(models[chosen]) as model:
                self.choose_lists((model["users"], model["items"]), released, params)
        for path in models:
            path.unlink()
        self.train(len(candidates), RetailerSide(self.purchases.training, params, clipping, released), final=True)
        return len(candidates) + 1

    def choose_lists(self, joint: Factors, released: np.ndarray, params: AlsParams) -> None:
        """This retailer's own decision, on its own validation purchases: send its customers the joint
        model's lists, its own model's, or their blend (`recommend.blend`), whichever did best; the joint
        model's on a tie (nothing of it leaves the node)."""
        fit = self.purchases.fit
        assert fit is not None
        alone = alone_model(fit, params, scalable_settings(self.analysis)[1])
        own = (alone.user_factors[0], alone.item_factors)
        sold = item_support(fit, None) > 0
        candidates = {
            "joint": (joint, released),
            "blend": (blended(joint, own, sold), np.ones_like(sold)),
            "own": (own, alone.released),
        }
        recall = {}
        for name, ((users, items), modelled) in candidates.items():
            hits, possible = self.validation_hits(users, items, modelled)
            recall[name] = hits / possible if possible else 0.0
        lists = max(recall, key=lambda name: recall[name])  # the first of equals: joint
        (self.outputs_dir / LISTS_FILE).write_text(json.dumps({"lists": lists, "validation_recall": recall}))

    def train(self, round_: int, side: RetailerSide, final: bool = False) -> None:
        params, clipping = side.params, side.clipping
        rate = rho_per_epoch(self.analysis)
        noise = calibrate_epoch(rate, params, clipping) if rate and clipping and self.compute_party else None
        layout = Layout(params.factors, int(side.released.sum()))
        for epoch in range(params.epochs):
            y = read_npy(self.receive(epoch_item_factors(round_, epoch)))
            write_whole_file(self.player_dir / STATISTICS_FILE, _bytes(side.statistics(y)))
            if noise is not None:
                share = noise_share(noise, layout, self.draws)
                write_whole_file(self.player_dir / STATISTICS_NOISE_FILE, _bytes(share))
            if final:
                np.save(self.outputs_dir / USER_FACTORS_FILE, side.factors)
            self.exchange.send(statistics_staged(self.party, round_, epoch), b"", [COORDINATOR])

    def draws(self, scale: float, count: int) -> np.ndarray:
        """Fresh noise: from the node's reserve as far as it goes, the rest drawn now."""
        if self.reserve is None:
            values, ready = draw(scale, count), 0
        else:
            values, ready = self.reserve.take(scale, count, self.player_dir / NOISE_CLAIMS)
        self.noise_ready += ready
        self.noise_drawn += count - ready
        return values

    def validation_hits(self, users: np.ndarray, items: np.ndarray, modelled: np.ndarray) -> tuple[int, int]:
        """Hits and possible hits of a model's top N on this party's validation purchases."""
        validation, fit = self.purchases.validation, self.purchases.fit
        assert validation is not None and fit is not None
        customers = np.flatnonzero(np.diff(validation.indptr) > 0)
        offered = (item_support(fit, None) > 0) & modelled
        lists = top_n(users, items, fit, customers, self.analysis.top_n, self.analysis.exclude_bought, offered)
        scored = ranked(lists, validation, customers)
        return int(scored.hits.sum()), int(scored.possible.sum())


def final_settings(outputs_dir: Path) -> AlsParams:
    """The settings this node's final training used (the search's choice, or the spec's)."""
    return AlsParams(**json.loads((outputs_dir / SETTINGS_FILE).read_text()))


def lists_source(outputs_dir: Path) -> str:
    """`joint`, or `own` or `blend` where this retailer's own model or the blend of both did better on its
    validation purchases."""
    path = outputs_dir / LISTS_FILE
    return json.loads(path.read_text())["lists"] if path.is_file() else "joint"


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def read_npy(payload: bytes) -> np.ndarray:
    return np.load(io.BytesIO(payload), allow_pickle=False)


def _bytes(values: np.ndarray) -> bytes:
    """A player's input file: int64, little-endian."""
    return values.astype("<i8").tobytes()


def _fixed_recall(hits: int, possible: int) -> np.ndarray:
    """This retailer's term of the search's average: its recall in fixed point, and 1 for itself."""
    return np.array([round(hits / possible * RECALL_SCALE), 1]) if possible else np.zeros(2, dtype=np.int64)
