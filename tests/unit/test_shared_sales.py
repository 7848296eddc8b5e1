"""Secret-shared overlap indicators: PSI in ordered mode between the parties' sessions through a real
exchange, the bits split into two random shares sealed to two parties, and the shared customers' sales
summed under MPC, against a plaintext join of everyone's prepared keys and sales."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from cleanroom.exchange.store import RunExchange
from cleanroom.psi.indicators import hand_out, receive_shares
from cleanroom.psi.overlap import overlap_from_blinded
from cleanroom.secure.engine import InProcessEngine
from cleanroom.secure.shared_sales import SharedIndicators, SharedSalesRequest, indicator_share_file
from cleanroom.spec import Protocol
from tests.conftest import node, prepared
from tests.unit.test_psi import psi_through_exchange


def plaintext_shared_sales(settings, names: list[str]) -> tuple[int, int, int, int]:
    """(customer-retailer pairs shared with any other retailer, their sales, all pairs, all sales)."""
    keys = {n: pl.read_parquet(prepared(settings, n) / "join_keys.parquet") for n in names}
    shared = shared_sales = everyone = all_sales = 0
    for name in names:
        frame = keys[name]
        others = pl.concat([keys[o] for o in names if o != name])
        hit = frame["email_key"].is_in(others["email_key"].drop_nulls().implode()).fill_null(False)
        hit = hit | frame["phone_key"].is_in(others["phone_key"].drop_nulls().implode()).fill_null(False)
        sales = (
            pl.read_parquet(prepared(settings, name) / "transactions.parquet")
            .group_by(pl.col("customer_code").cast(pl.Int64))
            .agg(pl.col("sales_cents").sum())
        )
        spend = dict(zip(sales["customer_code"].to_list(), sales["sales_cents"].to_list()))
        per_row = [spend.get(int(code), 0) for code in frame["customer_code"].to_list()]
        shared += int(hit.sum())
        shared_sales += sum(v for v, h in zip(per_row, hit.to_list()) if h)
        everyone += frame.height
        all_sales += sum(per_row)
    return shared, shared_sales, everyone, all_sales


@pytest.fixture(scope="module")
def handed_out(prepared_workspace, small_spec, object_store) -> tuple[SharedIndicators, dict]:
    """Ordered PSI through the exchange, the indicators' shares sealed to their holders, and each
    holder's node putting its shares into its run's player folder: (where they went, run folders)."""
    me, blinded, runs = psi_through_exchange(prepared_workspace, small_spec, object_store)
    names = [p.name for p in small_spec.spec.data_parties]
    overlap, indicators = overlap_from_blinded(blinded, ["email", "phone"], 10, ordered=True, seconds=0)
    assert overlap.counts and set(indicators) == set(names)
    shares = hand_out(me, indicators)
    for name in names:
        exchange = RunExchange.for_run(
            object_store, small_spec.spec, me.run_id, node(prepared_workspace, name, object_store).member
        )
        for owner, share in receive_shares(exchange, names, name, 30, lambda: None).items():
            (runs[name].player_dir / indicator_share_file(owner)).write_bytes(share)
    return shares, runs


def test_each_share_alone_looks_random(handed_out) -> None:
    shares, runs = handed_out
    for owner, (first, second) in shares.holders.items():
        assert first != second
        a, b = (
            np.frombuffer((runs[h].player_dir / indicator_share_file(owner)).read_bytes(), "<i8")
            for h in (first, second)
        )
        assert len(a) == shares.rows[owner] and not np.isin(a, [0, 1]).all() and not np.isin(b, [0, 1]).all()
        assert set(np.unique(a.astype(np.uint64) + b.astype(np.uint64))) <= {0, 1}  # together: the bits


@pytest.mark.parametrize("protocol", [Protocol.ABY3, Protocol.SECURENN])
def test_shared_customer_sales_equal_plaintext(
    prepared_workspace, small_spec, handed_out, protocol: Protocol
) -> None:
    shares, runs = handed_out
    names = list(shares.rows)
    request = SharedSalesRequest(
        protocol=protocol,
        players=[p.name for p in small_spec.spec.compute_parties],
        rows=shares.rows,
        share_holders=shares.holders,
        min_group_size=10,
        max_share_percent=80,
        workspaces={n: str(runs[n].player_dir) for n in names},  # each player's working directory
    )
    revealed = InProcessEngine().shared_sales(request)
    shared, shared_sales, everyone, all_sales = plaintext_shared_sales(prepared_workspace, names)
    assert revealed.shown and 0 < shared < everyone
    assert (revealed.shared_customers, revealed.shared_sales_cents) == (shared, shared_sales)
    assert (revealed.all_customers, revealed.all_sales_cents) == (everyone, all_sales)
    suppressed = InProcessEngine().shared_sales(request.model_copy(update={"min_group_size": shared + 1}))
    assert not suppressed.shown and suppressed.shared_sales_cents is None and suppressed.all_sales_cents is None
