"""Sales by customers who shop at more than one retailer, from secret-shared overlap indicators.

PSI in ordered mode gives the coordinator, per retailer, a bit per row (shared with some other
retailer) in an order only that retailer knows; the coordinator splits each bit vector into two
random additive shares held by two different retailers, and forgets it. Here each retailer's bits are
rebuilt as shares from those two players, multiplied with the sales its own player reads in the same
order, and summed. Revealed, if the disclosure rules pass inside MPC: customer-retailer pairs of
shared customers and their sales, next to all customers and all sales."""

from __future__ import annotations

import operator
import time
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from cleanroom.secure.runtime import all_true, greater_than, import_tfe
from cleanroom.spec.analyses import Protocol

# In the run's player folder (the player's working directory).
SHARED_VALUES_FILE = Path("overlap_values.i64")  # the party's sales per row, in its secret order


def indicator_share_file(owner: str) -> Path:
    """Where a party keeps its random share of `owner`'s indicator bits (int64, mod 2^64)."""
    return Path(f"overlap_share_{owner}.i64")


class SharedIndicators(BaseModel):
    """Where the indicator shares went (no bits): rows per retailer, and the two holders of each."""

    rows: dict[str, int]
    holders: dict[str, list[str]]


class SharedSalesRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    protocol: Protocol
    players: list[str]  # compute parties
    rows: dict[str, int]  # per retailer: rows of its PSI set (public to the coordinator anyway)
    share_holders: dict[str, list[str]]  # per retailer: the two parties holding its indicator shares
    min_group_size: int
    max_share_percent: float
    workspaces: dict[str, str] = {}  # in-process tests only: party -> absolute workspace

    def providers(self) -> list[str]:
        return list(self.rows)

    def path(self, party: str, relative: Path) -> str:
        return str(Path(self.workspaces[party]) / relative) if party in self.workspaces else str(relative)


class RevealedSharedSales(BaseModel):
    shown: bool
    shared_customers: int | None  # customer-retailer pairs whose customer shops elsewhere too
    shared_sales_cents: int | None
    all_customers: int | None
    all_sales_cents: int | None
    seconds: float


def build_shared_sales(request: SharedSalesRequest, prot: Any) -> Any:
    import tensorflow as tf

    tfe = import_tfe()

    def read_vector(party: str, relative: Path, length: int) -> Any:
        path = request.path(party, relative)

        @tfe.local_computation(party, apply_scaling=False)
        def load() -> Any:  # on the party's player: the file never leaves it
            raw = tf.io.decode_raw(tf.io.read_file(path), tf.int64, little_endian=True)
            return tf.ensure_shape(raw, (length,))

        return load()

    @tf.function
    def shared_sales() -> tuple[Any, Any]:
        shared, sales, counts = {}, {}, {}
        for owner, length in request.rows.items():
            first, second = request.share_holders[owner]
            bits = read_vector(first, indicator_share_file(owner), length) + read_vector(
                second, indicator_share_file(owner), length
            )
            values = read_vector(owner, SHARED_VALUES_FILE, length)
            shared[owner] = tfe.reduce_sum(bits * values, axis=0, keepdims=True)
            counts[owner] = tfe.reduce_sum(bits, axis=0, keepdims=True)
            sales[owner] = tfe.reduce_sum(values, axis=0, keepdims=True)
        shared_total = reduce(operator.add, shared.values())
        sales_total = reduce(operator.add, sales.values())
        customers = reduce(operator.add, counts.values())
        p10, k = round(request.max_share_percent * 10), request.min_group_size
        # Integer margins, "m >= 0" as "m + 1 > 0", doubled because SecureNN's comparison ignores the
        # lowest bit: >= k shared customers, no retailer above p% of shared or of all sales.
        margins = [customers - (k - 1)]
        margins += [shared_total * p10 - part * 1000 + 1 for part in shared.values()]
        margins += [sales_total * p10 - part * 1000 + 1 for part in sales.values()]
        passed = greater_than(prot, tfe.concat(margins, axis=0) * 2, 0)
        shown = all_true(prot, [passed[i : i + 1] for i in range(len(margins))])
        figures = tfe.concat([customers, shared_total, sales_total], axis=0)
        masked = tfe.select(tfe.concat([shown, shown, shown], axis=0), figures - figures, figures)
        return shown.reveal().to_native(), masked.reveal().to_native()

    return shared_sales


def run_shared_sales(request: SharedSalesRequest, prot: Any) -> RevealedSharedSales:
    started = time.perf_counter()
    shown_revealed, figures = build_shared_sales(request, prot)()
    shown = bool(np.asarray(shown_revealed).reshape(-1)[0])
    customers, shared, sales = (int(v) for v in np.asarray(figures).astype(np.int64).reshape(-1))
    return RevealedSharedSales(
        shown=shown,
        shared_customers=customers if shown else None,
        shared_sales_cents=shared if shown else None,
        all_customers=sum(request.rows.values()) if shown else None,
        all_sales_cents=sales if shown else None,
        seconds=round(time.perf_counter() - started, 3),
    )
