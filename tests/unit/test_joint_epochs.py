"""The scalable recommender across the consortium: the coordinator's loop and every node's meet through
the run's sealed exchange, the support check runs through the secure totals (only which items pass is
revealed) and each epoch's statistics through the players' secure sum; the result is the plain
federated training's, within fixed-point rounding, and each node keeps its customers' factors."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

import numpy as np
import pytest

from cleanroom.errors import CleanroomError
from cleanroom.exchange.store import RunExchange
from cleanroom.party.scalable_recommendations import Purchases
from cleanroom.privacy.noise_reserve import NoiseReserve
from cleanroom.recommend.evaluation import ranked, top_n
from cleanroom.recommend.federated_als import AlsParams
from cleanroom.recommend.federated_training import item_support, released_items, train
from cleanroom.recommend.joint_epochs import (
    LISTS_FILE,
    SETTINGS_FILE,
    SUPPORT_FILE,
    USER_FACTORS_FILE,
    Participant,
    coordinate,
)
from cleanroom.recommend.retail import scalable_settings
from cleanroom.recommend.statistics_noise import Layout, run_needs
from cleanroom.secure.engine import InProcessEngine
from cleanroom.secure.requests import AggregateRequest, RevealedTotals
from cleanroom.secure.vector_sum import STATISTICS_NOISE_FILE, VectorSumRequest
from cleanroom.spec.analyses import SCALABLE_ONLY
from cleanroom.spec.models import CollaborationSpec
from tests.conftest import coordinator, node
from tests.recommender_data import latent_purchases

ITEMS = 80


def scalable_spec(spec: CollaborationSpec, **settings: object) -> CollaborationSpec:
    """The demo spec with its recommender in the scalable mode."""
    raw = spec.model_dump(mode="json", exclude_unset=True)
    for analysis in raw["analyses"]:
        if analysis["kind"] == "joint_recommender":
            for field in ("users_per_party", "learning_rate", "purchase_weight", "epochs", "search"):
                analysis.pop(field, None)
            analysis.update({"mode": "scalable", **settings})
    if "rho" in settings:
        raw["privacy"]["budget"] = {"period": "month", "rho_per_period": 1, "lifetime_rho": 12}
    return CollaborationSpec.model_validate(raw)


@dataclass
class PlayerFolders:
    """In one process the players cannot each read their own relative files: map them to folders."""

    folders: dict[str, Path]
    engine: InProcessEngine

    def secure_totals(self, request: AggregateRequest) -> RevealedTotals:
        paths = {p: str(self.folders[p] / request.input_file) for p in request.providers()}
        return self.engine.secure_totals(request.model_copy(update={"input_paths": paths}))

    def vector_sum(self, request: VectorSumRequest) -> tuple[np.ndarray, float]:
        update = {
            "input_paths": {p: str(self.folders[p] / request.input_file) for p in request.providers()},
            "noise_paths": {p: str(self.folders[p] / STATISTICS_NOISE_FILE) for p in request.players},
        }
        return self.engine.vector_sum(request.model_copy(update=update))


def _run(  # type: ignore[no-untyped-def]
    small_workspace,
    object_store,
    tmp_path: Path,
    spec: CollaborationSpec,
    purchases: list[Purchases],
    reserves: dict[str, NoiseReserve] | None = None,
    participants: dict[str, Participant] | None = None,
):
    run_id = f"20261202T000000Z-{token_hex(4)}"
    object_store.ensure_bucket(spec.exchange_bucket)
    parties = [p.name for p in spec.data_parties]
    compute = {p.name for p in spec.compute_parties}
    analysis = spec.joint_recommender
    _, clipping = scalable_settings(analysis)
    folders = {p: tmp_path / p / "player" for p in parties}
    outputs = {p: tmp_path / p / "outputs" for p in parties}
    errors: list[BaseException] = []

    def party_side(index: int, party: str) -> None:
        try:
            folders[party].mkdir(parents=True)
            outputs[party].mkdir(parents=True)
            support = item_support(purchases[index].training, clipping)
            (folders[party] / SUPPORT_FILE).write_bytes(np.stack([support, support]).astype("<i8").tobytes())
            member = node(small_workspace, party, object_store).member
            exchange = RunExchange.for_run(object_store, spec, run_id, member)
            participant = Participant(
                analysis,
                purchases[index],
                exchange,
                party,
                party in compute,
                folders[party],
                outputs[party],
                120,
                lambda: None,
                (reserves or {}).get(party),
            )
            if participants is not None:
                participants[party] = participant
            participant.take_part()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=party_side, args=(i, p)) for i, p in enumerate(parties)]
    for thread in threads:
        thread.start()
    me = RunExchange.for_run(object_store, spec, run_id, coordinator(small_workspace))

    def a_party_failed() -> CleanroomError | None:
        return CleanroomError(f"a party failed: {errors[0]!r}") if errors else None

    model = coordinate(spec, ITEMS, PlayerFolders(folders, InProcessEngine()), me, parties, 120, a_party_failed)
    for thread in threads:
        thread.join()
    assert not errors, errors
    return model, outputs


def _purchases(trains: list, laters: list | None = None) -> list[Purchases]:  # type: ignore[type-arg]
    """Per retailer, its purchases; with `laters`, the search's split (fit before, validation after)."""
    if laters is None:
        return [Purchases(np.arange(t.shape[0]), t, t) for t in trains]
    return [
        Purchases(np.arange(t.shape[0]), (t + later).tocsr(), later, fit=t, validation=later)
        for t, later in zip(trains, laters)
    ]


