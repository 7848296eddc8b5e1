"""Private set intersection: the RFC 9380 suite, commutativity, and exact counts without identities,
with every party's session passing sealed batches through a real exchange (moto's S3 server)."""

from __future__ import annotations

import threading
from secrets import token_hex

import polars as pl
import pytest

from cleanroom.errors import CryptoError
from cleanroom.exchange.store import RunExchange
from cleanroom.party.psi_session import run_session
from cleanroom.party.runs import PartyRun
from cleanroom.psi.ecdh import blind_own, new_scalar, reblind
from cleanroom.psi.hash_to_curve import encode_to_curve, hash_to_field
from cleanroom.psi.overlap import disclosed, distinct_customers, overlap_counts
from cleanroom.psi.rounds import batch_name, fully_blinded_sets
from tests.conftest import coordinator, home, node, prepared

# RFC 9380, Appendix J.4.2 (curve25519_XMD:SHA-512_ELL2_NU_): msg -> (u0, P.x), big-endian hex.
RFC_DST = b"QUUX-V01-CS02-with-curve25519_XMD:SHA-512_ELL2_NU_"
RFC_VECTORS = {
    b"": (
        "608d892b641f0328523802a6603427c26e55e6f27e71a91a478148d45b5093cd",
        "1bb913f0c9daefa0b3375378ffa534bda5526c97391952a7789eb976edfe4d08",
    ),
    b"abc": (
        "46f5b22494bfeaa7f232cc8d054be68561af50230234d7d1d63d1d9abeca8da5",
        "7c22950b7d900fa866334262fcaea47a441a578df43b894b4625c9b450f9a026",
    ),
    b"abcdef0123456789": (None, "31ad08a8b0deeb2a4d8b0206ca25f567ab4e042746f792f4b7973f3ae2096c52"),
}


@pytest.mark.parametrize("message", list(RFC_VECTORS))
def test_encode_to_curve_matches_rfc_9380(message: bytes) -> None:
    u0, px = RFC_VECTORS[message]
    if u0:
        assert hash_to_field(message, RFC_DST) == int(u0, 16)
    (u,) = encode_to_curve([message], RFC_DST)
    assert int.from_bytes(u, "little") == int(px, 16)


def test_blinding_commutes_and_is_fresh_per_run() -> None:
    rows = [("ana@example.org", None), ("bo@example.org", "+4915112345678")]
    a, b = new_scalar(), new_scalar()
    ab = reblind(blind_own(rows, ("email", "phone"), a), b)
    ba = reblind(blind_own(rows, ("email", "phone"), b), a)
    as_set = lambda x: {r.tobytes() for r in x.reshape(-1, 32) if r.any()}  # noqa: E731
    assert as_set(ab) == as_set(ba) and len(as_set(ab)) == 3
    again = reblind(blind_own(rows, ("email", "phone"), new_scalar()), b)
    assert not as_set(again) & as_set(ab)  # another run's scalars: nothing links across runs


def test_multi_key_match_counts_each_customer_once() -> None:
    kinds = ("email", "phone")
    a = [("x@e.org", "+491"), ("y@e.org", "+492"), ("z@e.org", None), ("w@e.org", "+494")]
    b = [("x@e.org", "+491"), ("other@e.org", "+492"), (None, "+493"), ("z@e.org", "+499")]
    sa, sb = new_scalar(), new_scalar()
    blinded = {"a": reblind(blind_own(a, kinds, sa), sb), "b": reblind(blind_own(b, kinds, sb), sa)}
    assert overlap_counts(blinded) == {("a", "b"): 3}  # x (both keys), y (phone), z (email); not w


def test_distinct_customers_follow_keys_across_retailers() -> None:
    """Customer-retailer pairs are not customers: a person at three retailers is one customer, also when
    the retailers know different keys of them (email at a, email and phone at b, phone at c)."""
    kinds = ("email", "phone")
    exports = {
        "a": [("p@e.org", None), ("q@e.org", "+491"), ("solo-a@e.org", None)],
        "b": [("p@e.org", "+497"), ("q@e.org", None), (None, "+495")],
        "c": [(None, "+497"), ("r@e.org", "+495"), (None, None)],
    }
    scalars = {n: new_scalar() for n in exports}
    blinded = {}
    for name, rows in exports.items():
        points = blind_own(rows, kinds, scalars[name])
        for other in exports:
            if other != name:
                points = reblind(points, scalars[other])
        blinded[name] = points
    # p (a, b, c via b's phone), q (a, b), r (b's +495 and c), solo-a, and c's row without keys
    assert distinct_customers(blinded) == (5, 3)
    # Pairwise PSI matches keys directly: a and c share no key of p, yet p is at both.
    assert overlap_counts(blinded) == {("a", "b"): 2, ("a", "c"): 0, ("b", "c"): 2, ("a", "b", "c"): 0}


