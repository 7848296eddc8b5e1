"""Market totals inside one party: sales and distinct customers per category and month of the spec's
grid, from the party's prepared transactions. This grid is what its player secret-shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.spec.models import CategoryMonthSales

# In a prepared version, and in the player folder, whose players read it relative to their working directory.
CATEGORY_MONTH_FILE = Path("category_month.i64")


def category_month_aggregates(transactions: pl.LazyFrame, analysis: CategoryMonthSales) -> np.ndarray:
    """Dense [2, categories x months] int64: sales in cents and distinct customers per cell.

    The grid comes from the spec, so every party's array has the same public shape and order.
    Distinct customers are counted exactly with constant-size rows: (cell, customer code) packed in
    one uint64, sorted in numpy; a string group-by over every line would need several GiB at 10 M rows.
    """
    months = [int(label.replace("-", "")) for label in analysis.month_labels]
    grid = pl.DataFrame(
        {
            "category": [c for c in analysis.categories for _ in months],
            "month": [m for _ in analysis.categories for m in months],
        }
    ).with_row_index("cell")
    local = pl.col("purchased_at").dt.convert_time_zone(analysis.time_zone)
    lines = transactions.with_columns(
        (local.dt.year() * 100 + local.dt.month()).cast(pl.Int64).alias("month")
    ).join(grid.lazy(), on=["category", "month"], how="inner")
    per_cell = lines.group_by("cell").agg(pl.col("sales_cents").sum()).collect(engine="streaming")
    sales = np.zeros(grid.height, dtype=np.int64)
    sales[per_cell["cell"].to_numpy()] = per_cell["sales_cents"].to_numpy()
    code = pl.col("customer_code").cast(pl.UInt64)
    packed = lines.select(pl.col("cell").cast(pl.UInt64) * (1 << 32) + code).collect(engine="streaming")
    keys = packed.to_series()
    keys.sort(in_place=True)
    key = keys.to_numpy()  # a view of the sorted keys
    distinct = key[np.r_[True, key[1:] != key[:-1]]] if key.size else key
    customers = np.bincount((distinct >> np.uint64(32)).astype(np.int64), minlength=grid.height)
    del packed, keys, key
    return np.stack([sales, customers]).astype(np.int64)
