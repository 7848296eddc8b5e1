"""A party's side of private set intersection, through the run's exchange.

The party reads its own normalized join keys (`join_keys.parquet` of its prepared version, which never
leave it), draws an ephemeral scalar that exists only in this process's memory, and blinds its own
rows and the batches that reach it (`cleanroom.psi.rounds`). Everything it sends is blinded and sealed.

In ordered mode (the spec asks for secret-shared overlap indicators) nobody shuffles: the party sends
its rows in an order of its own secret choosing and writes each row's customer sales in that same
order into its run's player folder, so the indicators computed on the fully blinded rows line up with
values only its player can read; the coordinator sees match bits for rows in an order it cannot link.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.errors import CleanroomError, DataContractError
from cleanroom.exchange.store import RunExchange
from cleanroom.party.runs import PartyRun
from cleanroom.psi.rounds import party_rounds
from cleanroom.secure.shared_sales import SHARED_VALUES_FILE
from cleanroom.spec.models import CollaborationSpec

JOIN_KEYS_FILE = Path("join_keys.parquet")
KEY_COLUMNS = {"email": "email_key", "phone": "phone_key", "loyalty_id": "loyalty_id_key"}


def run_session(
    exchange: RunExchange,
    spec: CollaborationSpec,
    party: str,
    prepared: Path,
    run: PartyRun,
    timeout: float,
    abort: Callable[[], CleanroomError | None] | None = None,
) -> None:
    analysis = spec.customer_overlap
    assert analysis is not None
    kinds = tuple(k.value for k in analysis.join_keys)
    rows = own_key_rows(prepared, kinds, party)

    def write_values(order: np.ndarray) -> None:  # each row's customer sales, in the rows' secret order
        sales = customer_sales(prepared)[order]
        (run.player_dir / SHARED_VALUES_FILE).write_bytes(sales.astype("<i8").tobytes())

    ordered = write_values if analysis.shared_customer_sales else None
    parties = [p.name for p in spec.data_parties]
    party_rounds(exchange, parties, party, rows, kinds, timeout, ordered, abort or exchange.closed)


def own_key_rows(prepared: Path, kinds: tuple[str, ...], party: str) -> list[tuple[str | None, ...]]:
    path = prepared / JOIN_KEYS_FILE
    if not path.exists():
        raise DataContractError(
            "no prepared join keys", where=f"party {party}: {JOIN_KEYS_FILE}", fix="run the preparation phase"
        )
    frame = pl.read_parquet(path, columns=[KEY_COLUMNS[k] for k in kinds])
    return list(frame.iter_rows())


def customer_sales(prepared: Path) -> np.ndarray:
    """Sales (cents) per join-keys row: the customer's prepared transactions, 0 without any."""
    row_codes = pl.read_parquet(prepared / JOIN_KEYS_FILE, columns=["customer_code"])["customer_code"]
    codes = row_codes.to_numpy().astype(np.int64)
    totals = (
        pl.scan_parquet(prepared / "transactions.parquet")
        .group_by(pl.col("customer_code").cast(pl.UInt32))
        .agg(pl.col("sales_cents").sum())
        .collect(engine="streaming")
    )
    by_code = np.zeros(int(max(codes.max(initial=0), totals["customer_code"].max() or 0)) + 1, dtype=np.int64)
    by_code[totals["customer_code"].to_numpy().astype(np.int64)] = totals["sales_cents"].to_numpy()
    return by_code[codes]