def test_the_joint_epochs_equal_the_plain_federated_training(
    small_workspace, small_spec, object_store, tmp_path: Path
) -> None:
    spec = scalable_spec(small_spec.spec, epochs=2, factors=4, min_item_customers=40, min_item_retailers=3)
    parties = [p.name for p in spec.data_parties]
    trains, _ = latent_purchases([120] * len(parties), [8] * len(parties), items=ITEMS, seed=4)
    trains[0] = trains[0].tolil()
    trains[0][:, :5] = 0  # the first retailer never sold the first five products
    trains[0] = trains[0].tocsr()
    trains[0].eliminate_zeros()
    model, outputs = _run(small_workspace, object_store, tmp_path, spec, _purchases(trains))

    params, clipping = scalable_settings(spec.joint_recommender)
    supports = [item_support(t, clipping) for t in trains]
    expected = released_items(supports, 40, 3)
    assert model.released.tolist() == expected.tolist() and 0 < expected.sum() < ITEMS
    plain = train(trains, params, clipping, expected)
    np.testing.assert_allclose(model.item_factors, plain.item_factors, atol=2e-3)
    assert not model.item_factors[~expected].any()  # unmodelled products are never recommended
    for party in parties:  # each node kept its own customers' factors, none went anywhere else
        assert np.load(outputs[party] / USER_FACTORS_FILE).shape == (120, 4)


def test_noise_from_every_compute_party_enters_each_epoch(
    small_workspace, small_spec, object_store, tmp_path: Path
) -> None:
    spec = scalable_spec(small_spec.spec, epochs=1, factors=4, min_item_customers=10, rho=0.5)
    parties = [p.name for p in spec.data_parties]
    trains, _ = latent_purchases([100] * len(parties), [6] * len(parties), items=ITEMS, seed=9)
    noised, _ = _run(small_workspace, object_store, tmp_path / "noised", spec, _purchases(trains))
    params, clipping = scalable_settings(spec.joint_recommender)
    exact = train(trains, params, clipping, noised.released).item_factors
    assert np.abs(noised.item_factors - exact).max() > 1e-3


def test_noise_drawn_ahead_serves_the_whole_run(small_workspace, small_spec, object_store, tmp_path: Path) -> None:
    spec = scalable_spec(small_spec.spec, epochs=2, factors=4, min_item_customers=10, rho=0.5)
    parties = [p.name for p in spec.data_parties]
    compute = [p.name for p in spec.compute_parties]
    needs = run_needs(spec.joint_recommender, ITEMS)
    reserves = {p: NoiseReserve(tmp_path / p / "noise", chunk=5000) for p in compute}
    for reserve in reserves.values():
        for scale, count in needs.items():
            reserve.fill(scale, count)
    trains, _ = latent_purchases([100] * len(parties), [6] * len(parties), items=ITEMS, seed=9)
    participants: dict[str, Participant] = {}
    purchases = _purchases(trains)
    model, _ = _run(small_workspace, object_store, tmp_path / "run", spec, purchases, reserves, participants)
    used = 2 * Layout(4, int(model.released.sum())).size  # every part moves: confidence 20 > 1
    for party in compute:
        assert participants[party].noise_drawn == 0 and participants[party].noise_ready == used
        left = sum(reserves[party].available(scale) for scale in needs)
        assert left == sum(needs.values()) - used  # what the run took is gone from the reserve
    assert participants[parties[-1]].noise_ready == 0  # an input party adds no noise


