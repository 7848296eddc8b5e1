"""Messages between members: sealed (signed and encrypted), written once, bound to their run and name."""

from __future__ import annotations

from secrets import token_hex

import pytest

from cleanroom.crypto.sealed import open_sealed, seal
from cleanroom.errors import CryptoError, PartyUnavailableError, StorageError
from cleanroom.exchange.store import Directory, RunExchange
from cleanroom.network.topology import COORDINATOR
from tests.conftest import coordinator, node


@pytest.fixture()
def members(small_workspace, small_spec, object_store):
    """(coordinator's exchange, harbor's exchange, alpine's exchange) of a fresh run."""
    run_id = f"20261201T000000Z-{token_hex(4)}"
    object_store.ensure_bucket(small_spec.spec.exchange_bucket)
    me = RunExchange.for_run(object_store, small_spec.spec, run_id, coordinator(small_workspace))
    harbor = RunExchange.for_run(
        object_store, small_spec.spec, run_id, node(small_workspace, "harbor", object_store).member
    )
    alpine = RunExchange.for_run(
        object_store, small_spec.spec, run_id, node(small_workspace, "alpine", object_store).member
    )
    return me, harbor, alpine


def test_only_the_addressee_opens_and_the_sender_is_checked(members) -> None:
    me, harbor, alpine = members
    me.send("review/revealed-totals", b"figures", to=["harbor"])
    assert harbor.receive("review/revealed-totals", COORDINATOR, timeout=5) == b"figures"
    with pytest.raises(CryptoError, match="not one of the recipients"):
        alpine.receive("review/revealed-totals", COORDINATOR, timeout=5)
    with pytest.raises(CryptoError, match="not review/revealed-totals of this run from alpine"):
        harbor.receive("review/revealed-totals", "alpine", timeout=5)  # claimed sender differs


def test_a_message_cannot_be_replayed_into_another_run_or_name(members, small_spec) -> None:
    me, harbor, _ = members
    blob = seal(
        b"x",
        run=me.run_id,
        name="players/release",
        sender=me.me,
        recipients=[small_spec.spec.party("harbor").public_key],
    )
    directory = Directory.from_spec(small_spec.spec)
    key = directory.signing_keys[COORDINATOR]
    assert (
        open_sealed(
            blob, run=me.run_id, name="players/release", sender=COORDINATOR, sender_key_b64=key, me=harbor.me
        )
        == b"x"
    )
    for run, name in ((me.run_id + "0", "players/release"), (me.run_id, "closed")):
        with pytest.raises(CryptoError):
            open_sealed(blob, run=run, name=name, sender=COORDINATOR, sender_key_b64=key, me=harbor.me)
    forged_key = directory.signing_keys["alpine"]  # header says coordinator, but check with another key
    with pytest.raises(CryptoError, match="signature does not verify"):
        open_sealed(
            blob,
            run=me.run_id,
            name="players/release",
            sender=COORDINATOR,
            sender_key_b64=forged_key,
            me=harbor.me,
        )


def test_messages_are_written_once(members) -> None:
    me, harbor, _ = members
    me.send("recommender/item-factors", b"[[1.0]]", to=["harbor"])
    with pytest.raises(StorageError, match="written once"):
        me.send("recommender/item-factors", b"[[2.0]]", to=["harbor"])
    assert harbor.receive("recommender/item-factors", COORDINATOR, timeout=5) == b"[[1.0]]"


def test_waiting_names_the_silent_sender_and_stops_when_the_run_closes(members) -> None:
    me, harbor, _ = members
    with pytest.raises(PartyUnavailableError, match="party alpine: no psi/harbor/blinded-3 within 1 s"):
        harbor.receive("psi/harbor/blinded-3", "alpine", timeout=1)
    me.close()
    with pytest.raises(PartyUnavailableError, match="the coordinator closed the run"):
        harbor.receive("psi/harbor/blinded-3", "alpine", timeout=60, abort=harbor.closed)
    assert me.remove() >= 1 and not harbor.names("")
