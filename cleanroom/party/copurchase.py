"""Co-purchase counts inside one party: baskets containing each category, each pair of categories,
and all baskets, plus the distinct customers behind each count (for the minimum group size).
A basket is a checkout: one customer, one purchase moment (all its lines carry the same time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.party.checkouts import customer_passes, sorted_baskets
from cleanroom.spec.models import CopurchaseLift

COPURCHASE_FILE = Path("copurchase.i64")  # in a prepared version and in the player folder


def copurchase_grid(transactions: pl.LazyFrame, analysis: CopurchaseLift) -> np.ndarray:
    """[2, cells] int64: row 0 basket counts (categories, then pairs, then all baskets), row 1 the
    distinct customers with such a basket. Customers are split into passes by customer code, so every
    basket and every customer falls in exactly one pass and the counts simply add up."""
    index = {category: i for i, category in enumerate(analysis.categories)}
    # A join with the small category table streams; an expression lookup made polars hold every line.
    bits = pl.LazyFrame({"category": analysis.categories, "bit": [1 << i for i in range(len(index))]})
    lines = transactions.join(bits.with_columns(pl.col("bit").cast(pl.UInt16)), on="category", how="inner")
    wanted = [1 << index[c] for c in analysis.categories]
    wanted += [(1 << index[a]) | (1 << index[b]) for a, b in analysis.pairs]
    counts = np.zeros(len(wanted) + 1, dtype=np.int64)
    people = np.zeros(len(wanted) + 1, dtype=np.int64)
    for part in customer_passes(lines):
        masks, customers = _basket_masks(part)
        for i, need in enumerate(wanted):
            hit = (masks & need) == need
            counts[i] += int(hit.sum())
            people[i] += int(np.unique(customers[hit]).size)
        counts[-1] += len(masks)
        people[-1] += int(np.unique(customers).size)
    return np.stack([counts, people])


def _basket_masks(lines: pl.LazyFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each basket's category bitmask (the OR of its lines' bits) and its customer."""
    starts, customers, (bits,) = sorted_baskets(lines, "bit")
    if starts.size == 0:
        return np.zeros(0, dtype=np.uint16), customers
    return np.bitwise_or.reduceat(bits, starts), customers
