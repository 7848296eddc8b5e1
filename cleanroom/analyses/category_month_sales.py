"""The market trend: sales (and units sold) per category and period, summed across retailers under
MPC. The kind keeps its historical name `category_month_sales`; the period is a day, an ISO week, a
month or a quarter in the analysis's time zone. Its grid is also what parties cross-verify against and
what the headline is about."""

from __future__ import annotations

from datetime import date, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from markupsafe import Markup
from pydantic import BaseModel, Field, field_validator, model_validator

from cleanroom.analyses.summed import PreparedTables, ReportContext, SummedKind
from cleanroom.privacy.calibration import calibrate
from cleanroom.report.plots import trend_chart
from cleanroom.report.templating import render
from cleanroom.spec.kinds import AnalysisKind, Name, SecureAnalysis
from cleanroom.spec.noise import Noise
from cleanroom.spec.sources import check_time_zone

if TYPE_CHECKING:
    from cleanroom.secure.requests import RevealedTotals

GRID_FILE = "category_month.i64"  # in a prepared version and, relative, in the player folder


class Grain(str, Enum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday to Sunday
    MONTH = "month"
    QUARTER = "quarter"


MAX_PERIODS = {Grain.DAY: 1100, Grain.WEEK: 160, Grain.MONTH: 36, Grain.QUARTER: 12}


class CategoryMonthSales(SecureAnalysis):
    """Market sales per category and period (the trend). The kind keeps its historical name; the
    period is a day, an ISO week, a month or a quarter (`grain`) in the analysis's time zone."""

    id: Name
    kind: Literal[AnalysisKind.CATEGORY_MONTH_SALES]
    objective: Name
    categories: list[str] = Field(min_length=1)
    period_start: date = Field(description="the first period's first day (a Monday for weeks)")
    grain: Grain = Grain.MONTH
    periods: int = Field(ge=1, description="how many periods of the grain, from period_start")
    time_zone: str = "UTC"  # periods are calendar days, weeks, months or quarters in this zone
    units: bool = Field(default=True, description="also units sold per cell (every party then needs quantity)")
    noise: Noise | None = Field(default=None, description="differential privacy on the released cells")

    _zone = field_validator("time_zone")(check_time_zone)

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("categories must be unique")
        return value

    @model_validator(mode="after")
    def _aligned(self) -> CategoryMonthSales:
        start, grain = self.period_start, self.grain
        if grain is Grain.WEEK and start.isoweekday() != 1:
            raise ValueError("period_start: weeks start on a Monday (ISO weeks)")
        if grain is Grain.MONTH and start.day != 1:
            raise ValueError("period_start: must be the first day of a month (YYYY-MM-01)")
        if grain is Grain.QUARTER and (start.day != 1 or start.month not in (1, 4, 7, 10)):
            raise ValueError(
                "period_start: must be the first day of a quarter (YYYY-01-01, -04-01, -07-01, -10-01)"
            )
        if self.noise is not None and set(self.noise.clip) != set(self.measures):
            raise ValueError(
                f"noise.clip: give a bound for each measure ({', '.join(self.measures)}), "
                f"not {', '.join(sorted(self.noise.clip)) or 'none'}"
            )
        if self.periods > MAX_PERIODS[grain]:
            raise ValueError(
                f"periods: at most {MAX_PERIODS[grain]} {grain.value}s (one secure cell per category each)"
            )
        return self

    @property
    def grid_cells(self) -> int:
        """Cells of one measure: categories x periods, category-major."""
        return len(self.categories) * self.periods

    @property
    def measures(self) -> list[str]:
        return ["sales_cents", "units"] if self.units else ["sales_cents"]

    @property
    def cells(self) -> int:  # every measure's grid, sales first
        return self.grid_cells * len(self.measures)

    @property
    def value_units(self) -> list[float]:  # sales in cents compared in whole currency units; units as counted
        return [100.0] * self.grid_cells + [1.0] * (self.cells - self.grid_cells)

    def sales_cells_shown(self, shown: list[bool]) -> int:
        """Revealed cells of the sales grid (the units grid follows the same rule): what the headline
        and the KPI history count."""
        return sum(shown[: self.grid_cells])

    @property
    def period_starts(self) -> list[date]:
        starts, current = [], self.period_start
        for _ in range(self.periods):
            starts.append(current)
            current = next_period(current, self.grain)
        return starts

    @property
    def period_end(self) -> date:
        """The day after the last period."""
        return next_period(self.period_starts[-1], self.grain)

    @property
    def period_labels(self) -> list[str]:
        return [period_label(start, self.grain) for start in self.period_starts]


def next_period(start: date, grain: Grain) -> date:
    if grain is Grain.DAY:
        return start + timedelta(days=1)
    if grain is Grain.WEEK:
        return start + timedelta(days=7)
    months = 1 if grain is Grain.MONTH else 3
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def period_label(start: date, grain: Grain) -> str:
    """2025-03-14, 2025-W11 (ISO), 2025-03, 2025-Q1."""
    if grain is Grain.DAY:
        return start.isoformat()
    if grain is Grain.WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if grain is Grain.MONTH:
        return f"{start.year:04d}-{start.month:02d}"
    return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"


class CategoryMonthTable(BaseModel):
    kind: Literal["category_month_sales"] = "category_month_sales"
    categories: list[str]
    grain: str = "month"  # day, week (ISO), month or quarter
    periods: list[str]  # labels: 2025-03-14, 2025-W11, 2025-03, 2025-Q1
    sales_cents: list[list[int | None]]  # [category][period]; None = suppressed
    units: list[list[int | None]] | None = None  # units sold, the same grid; None: not approved
    interval_95: dict[str, float] = {}  # per noised measure: the 95% half-width of every cell (cents, units)

    def period_totals(self) -> list[int]:
        return [sum(row[m] or 0 for row in self.sales_cents) for m in range(len(self.periods))]

    def category_totals(self) -> list[int]:
        return [sum(v or 0 for v in row) for row in self.sales_cents]

    @property
    def units_shown(self) -> int | None:
        """Units sold over the revealed cells."""
        return None if self.units is None else sum(v or 0 for row in self.units for v in row)


TRUNCATE = {Grain.DAY: "1d", Grain.WEEK: "1w", Grain.MONTH: "1mo", Grain.QUARTER: "1q"}  # weeks: from Monday


class Trend(SummedKind[CategoryMonthSales, CategoryMonthTable]):
    kind = AnalysisKind.CATEGORY_MONTH_SALES
    model = CategoryMonthSales
    grid_file = GRID_FILE
    section_model = CategoryMonthTable

    def local_grid(self, analysis: CategoryMonthSales, tables: PreparedTables) -> np.ndarray:
        return category_month_aggregates(tables.transactions, analysis)

    def section(
        self, analysis: CategoryMonthSales, revealed: RevealedTotals, context: ReportContext
    ) -> CategoryMonthTable:
        n, cells = analysis.periods, analysis.grid_cells
        noised = calibrate(analysis.noise, analysis.measures) if analysis.noise else []

        def rows(values: list[int | None]) -> list[list[int | None]]:
            return [values[i * n : (i + 1) * n] for i in range(len(analysis.categories))]

        return CategoryMonthTable(
            categories=analysis.categories,
            grain=analysis.grain.value,
            periods=analysis.period_labels,
            sales_cents=rows(revealed.sales_cents[:cells]),
            units=rows(revealed.sales_cents[cells : 2 * cells]) if analysis.units else None,
            interval_95={m.measure: m.interval_95(context.compute_parties) for m in noised},
        )

    def headline(self, section: CategoryMonthTable) -> list[str]:
        return [] if section.units is None else [f"Units sold (revealed cells): {section.units_shown:,}"]

    def html(self, section: CategoryMonthTable, context: ReportContext) -> str:
        series = {
            c: [None if v is None else v / 100 for v in row]
            for c, row in zip(section.categories, section.sales_cents)
        }
        title = f"Market sales by {section.grain} and category"
        sales_noise = section.interval_95.get("sales_cents")
        band = None if sales_noise is None else sales_noise / 100
        chart = trend_chart(section.periods, series, title, f"sales ({context.currency})", interval=band)
        return render(
            "sections/trend.html.j2",
            section=section,
            context=context,
            chart=Markup(chart),
            sales_noise=sales_noise,
            units_noise=section.interval_95.get("units"),
        )


def cell_index(analysis: CategoryMonthSales) -> pl.DataFrame:
    """(cell, category, period start): the spec's grid, category-major, as every party numbers it."""
    starts = analysis.period_starts
    return pl.DataFrame(
        {
            "category": [c for c in analysis.categories for _ in starts],
            "period": [p for _ in analysis.categories for p in starts],
        }
    ).with_row_index("cell")


def category_month_aggregates(transactions: pl.LazyFrame, analysis: CategoryMonthSales) -> np.ndarray:
    """Dense [2, measures x categories x periods] int64: row 0 the values (sales in cents, then units
    sold when the spec asks for them), row 1 the distinct customers per cell (the same for each measure).
    With noise in the spec, each customer's values are clipped first (`_cell_sums`).

    The grid comes from the spec, so every party's array has the same public shape and order.
    Distinct customers are counted exactly with constant-size rows: (cell, customer code) packed in
    one uint64, sorted in numpy; a string group-by over every line would need several GiB at 10 M rows.
    """
    grid = cell_index(analysis)
    local_day = pl.col("purchased_at").dt.convert_time_zone(analysis.time_zone).dt.date()
    lines = transactions.with_columns(local_day.dt.truncate(TRUNCATE[analysis.grain]).alias("period")).join(
        grid.lazy(), on=["category", "period"], how="inner"
    )
    per_cell = _cell_sums(lines, analysis.noise).collect(engine="streaming")
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


MEASURE_COLUMNS = {"sales_cents": "sales_cents", "units": "quantity"}


def _cell_sums(lines: pl.LazyFrame, noise: Noise | None) -> pl.LazyFrame:
    """(cell, sales_cents, quantity) per cell. With noise, each customer's per-cell values of a measure
    are first scaled down together until their L2 norm is at most that measure's clip (truncated toward
    zero, so the bound holds in integers): one customer then moves the released vector by at most the
    clip, the sensitivity the noise is calibrated to."""
    if noise is None:
        return lines.group_by("cell").agg(pl.col("sales_cents").sum(), pl.col("quantity").sum())
    per_customer = lines.group_by("customer_code", "cell").agg(
        pl.col("sales_cents").sum(), pl.col("quantity").fill_null(0).sum()
    )
    clipped = []
    for measure, column in MEASURE_COLUMNS.items():
        bound = float(noise.clip.get(measure, 0))
        if not bound:  # a measure the analysis does not release
            clipped.append(pl.col(column))
            continue
        norm = (pl.col(column).cast(pl.Float64) ** 2).sum().over("customer_code").sqrt()
        factor = pl.min_horizontal(pl.lit(1.0), pl.lit(bound) / norm)  # a zero norm gives inf: factor 1
        clipped.append((pl.col(column).cast(pl.Float64) * factor).cast(pl.Int64).alias(column))
    return (
        per_customer.with_columns(clipped)
        .group_by("cell")
        .agg(pl.col("sales_cents").sum(), pl.col("quantity").sum())
    )


# Which trend grains a store-level export's periods can be summed into without splitting a period
# (a week can straddle two months).
GRAINS_FOR_STORE_PERIOD: dict[str, set[Grain]] = {
    "day": set(Grain),
    "week": {Grain.WEEK},
    "month": {Grain.MONTH, Grain.QUARTER},
    "quarter": {Grain.QUARTER},
}


def store_grid(rows: pl.LazyFrame, analysis: CategoryMonthSales, min_stores: int, k: int) -> np.ndarray:
    """The trend grid of a store-level party (totals per store, category and period, no customers):
    row 0 as for customer-level parties (sales in cents, then units sold), row 1, where the others
    count distinct customers, `k` when the cell's figures come from at least `min_stores` stores and 0
    otherwise. So a cell one such party fills alone is shown only when enough of its stores make it up,
    and it never lowers what the others' customers must reach."""
    grid = cell_index(analysis)
    lines = rows.with_columns(pl.col("period_start").dt.truncate(TRUNCATE[analysis.grain]).alias("period")).join(
        grid.lazy(), on=["category", "period"], how="inner"
    )
    per_cell = (
        lines.group_by("cell")
        .agg(pl.col("sales_cents").sum(), pl.col("units").sum(), pl.col("store_id").n_unique().alias("stores"))
        .collect(engine="streaming")
    )
    cells = per_cell["cell"].to_numpy()
    sales, units, stores = (np.zeros(grid.height, dtype=np.int64) for _ in range(3))
    sales[cells] = per_cell["sales_cents"].to_numpy()
    units[cells] = per_cell["units"].fill_null(0).to_numpy()
    stores[cells] = per_cell["stores"].to_numpy()
    group = np.where(stores >= min_stores, k, 0).astype(np.int64)
    values = np.concatenate([sales, units]) if analysis.units else sales
    return np.stack([values, np.tile(group, len(analysis.measures))]).astype(np.int64)
