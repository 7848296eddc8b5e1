"""Customer segments: customers per recency x frequency x spend band (RFM), counted inside each party
from its own customers, summed across retailers under MPC with the same disclosure control as the
totals. Frequency counts checkouts: distinct purchase moments of the customer (every line of a basket
carries the basket's time), so no basket identifier is needed."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field, field_validator

from cleanroom.analyses.labels import band_labels, check_ascending, money_band_labels
from cleanroom.analyses.summed import PreparedTables, ReportContext, SummedKind
from cleanroom.report.templating import render
from cleanroom.spec.kinds import AnalysisKind, Name, SecureAnalysis

if TYPE_CHECKING:
    from cleanroom.secure.requests import RevealedTotals

GRID_FILE = "customer_segments.i64"


class CustomerSegments(SecureAnalysis):
    """Customers per recency x frequency x monetary band (RFM), summed across retailers under MPC with
    the same disclosure control as the market totals. Bands are upper bounds, ascending; a last open
    band catches the rest."""

    id: Name
    kind: Literal[AnalysisKind.CUSTOMER_SEGMENTS]
    objective: Name
    as_of: date = Field(description="recency is days from the last purchase to this date")
    recency_days: list[int] = Field(default=[30, 90], min_length=1)
    frequency_baskets: list[int] = Field(default=[2, 5], min_length=1)
    monetary_cents: list[int] = Field(default=[5_000, 20_000], min_length=1)

    _ascending = field_validator("recency_days", "frequency_baskets", "monetary_cents")(
        classmethod(lambda cls, value: check_ascending(value))
    )

    def labels(self, bounds: list[int], unit: str) -> list[str]:
        return band_labels(bounds, unit)

    @property
    def cells(self) -> int:
        return (len(self.recency_days) + 1) * (len(self.frequency_baskets) + 1) * (len(self.monetary_cents) + 1)

    @property
    def value_units(self) -> list[float]:  # customer counts
        return [1.0] * self.cells


class SegmentTable(BaseModel):
    """Customers per RFM segment across all retailers; None = suppressed by disclosure control."""

    kind: Literal["customer_segments"] = "customer_segments"
    recency: list[str]
    frequency: list[str]
    monetary: list[str]
    customers: list[list[list[int | None]]]  # [recency][frequency][monetary]


class Segments(SummedKind[CustomerSegments, SegmentTable]):
    kind = AnalysisKind.CUSTOMER_SEGMENTS
    model = CustomerSegments
    grid_file = GRID_FILE
    section_model = SegmentTable

    def local_grid(self, analysis: CustomerSegments, tables: PreparedTables) -> np.ndarray:
        return segment_grid(tables.transactions, analysis)

    def section(
        self, analysis: CustomerSegments, revealed: RevealedTotals, context: ReportContext
    ) -> SegmentTable:
        f, m = len(analysis.frequency_baskets) + 1, len(analysis.monetary_cents) + 1
        values = revealed.sales_cents  # for segments the revealed values are customer counts
        return SegmentTable(
            recency=analysis.labels(analysis.recency_days, "days"),
            frequency=analysis.labels(analysis.frequency_baskets, "baskets"),
            monetary=money_band_labels(analysis.monetary_cents, context.currency),
            customers=[
                [[values[(r * f + fi) * m + mi] for mi in range(m)] for fi in range(f)]
                for r in range(len(analysis.recency_days) + 1)
            ],
        )

    def headline(self, section: SegmentTable) -> list[str]:
        counted = [c for by_f in section.customers for by_m in by_f for c in by_m if c is not None]
        return [f"Customer segments shown: {len(counted)}, customers in them: {sum(counted):,}"]

    def html(self, section: SegmentTable, context: ReportContext) -> str:
        return render("sections/segments.html.j2", section=section, context=context)


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
