"""ECDH-PSI as store-and-forward rounds through a run's exchange.

The data parties form a ring in spec order. Owner P's rows are blinded by P, then by each next party
in turn; each batch is sealed to the party that blinds it next, the fully blinded one to the
coordinator, which compares the sets. In round b every party blinds exactly one owner's rows, so all
work in parallel; nobody but a batch's addressee can read it, and the coordinator sees only points
that no one but all parties together could link to a customer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cleanroom.errors import CleanroomError
from cleanroom.exchange.store import RunExchange
from cleanroom.network.topology import COORDINATOR
from cleanroom.psi.ecdh import blind_own, new_scalar, reblind, secret_permutation
from cleanroom.psi.wire import decode_points, encode_points

Rows = list[tuple[str | None, ...]]


def batch_name(owner: str, blindings: int) -> str:
    return f"psi/{owner}/blinded-{blindings}"


def party_rounds(
    exchange: RunExchange,
    parties: list[str],
    me: str,
    rows: Rows,
    kinds: tuple[str, ...],
    timeout: float,
    ordered: Callable[[np.ndarray], None] | None = None,
    abort: Callable[[], CleanroomError | None] | None = None,
) -> None:
    """This party's side, with an ephemeral scalar that exists only in this call. With `ordered`, its
    own rows go out in a secret order (handed to `ordered` first) and nobody shuffles, so indicators
    computed on the fully blinded rows line up with values only this party can put in that order."""
    scalar = new_scalar()
    n, i = len(parties), parties.index(me)
    successor = parties[(i + 1) % n]
    predecessor = parties[(i - 1) % n]
    if ordered is None:
        own = blind_own(rows, kinds, scalar)
    else:
        order = secret_permutation(len(rows))
        ordered(order)
        own = blind_own([rows[j] for j in order], kinds, scalar, shuffle=False)
    exchange.send(batch_name(me, 1), encode_points(own), [successor if n > 1 else COORDINATOR])
    for blindings in range(2, n + 1):
        owner = parties[(i - blindings + 1) % n]  # whose rows reach this party for their blinding-th time
        received = decode_points(
            exchange.receive(batch_name(owner, blindings - 1), predecessor, timeout, abort or exchange.closed)
        )
        blinded = reblind(received, scalar, shuffle=ordered is None)
        exchange.send(
            batch_name(owner, blindings), encode_points(blinded), [successor if blindings < n else COORDINATOR]
        )


def fully_blinded_sets(
    exchange: RunExchange, parties: list[str], timeout: float, abort: Callable[[], CleanroomError | None]
) -> dict[str, np.ndarray]:
    """The coordinator's side: every party's rows once all parties have blinded them."""
    n = len(parties)
    return {
        owner: decode_points(exchange.receive(batch_name(owner, n), parties[(i - 1) % n], timeout, abort))
        for i, owner in enumerate(parties)
    }