def test_the_spec_keeps_each_modes_settings_apart(small_spec) -> None:
    with pytest.raises(ValueError, match="users_per_party: only for mode oblivious"):
        scalable_spec(small_spec.spec, users_per_party=100)
    raw = small_spec.spec.model_dump(mode="json", exclude_unset=True)
    for analysis in raw["analyses"]:
        if analysis["kind"] == "joint_recommender":
            for field in SCALABLE_ONLY:
                analysis.pop(field, None)
            analysis |= {"mode": "oblivious", "max_items_per_customer": 10}
    with pytest.raises(ValueError, match="max_items_per_customer: only for mode scalable"):
        CollaborationSpec.model_validate(raw)
    assert scalable_spec(small_spec.spec).joint_recommender.epochs == 10  # ALS's default, not descent's


def test_the_search_chooses_by_the_consortiums_validation_recall_and_trains_the_choice(
    small_workspace, small_spec, object_store, tmp_path: Path
) -> None:
    search = {"validation_from": "2025-10-01", "factors": [2, 6], "regularization": [0.5, 50.0], "epochs": [2]}
    spec = scalable_spec(small_spec.spec, min_item_customers=10, search=search)
    parties = [p.name for p in spec.data_parties]
    sizes = [150] * (len(parties) - 1) + [50]  # a small retailer counts as much as a large one
    fits, laters = latent_purchases(sizes, [8] * len(parties), items=ITEMS, seed=2)
    purchases = _purchases(fits, laters)
    model, outputs = _run(small_workspace, object_store, tmp_path, spec, purchases)

    assert len(model.tried) == 4 and sum(t.chosen for t in model.tried) == 1
    # Each candidate's score is the retailers' recalls averaged, as the plain training on the fit period
    # gives them.
    _, clipping = scalable_settings(spec.joint_recommender)
    expected, per_party = [], []
    for tried in model.tried:
        params = AlsParams(tried.factors, tried.regularization, tried.confidence, tried.epochs, seed=0)
        plain = train([p.fit for p in purchases], params, clipping, model.released)
        recalls = []
        for index, p in enumerate(purchases):
            customers = np.flatnonzero(np.diff(p.validation.indptr) > 0)
            offered = (np.diff(p.fit.tocsc().indptr) > 0) & model.released
            lists = top_n(plain.user_factors[index], plain.item_factors, p.fit, customers, 10, True, offered)
            scored = ranked(lists, p.validation, customers)
            recalls.append(scored.hits.sum() / scored.possible.sum())
            per_party.append(scored.recall) if tried.chosen else None
        expected.append(np.mean(recalls))
    assert [t.recall for t in model.tried] == pytest.approx(expected, abs=0.02)
    best = max(model.tried, key=lambda t: t.recall)
    assert best.chosen and (model.params.factors, model.params.regularization) == (
        best.factors,
        best.regularization,
    )
    for index, party in enumerate(parties):  # every node trained the final model with the choice
        assert json.loads((outputs[party] / SETTINGS_FILE).read_text())["factors"] == best.factors
        # ... and chose, on its own validation purchases, whose lists its customers get
        chosen = json.loads((outputs[party] / LISTS_FILE).read_text())
        assert chosen["validation_recall"]["joint"] == pytest.approx(per_party[index], abs=0.03)
        recall = chosen["validation_recall"]
        assert set(recall) == {"joint", "blend", "own"}
        assert recall[chosen["lists"]] == max(recall.values())  # the best on its validation, joint on a tie
        assert chosen["lists"] == "joint" or recall[chosen["lists"]] > recall["joint"]
        assert np.load(outputs[party] / USER_FACTORS_FILE).shape == (sizes[index], best.factors)


def test_a_search_is_bounded_and_its_rho_covers_every_training(small_spec) -> None:
    from cleanroom.recommend.retail import rho_per_epoch, search_candidates

    too_many = {"validation_from": "2025-10-01", "factors": [2, 4, 8, 16], "regularization": [0.1, 1, 10, 100]}
    with pytest.raises(ValueError, match="16 combinations to train; at most 12"):
        scalable_spec(small_spec.spec, search=too_many)
    with pytest.raises(ValueError, match=r"search\.validation_from: before holdout_from"):
        scalable_spec(small_spec.spec, search={"validation_from": "2026-01-01", "factors": [2]})
    spec = scalable_spec(small_spec.spec, rho=0.6, search={"validation_from": "2025-10-01", "epochs": [2, 4]})
    analysis = spec.joint_recommender
    assert [c.epochs for c in search_candidates(analysis)] == [2, 4]
    assert rho_per_epoch(analysis) == pytest.approx(0.6 / (2 + 4 + 4))  # the final at the most epochs
