"""Private set intersection: the RFC 9380 suite, commutativity, and exact counts without identities."""

from __future__ import annotations

import polars as pl
import pytest
from cleanroom.party.host import LocalPartyHost

from cleanroom.psi.ecdh import blind_own, new_scalar, reblind
from cleanroom.psi.hash_to_curve import encode_to_curve, hash_to_field
from cleanroom.psi.overlap import InProcessPeer, ProcessPeer, disclosed, fully_blinded_sets, overlap_counts

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
    blinded = fully_blinded_sets({"a": InProcessPeer(a, kinds), "b": InProcessPeer(b, kinds)})
    assert overlap_counts(blinded) == {("a", "b"): 3}  # x (both keys), y (phone), z (email); not w


def plaintext_overlap(keys: dict[str, pl.DataFrame], group: tuple[str, ...]) -> int:
    first, *others = group
    frame = keys[first]
    matched = pl.Series([True] * frame.height)
    for other in others:
        hit = frame["email_key"].is_in(keys[other]["email_key"].drop_nulls().implode())
        hit = hit.fill_null(False) | frame["phone_key"].is_in(keys[other]["phone_key"].drop_nulls().implode())
        matched &= hit.fill_null(False)
    return int(matched.sum())


def test_overlap_between_party_processes_equals_plaintext(prepared_workspace, small_spec) -> None:
    """The real thing: each retailer's PSI session in its own process, over pipes."""
    host = LocalPartyHost(prepared_workspace.parties_root)
    names = [p.name for p in small_spec.spec.data_parties]
    peers = {
        n: ProcessPeer(n, host.start_session(n, "psi", small_spec.path, "--keys", "email,phone")) for n in names
    }
    try:
        counts = overlap_counts(fully_blinded_sets(peers))
    finally:
        for peer in peers.values():
            peer.close()
    keys = {
        n: pl.read_parquet(prepared_workspace.parties_root / n / "prepared" / "join_keys.parquet") for n in names
    }
    assert len(counts) == 2 ** len(names) - len(names) - 1 == 11  # every group of two or more of four
    for group, count in counts.items():
        assert count == plaintext_overlap(keys, group), group
    assert counts[tuple(names)] > 0
    assert all(peer.process.returncode == 0 for peer in peers.values())
    shown = disclosed(counts, min_group_size=counts[tuple(names)] + 1)  # the smallest group
    assert shown[tuple(names)] is None and all(v is not None for g, v in shown.items() if len(g) == 2)