def plaintext_distinct(keys: dict[str, pl.DataFrame]) -> tuple[int, int]:
    """Customers as people: rows linked by any shared key, transitively (a small union-find)."""
    parent: dict[object, object] = {}

    def find(x: object) -> object:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for party, frame in keys.items():
        for i, (email, phone) in enumerate(frame.select("email_key", "phone_key").iter_rows()):
            row = (party, i)
            find(row)
            for key in (("email", email), ("phone", phone)):
                if key[1] is not None:
                    parent[find(row)] = find(key)
    people: dict[object, set[str]] = {}
    for party, frame in keys.items():
        for i in range(frame.height):
            people.setdefault(find((party, i)), set()).add(party)
    return len(people), sum(len(p) >= 2 for p in people.values())


def plaintext_overlap(keys: dict[str, pl.DataFrame], group: tuple[str, ...]) -> int:
    first, *others = group
    frame = keys[first]
    matched = pl.Series([True] * frame.height)
    for other in others:
        hit = frame["email_key"].is_in(keys[other]["email_key"].drop_nulls().implode())
        hit = hit | frame["phone_key"].is_in(keys[other]["phone_key"].drop_nulls().implode())
        matched &= hit.fill_null(False)
    return int(matched.sum())


def psi_through_exchange(
    settings, pinned, store, ordered_spec=None
) -> tuple[RunExchange, dict, dict[str, PartyRun]]:
    """Every party's session in its own thread (as its node runs it), the coordinator collecting the
    fully blinded sets: (the coordinator's exchange, the sets, each party's run folder)."""
    spec = ordered_spec or pinned.spec
    run_id = f"20261201T000000Z-{token_hex(4)}"
    names = [p.name for p in spec.data_parties]
    runs, errors = {}, []
    for name in names:
        runs[name] = PartyRun(home(settings, name), run_id).create()
        runs[name].pin(prepared(settings, name).name)

    def session(name: str) -> None:
        try:
            party_node = node(settings, name, store)
            exchange = RunExchange.for_run(store, spec, run_id, party_node.member)
            run_session(exchange, spec, name, runs[name].prepared(), runs[name], timeout=120)
        except Exception as exc:
            errors.append(exc)

    store.ensure_bucket(spec.exchange_bucket)
    threads = [threading.Thread(target=session, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    me = RunExchange.for_run(store, spec, run_id, coordinator(settings))
    blinded = fully_blinded_sets(me, names, timeout=120, abort=lambda: None)
    for thread in threads:
        thread.join()
    assert not errors, errors
    return me, blinded, runs


def test_overlap_through_the_exchange_equals_plaintext(prepared_workspace, small_spec, object_store) -> None:
    """The real protocol: each retailer's session blinds its own keys and forwards sealed batches."""
    me, blinded, _ = psi_through_exchange(prepared_workspace, small_spec, object_store)
    names = [p.name for p in small_spec.spec.data_parties]
    counts = overlap_counts(blinded)
    keys = {n: pl.read_parquet(prepared(prepared_workspace, n) / "join_keys.parquet") for n in names}
    assert len(counts) == 2 ** len(names) - len(names) - 1 == 11  # every group of two or more of four
    for group, count in counts.items():
        assert count == plaintext_overlap(keys, group), group
    assert counts[tuple(names)] > 0
    distinct, shared = distinct_customers(blinded)
    assert (distinct, shared) == plaintext_distinct(keys)
    assert shared < sum(count for group, count in counts.items() if len(group) == 2)
    shown = disclosed(counts, min_group_size=counts[tuple(names)] + 1)  # the smallest group
    assert shown[tuple(names)] is None and all(v is not None for g, v in shown.items() if len(g) == 2)

    # Every batch is sealed to its addressee: in the bucket, nothing but age files; the coordinator
    # cannot open a batch addressed to a party, and the raw emails appear nowhere.
    stored = {key: object_store.get(me.bucket, key) for key in object_store.keys(me.bucket, me.root + "/")}
    assert len(stored) == len(names) * len(names)  # n owners x n blindings
    assert all(blob.startswith(b"age-encryption.org/v1") for blob in stored.values())
    emails = [e.encode() for e in keys["harbor"]["email_key"].drop_nulls().head(50).to_list()]
    assert not [e for e in emails if any(e in blob for blob in stored.values())]
    with pytest.raises(CryptoError, match="not one of the recipients"):
        me.receive(batch_name(names[0], 1), names[0], timeout=5)
    assert me.remove() == len(stored) and not object_store.keys(me.bucket, me.root + "/")
