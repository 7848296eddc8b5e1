"""Categories bought together: baskets containing each category, each pair and all baskets, counted
inside each party (with the distinct customers behind each count, for the minimum group size), summed
under MPC; the lift of a pair, lift(A, B) = baskets(A and B) x baskets / (baskets(A) x baskets(B)), is
computed from revealed counts only. A basket is a checkout: one customer, one purchase moment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from cleanroom.analyses.summed import PreparedTables, ReportContext, SummedKind
from cleanroom.party.checkouts import customer_passes, sorted_baskets
from cleanroom.report.templating import render
from cleanroom.spec.kinds import AnalysisKind, Name, SecureAnalysis

if TYPE_CHECKING:
    from cleanroom.secure.requests import RevealedTotals

GRID_FILE = "copurchase.i64"


class CopurchaseLift(SecureAnalysis):
    """How much more often two categories share a basket than chance across the market:
    lift(A, B) = baskets(A and B) * baskets / (baskets(A) * baskets(B)). The basket counts are summed
    under MPC with disclosure control; a lift is shown only when all four of its counts are."""

    id: Name
    kind: Literal[AnalysisKind.COPURCHASE_LIFT]
    objective: Name
    categories: list[str] = Field(min_length=2, max_length=16)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(a, b) for i, a in enumerate(self.categories) for b in self.categories[i + 1 :]]

    @property
    def cells(self) -> int:  # one per category, one per pair, one for all baskets
        return len(self.categories) + len(self.pairs) + 1

    @property
    def value_units(self) -> list[float]:  # basket counts
        return [1.0] * self.cells


class LiftRow(BaseModel):
    categories: tuple[str, str]
    baskets_together: int | None
    lift: float | None  # None when any count it needs was suppressed


class LiftTable(BaseModel):
    kind: Literal["copurchase_lift"] = "copurchase_lift"
    rows: list[LiftRow]  # highest lift first


class Copurchase(SummedKind[CopurchaseLift, LiftTable]):
    kind = AnalysisKind.COPURCHASE_LIFT
    model = CopurchaseLift
    grid_file = GRID_FILE
    section_model = LiftTable

    def local_grid(self, analysis: CopurchaseLift, tables: PreparedTables) -> np.ndarray:
        return copurchase_grid(tables.transactions, analysis)

    def section(self, analysis: CopurchaseLift, revealed: RevealedTotals, context: ReportContext) -> LiftTable:
        counts = revealed.sales_cents  # for co-purchase the revealed values are basket counts
        single = dict(zip(analysis.categories, counts))
        total = counts[-1]
        rows = []
        for i, (a, b) in enumerate(analysis.pairs):
            together = counts[len(analysis.categories) + i]
            parts = (together, single[a], single[b], total)
            known = all(v is not None for v in parts) and single[a] and single[b]
            lift = together * total / (single[a] * single[b]) if known else None  # type: ignore[operator]
            rows.append(LiftRow(categories=(a, b), baskets_together=together, lift=lift))
        return LiftTable(rows=sorted(rows, key=lambda r: -(r.lift or 0.0)))

    def headline(self, section: LiftTable) -> list[str]:
        strongest = next((row for row in section.rows if row.lift is not None), None)
        if strongest is None:
            return []
        a, b = strongest.categories
        return [f"Strongest category pair: {a} & {b} (lift {strongest.lift:.2f})"]

    def html(self, section: LiftTable, context: ReportContext) -> str:
        return render("sections/copurchase.html.j2", section=section, context=context)


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
