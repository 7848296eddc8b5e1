"""Basket statistics: checkouts (one customer, one purchase moment) by postal region and basket-size
band, with the number of baskets, their total and mean value and a histogram over value bands, counted
inside each party with the distinct customers behind each figure, summed under MPC with disclosure
control. The region is the first digits of the customer's generalized postcode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from markupsafe import Markup
from pydantic import BaseModel, Field, field_validator

from cleanroom.analyses.labels import band_labels, check_ascending, money_band_labels
from cleanroom.analyses.summed import PreparedTables, ReportContext, SummedKind
from cleanroom.party.checkouts import customer_passes, sorted_baskets
from cleanroom.report.plots import grouped_bars
from cleanroom.report.templating import render
from cleanroom.spec.kinds import AnalysisKind, Name, SecureAnalysis

if TYPE_CHECKING:
    from cleanroom.secure.requests import RevealedTotals

GRID_FILE = "basket_statistics.i64"


class BasketStatistics(SecureAnalysis):
    """Baskets by postal region and basket-size band: how many, their total and mean value, and a
    histogram over basket-value bands, summed across retailers under MPC with disclosure control. The
    region is the first `region_digits` of the customer's generalized postcode; bands are upper bounds,
    ascending, with an open last band."""

    id: Name
    kind: Literal[AnalysisKind.BASKET_STATISTICS]
    objective: Name
    region_digits: int = Field(default=1, ge=1, le=2)
    basket_size_items: list[int] = Field(default=[1, 3, 6], min_length=1)
    basket_value_cents: list[int] = Field(default=[1_000, 5_000, 20_000], min_length=1)

    _ascending = field_validator("basket_size_items", "basket_value_cents")(
        classmethod(lambda cls, value: check_ascending(value))
    )

    @property
    def regions(self) -> list[str]:  # every possible prefix, then customers whose postcode was withheld
        return [f"{i:0{self.region_digits}d}" for i in range(10**self.region_digits)] + ["unknown"]

    @property
    def size_labels(self) -> list[str]:
        return band_labels(self.basket_size_items, "items")

    @property
    def value_bands(self) -> int:
        return len(self.basket_value_cents) + 1

    @property
    def measures(self) -> int:  # baskets, value, then one count per value band
        return 2 + self.value_bands

    @property
    def cells(self) -> int:
        return len(self.regions) * len(self.size_labels) * self.measures

    @property
    def value_units(self) -> list[float]:  # per group: basket count, value in cents, band counts
        return [1.0, 100.0, *[1.0] * self.value_bands] * (len(self.regions) * len(self.size_labels))


class BasketRow(BaseModel):
    region: str
    size: str
    baskets: int | None  # None = suppressed by disclosure control
    value_cents: int | None
    mean_cents: float | None  # from the revealed value and count, when both are shown
    histogram: list[int | None]  # baskets per value band


class BasketTable(BaseModel):
    kind: Literal["basket_statistics"] = "basket_statistics"
    value_bands: list[str]
    rows: list[BasketRow]  # groups with at least one revealed figure
    groups_hidden: int  # groups with nothing revealed


class Baskets(SummedKind[BasketStatistics, BasketTable]):
    kind = AnalysisKind.BASKET_STATISTICS
    model = BasketStatistics
    grid_file = GRID_FILE
    section_model = BasketTable

    def local_grid(self, analysis: BasketStatistics, tables: PreparedTables) -> np.ndarray:
        return basket_grid(tables.transactions, tables.customers, analysis)

    def section(self, analysis: BasketStatistics, revealed: RevealedTotals, context: ReportContext) -> BasketTable:
        values, m = revealed.sales_cents, analysis.measures
        rows = []
        for g, (region, size) in enumerate((r, s) for r in analysis.regions for s in analysis.size_labels):
            cells = values[g * m : (g + 1) * m]
            if all(v is None for v in cells):
                continue  # nothing to show: too few baskets, or none at all
            baskets, value = cells[0], cells[1]
            mean = value / baskets if baskets and value is not None else None
            rows.append(
                BasketRow(
                    region=region,
                    size=size,
                    baskets=baskets,
                    value_cents=value,
                    mean_cents=mean,
                    histogram=cells[2:],
                )
            )
        return BasketTable(
            value_bands=money_band_labels(analysis.basket_value_cents, context.currency),
            rows=rows,
            groups_hidden=len(analysis.regions) * len(analysis.size_labels) - len(rows),
        )

    def html(self, section: BasketTable, context: ReportContext) -> str:
        sizes = list(dict.fromkeys(row.size for row in section.rows))
        regions = list(dict.fromkeys(row.region for row in section.rows))
        mean = {
            (row.region, row.size): None if row.mean_cents is None else row.mean_cents / 100
            for row in section.rows
        }
        chart = grouped_bars(
            regions,
            {size: [mean.get((region, size)) for region in regions] for size in sizes},
            "Mean basket value by postal region and basket size",
            f"mean basket ({context.currency})",
            decimals=2,
        )
        return render("sections/baskets.html.j2", section=section, context=context, chart=Markup(chart))


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
        for cells in (base, band):  # a customer is in exactly one pass: distinct counts add up
            grid[1] += _distinct_customers(cells, codes, grid.shape[1])
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
