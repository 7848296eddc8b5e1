"""RFM customer segments inside one party: each customer's recency, frequency and monetary value,
banded by the spec's public bounds, counted per segment cell. Only these counts leave the party, and
only as secret shares. Frequency counts checkouts: distinct purchase moments of the customer (every
line of a basket carries the basket's time), so no basket identifier is needed."""

from __future__ import annotations

from datetime import datetime, time, timezone
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.spec.models import CustomerSegments

SEGMENTS_FILE = Path("customer_segments.i64")  # in a prepared version and in the player folder


def segment_grid(transactions: pl.LazyFrame, analysis: CustomerSegments) -> np.ndarray:
    """[2, cells] int64 with customers per (recency, frequency, monetary) band in both rows: the first
    row is summed and revealed, the second feeds the minimum-group-size rule (the same count)."""
    cutoff = datetime.combine(analysis.as_of, time.max, tzinfo=timezone.utc)
    lines = transactions.filter(pl.col("purchased_at") <= cutoff)
    per_customer = lines.group_by("customer_code").agg(
        pl.col("purchased_at").max().alias("last"), pl.col("sales_cents").sum().alias("monetary")
    )
    customers = per_customer.collect(engine="streaming")
    # Distinct (customer, second) pairs packed into one uint64 and sorted: constant memory per line.
    moment = pl.col("purchased_at").dt.epoch("s").cast(pl.UInt64)
    packed = lines.select(pl.col("customer_code").cast(pl.UInt64) * (1 << 32) + moment).collect(engine="streaming")
    keys = packed.to_series()
    keys.sort(in_place=True)
    key = keys.to_numpy()
    distinct = key[np.r_[True, key[1:] != key[:-1]]] if key.size else key
    checkouts = np.bincount((distinct >> np.uint64(32)).astype(np.int64))
    del packed, keys, key
    recency = (analysis.as_of - customers["last"].dt.date()).dt.total_days().to_numpy()
    r = np.searchsorted(analysis.recency_days, recency, side="left")
    codes = customers["customer_code"].to_numpy().astype(np.int64)
    f = np.searchsorted(analysis.frequency_baskets, checkouts[codes], side="left")
    m = np.searchsorted(analysis.monetary_cents, customers["monetary"].to_numpy(), side="left")
    frequency_bands, monetary_bands = len(analysis.frequency_baskets) + 1, len(analysis.monetary_cents) + 1
    cell = (r * frequency_bands + f) * monetary_bands + m
    counts = np.bincount(cell, minlength=analysis.cells).astype(np.int64)
    return np.stack([counts, counts])
