"""Secure matrix factorization vs the same algorithm in plaintext, per protocol, on MovieLens-100K."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cleanroom.recommend import factorization as mf
from cleanroom.recommend.movielens import PartyRatings, load_interactions, split_parties
from cleanroom.secure.engine import InProcessEngine
from cleanroom.secure.factorization import FactorizationRequest, read_user_factors, write_party_ratings
from cleanroom.spec import Protocol

USERS, ITEMS = 30, 150  # per party; a slice keeps the test to seconds
PLAYERS = ["northwind", "harbor", "alpine"]
CONFIG = mf.MFConfig(epochs=25, learning_rate=0.01)


@pytest.fixture(scope="module")
def parties() -> list[PartyRatings]:
    sliced = []
    for p in split_parties(load_interactions())[:3]:
        keep = (p.test[:, 0] < USERS) & (p.test[:, 1] < ITEMS)
        sliced.append(
            PartyRatings(
                p.users[:USERS], p.train_ratings[:USERS, :ITEMS], p.train_mask[:USERS, :ITEMS], p.test[keep]
            )
        )
    return sliced


@pytest.mark.parametrize("protocol", list(Protocol))
def test_secure_factors_match_plaintext(tmp_path: Path, parties: list[PartyRatings], protocol: Protocol) -> None:
    _train_and_compare(tmp_path, parties, PLAYERS, protocol)


def test_input_only_retailer_trains_with_the_others(tmp_path: Path, parties: list[PartyRatings]) -> None:
    """A fourth retailer without a compute role: its rows enter from its own player, its user factors
    come back to it alone, and the model matches plaintext training on all four."""
    more = split_parties(load_interactions())[0]
    rows = slice(USERS, 2 * USERS)
    keep = (more.test[:, 0] >= USERS) & (more.test[:, 0] < 2 * USERS) & (more.test[:, 1] < ITEMS)
    test = more.test[keep] - np.array([USERS, 0, 0])
    fourth = PartyRatings(more.users[rows], more.train_ratings[rows, :ITEMS], more.train_mask[rows, :ITEMS], test)
    _train_and_compare(tmp_path, [*parties, fourth], [*PLAYERS, "fjord"], Protocol.ABY3)


def _train_and_compare(tmp_path: Path, parties: list[PartyRatings], names: list[str], protocol: Protocol) -> None:
    u0, v0 = mf.initial_factors(USERS * len(names), ITEMS, CONFIG)
    for name, party in zip(names, parties):
        write_party_ratings(
            str(tmp_path / f"{name}.in"),
            mf.centred(party.train_ratings, party.train_mask, CONFIG),
            party.train_mask,
            USERS,
        )
    request = FactorizationRequest.from_config(
        CONFIG,
        protocol,
        PLAYERS,
        USERS,
        ITEMS,
        input_parties=names,
        input_paths={n: str(tmp_path / f"{n}.in") for n in names},
        output_paths={n: str(tmp_path / f"{n}.out") for n in names},
    )
    trained = InProcessEngine().train_factorization(request)
    assert all(trained.user_factors_delivered.values()) and list(trained.user_factors_delivered) == names

    ratings, mask = mf.pooled(parties)
    u, v = u0.copy(), v0.copy()
    centred = mf.centred(ratings, mask, CONFIG)
    for _ in range(CONFIG.epochs):
        mf.epoch(u, v, centred, mask, CONFIG)
    assert np.abs(u - u0).max() > 0.01, "training must move the factors"
    secure_items = np.asarray(trained.item_factors)
    for i, (name, party) in enumerate(zip(names, parties)):
        secure_users = read_user_factors(str(tmp_path / f"{name}.out"))  # only this party's rows
        assert secure_users.shape == (USERS, CONFIG.factors)
        plain = mf.rmse(u[i * USERS : (i + 1) * USERS], v, party.test, CONFIG)
        secure = mf.rmse(secure_users, secure_items, party.test, CONFIG)
        assert abs(secure - plain) <= 0.01 * plain, (name, secure, plain)
