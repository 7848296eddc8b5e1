"""Basket statistics inside one party: its checkouts (one customer, one purchase moment) by postal
region and basket-size band, with the number of baskets, their total value and a histogram over value
bands, plus the distinct customers behind each figure (for the minimum group size). Only this grid
leaves the party, and only as secret shares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.party.checkouts import customer_passes, sorted_baskets
from cleanroom.spec.analyses import BasketStatistics

BASKET_STATISTICS_FILE = Path("basket_statistics.i64")  # in a prepared version and in the player folder


def basket_grid(transactions: pl.LazyFrame, customers: pl.LazyFrame, analysis: BasketStatistics) -> np.ndarray:
    """[2, cells] int64; cells are region-major, then size band, then measure (baskets, value cents,
    baskets per value band). Row 0 is summed and revealed, row 1 counts distinct customers."""
    region_of = _regions_by_code(customers, analysis.region_digits)
    groups, measures = len(analysis.regions) * len(analysis.size_labels), analysis.measures
    grid = np.zeros((2, groups * measures), dtype=np.int64)
    for part in customer_passes(transactions):
        starts, codes, (quantity, sales) = sorted_baskets(part, "quantity", "sales_cents")
        if starts.size == 0:
            continue
        items, value = np.add.reduceat(quantity, starts), np.add.reduceat(sales, starts)
        known = codes < region_of.size
        region = np.full(codes.size, 10**analysis.region_digits, dtype=np.int64)
        region[known] = region_of[codes[known]]
        size = np.searchsorted(analysis.basket_size_items, items, side="left")
        base = (region * len(analysis.size_labels) + size) * measures
        band = base + 2 + np.searchsorted(analysis.basket_value_cents, value, side="left")
        np.add.at(grid[0], base, 1)
        np.add.at(grid[0], base + 1, value)
        np.add.at(grid[0], band, 1)
        for cell in (base, band):  # a customer is in exactly one pass: distinct counts add up
            grid[1] += _distinct_customers(cell, codes, grid.shape[1])
    grid[1, 1::measures] = grid[1, 0::measures]  # baskets and their value share their customers
    return grid


def _regions_by_code(customers: pl.LazyFrame, digits: int) -> np.ndarray:
    """Region index per customer code (codes are row numbers); unknown for withheld postcodes, and
    for customers that k-anonymity removed (codes past the table, or absent from it)."""
    prefix = pl.col("postcode_prefix").str.slice(0, digits)
    table = customers.select(
        pl.col("customer_code").cast(pl.Int64),
        pl.when(prefix.str.contains(f"^[0-9]{{{digits}}}$"))
        .then(prefix.cast(pl.Int64, strict=False))
        .otherwise(10**digits)
        .fill_null(10**digits)
        .alias("region"),
    ).collect()
    codes = table["customer_code"].to_numpy()
    regions = np.full(int(codes.max()) + 1 if codes.size else 0, 10**digits, dtype=np.int64)
    regions[codes] = table["region"].to_numpy()
    return regions


def _distinct_customers(cell: np.ndarray, codes: np.ndarray, cells: int) -> np.ndarray:
    pairs = np.unique(cell.astype(np.int64) * (1 << 32) + codes)
    return np.bincount((pairs >> 32).astype(np.int64), minlength=cells)
