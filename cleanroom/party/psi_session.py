"""A party's side of private set intersection, as a session on its stdin/stdout.

The party reads its own normalized join keys (prepared/join_keys.parquet, which never leave it),
draws an ephemeral scalar that exists only in this process's memory, and answers two requests: its
own blinded rows, and another party's rows blinded once more. Everything it writes is blinded.

In ordered mode (the spec asks for secret-shared overlap indicators) nobody shuffles: the party sends
its rows in an order of its own secret choosing and writes each row's customer sales in that same
order into its own folder, so the indicators computed on the fully blinded rows line up with values
only its player can read; the coordinator sees match bits for rows in an order it cannot link.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from cleanroom.errors import DataContractError
from cleanroom.psi import wire
from cleanroom.psi.ecdh import blind_own, new_scalar, reblind, secret_permutation
from cleanroom.secure.shared_sales import SHARED_VALUES_FILE

JOIN_KEYS_FILE = Path("prepared") / "join_keys.parquet"
KEY_COLUMNS = {"email": "email_key", "phone": "phone_key"}


def own_key_rows(workspace: Path, kinds: tuple[str, ...], party: str) -> list[tuple[str | None, ...]]:
    path = workspace / JOIN_KEYS_FILE
    if not path.exists():
        raise DataContractError(
            "no prepared join keys", where=f"party {party}: {JOIN_KEYS_FILE}", fix="run the preparation phase"
        )
    frame = pl.read_parquet(path, columns=[KEY_COLUMNS[k] for k in kinds])
    return list(frame.iter_rows())


def serve(
    rows: list[tuple[str | None, ...]],
    kinds: tuple[str, ...],
    requests: BinaryIO,
    replies: BinaryIO,
    ordered: Callable[[np.ndarray], None] | None = None,
) -> int:
    """Answer requests until END; returns how many requests were served. With `ordered`, the own rows
    go out in a secret order that is handed to `ordered` first, and nothing is shuffled."""
    scalar = new_scalar()
    served = 0
    while True:
        verb, array = wire.receive(requests)
        if verb == wire.END:
            return served
        if verb == wire.OWN and ordered is None:
            wire.send(replies, wire.RESULT, blind_own(rows, kinds, scalar))
        elif verb == wire.OWN:
            order = secret_permutation(len(rows))
            ordered(order)
            wire.send(replies, wire.RESULT, blind_own([rows[i] for i in order], kinds, scalar, shuffle=False))
        else:
            assert array is not None
            wire.send(replies, wire.RESULT, reblind(array, scalar, shuffle=ordered is None))
        served += 1


def run(workspace: Path, party: str, kinds: tuple[str, ...], ordered: bool = False) -> int:
    rows = own_key_rows(workspace, kinds, party)

    def write_values(order: np.ndarray) -> None:  # each row's customer sales, in the rows' secret order
        sales = customer_sales(workspace)[order]
        (workspace / SHARED_VALUES_FILE).write_bytes(sales.astype("<i8").tobytes())

    return serve(rows, kinds, sys.stdin.buffer, sys.stdout.buffer, write_values if ordered else None)


def customer_sales(workspace: Path) -> np.ndarray:
    """Sales (cents) per join-keys row: the customer's prepared transactions, 0 without any."""
    row_codes = pl.read_parquet(workspace / JOIN_KEYS_FILE, columns=["customer_code"])["customer_code"]
    codes = row_codes.to_numpy().astype(np.int64)
    totals = (
        pl.scan_parquet(workspace / "prepared" / "transactions.parquet")
        .group_by(pl.col("customer_code").cast(pl.UInt32))
        .agg(pl.col("sales_cents").sum())
        .collect(engine="streaming")
    )
    by_code = np.zeros(int(max(codes.max(initial=0), totals["customer_code"].max() or 0)) + 1, dtype=np.int64)
    by_code[totals["customer_code"].to_numpy().astype(np.int64)] = totals["sales_cents"].to_numpy()
    return by_code[codes]
