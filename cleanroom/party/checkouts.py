"""Baskets (checkouts: one customer, one purchase moment) from transaction lines, in bounded memory:
customers are split into passes so every basket and every customer falls in exactly one pass, and each
pass sorts packed (customer, second) keys instead of hashing every basket of the export at once."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

LINES_PER_PASS = 4_000_000  # bounds the sort buffer to ~100 MB whatever the export's size


def customer_passes(lines: pl.LazyFrame) -> Iterator[pl.LazyFrame]:
    total = int(lines.select(pl.len()).collect(engine="streaming").item())
    passes = max(1, -(-total // LINES_PER_PASS))
    for part in range(passes):
        yield lines.filter(pl.col("customer_code") % passes == part)


def basket_key() -> pl.Expr:
    """Customer code in the high 32 bits, purchase second in the low 32: one key per checkout."""
    return (
        pl.col("customer_code").cast(pl.UInt64) * (1 << 32) + pl.col("purchased_at").dt.epoch("s").cast(pl.UInt64)
    ).alias("basket")


def sorted_baskets(lines: pl.LazyFrame, *values: str) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(run starts, customer code per basket, each value column) with lines sorted by basket: reduce a
    column per basket with `np.add.reduceat(column, starts)` (or any other ufunc)."""
    rows = lines.select(basket_key(), *values).collect(engine="streaming").sort("basket")
    keys = rows["basket"].to_numpy()
    if keys.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), [rows[v].to_numpy() for v in values]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return starts, (keys[starts] >> np.uint64(32)).astype(np.int64), [rows[v].to_numpy() for v in values]
