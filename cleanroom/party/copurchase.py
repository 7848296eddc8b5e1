"""Co-purchase counts inside one party: baskets containing each category, each pair of categories,
and all baskets, plus the distinct customers behind each count (for the minimum group size).
A basket is a checkout: one customer, one purchase moment (all its lines carry the same time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.spec.models import CopurchaseLift

COPURCHASE_FILE = Path("prepared") / "copurchase.i64"


LINES_PER_PASS = 4_000_000  # bounds the sort buffer to ~100 MB whatever the export's size


def copurchase_grid(transactions: pl.LazyFrame, analysis: CopurchaseLift) -> np.ndarray:
    """[2, cells] int64: row 0 basket counts (categories, then pairs, then all baskets), row 1 the
    distinct customers with such a basket. Customers are split into passes by customer code, so every
    basket and every customer falls in exactly one pass and the counts simply add up."""
    index = {category: i for i, category in enumerate(analysis.categories)}
    # A join with the small category table streams; an expression lookup made polars hold every line.
    bits = pl.LazyFrame({"category": analysis.categories, "bit": [1 << i for i in range(len(index))]})
    lines = transactions.join(bits.with_columns(pl.col("bit").cast(pl.UInt16)), on="category", how="inner")
    total_lines = int(lines.select(pl.len()).collect(engine="streaming").item())
    passes = max(1, -(-total_lines // LINES_PER_PASS))
    wanted = [1 << index[c] for c in analysis.categories]
    wanted += [(1 << index[a]) | (1 << index[b]) for a, b in analysis.pairs]
    counts = np.zeros(len(wanted) + 1, dtype=np.int64)
    people = np.zeros(len(wanted) + 1, dtype=np.int64)
    for part in range(passes):
        masks, customers = _basket_masks(lines.filter(pl.col("customer_code") % passes == part))
        for i, need in enumerate(wanted):
            hit = (masks & need) == need
            counts[i] += int(hit.sum())
            people[i] += int(np.unique(customers[hit]).size)
        counts[-1] += len(masks)
        people[-1] += int(np.unique(customers).size)
    return np.stack([counts, people])


def _basket_masks(lines: pl.LazyFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each basket's category bitmask and customer: one (basket, bit) row per line, 10 bytes, sorted
    by basket, OR-ed per run (a hash group-by would hold every basket of the export at once)."""
    rows = (
        lines.select(
            (
                pl.col("customer_code").cast(pl.UInt64) * (1 << 32)
                + pl.col("purchased_at").dt.epoch("s").cast(pl.UInt64)
            ).alias("basket"),
            pl.col("bit").alias("mask"),
        )
        .collect(engine="streaming")
        .sort("basket")
    )
    keys = rows["basket"].to_numpy()
    if keys.size == 0:
        return np.zeros(0, dtype=np.uint16), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    masks = np.bitwise_or.reduceat(rows["mask"].to_numpy(), starts)
    return masks, (keys[starts] >> np.uint64(32)).astype(np.int64)
