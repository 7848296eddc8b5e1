"""Market totals inside one party: sales and distinct customers per category and period (day, ISO week,
month or quarter) of the spec's grid, from the party's prepared transactions. This grid is what its
player secret-shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.spec.analyses import Grain
from cleanroom.spec.models import CategoryMonthSales

TRUNCATE = {Grain.DAY: "1d", Grain.WEEK: "1w", Grain.MONTH: "1mo", Grain.QUARTER: "1q"}  # weeks: from Monday

# In a prepared version, and in the player folder, whose players read it relative to their working directory.
CATEGORY_MONTH_FILE = Path("category_month.i64")


def category_month_aggregates(transactions: pl.LazyFrame, analysis: CategoryMonthSales) -> np.ndarray:
    """Dense [2, measures x categories x periods] int64: row 0 the values (sales in cents, then units
    sold when the spec asks for them), row 1 the distinct customers per cell (the same for each measure).

    The grid comes from the spec, so every party's array has the same public shape and order.
    Distinct customers are counted exactly with constant-size rows: (cell, customer code) packed in
    one uint64, sorted in numpy; a string group-by over every line would need several GiB at 10 M rows.
    """
    starts = analysis.period_starts
    grid = pl.DataFrame(
        {
            "category": [c for c in analysis.categories for _ in starts],
            "period": [p for _ in analysis.categories for p in starts],
        }
    ).with_row_index("cell")
    local_day = pl.col("purchased_at").dt.convert_time_zone(analysis.time_zone).dt.date()
    lines = transactions.with_columns(local_day.dt.truncate(TRUNCATE[analysis.grain]).alias("period")).join(
        grid.lazy(), on=["category", "period"], how="inner"
    )
    per_cell = (
        lines.group_by("cell")
        .agg(pl.col("sales_cents").sum(), pl.col("quantity").sum())
        .collect(engine="streaming")
    )
    sales = np.zeros(grid.height, dtype=np.int64)
    sales[per_cell["cell"].to_numpy()] = per_cell["sales_cents"].to_numpy()
    units = np.zeros(grid.height, dtype=np.int64)
    units[per_cell["cell"].to_numpy()] = per_cell["quantity"].fill_null(0).to_numpy()
    code = pl.col("customer_code").cast(pl.UInt64)
    packed = lines.select(pl.col("cell").cast(pl.UInt64) * (1 << 32) + code).collect(engine="streaming")
    keys = packed.to_series()
    keys.sort(in_place=True)
    key = keys.to_numpy()  # a view of the sorted keys
    distinct = key[np.r_[True, key[1:] != key[:-1]]] if key.size else key
    customers = np.bincount((distinct >> np.uint64(32)).astype(np.int64), minlength=grid.height)
    del packed, keys, key
    values = np.concatenate([sales, units]) if analysis.units else sales
    return np.stack([values, np.tile(customers, len(analysis.measures))]).astype(np.int64)
