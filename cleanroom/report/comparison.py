"""The report's comparison with the consortium's previous release: the headline figures of each release
(consortium-level, as released), side by side with this run's, and the change in words."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from cleanroom.report.content import Report


class HeadlineFigures(BaseModel):
    """What a release's headline said, figure by figure (no cell values, no per-party figures)."""

    periods: str  # "2025-01 to 2025-12"
    market_sales_cents: int
    units: int | None
    cells_shown: int
    cells_withheld: int
    top_category: str
    peak_period: str
    distinct_customers: int | None
    shared_customers: int | None


class PreviousRelease(BaseModel):
    """The release before this run, from the ledger; `figures` None when this coordinator has no record
    of its headline (released from another coordinator's workspace)."""

    run_id: str
    ledger_index: int
    released_at: str
    same_spec: bool
    figures: HeadlineFigures | None


class ComparedFigure(BaseModel):
    name: str
    previous: str
    now: str
    change: str  # "+4.2%", "unchanged", "was Grocery", ...


def headline_figures(report: Report) -> HeadlineFigures:
    trend = report.category_month
    return HeadlineFigures(
        periods=f"{trend.periods[0]} to {trend.periods[-1]}",
        market_sales_cents=report.headline.market_sales_cents,
        units=trend.units_shown,
        cells_shown=report.headline.cells_shown,
        cells_withheld=report.headline.cells_suppressed,
        top_category=report.headline.top_category,
        peak_period=report.headline.peak_period,
        distinct_customers=report.distinct_customers,
        shared_customers=report.distinct_shared,
    )


def compared(previous: HeadlineFigures, now: HeadlineFigures, money: Callable[[int], str]) -> list[ComparedFigure]:
    """Every headline figure, previous and now, with the change (relative for amounts and counts)."""

    def number(
        name: str, before: int | None, after: int | None, shown: Callable[[int], str] = "{:,}".format
    ) -> ComparedFigure:
        if before is None or after is None:
            return ComparedFigure(
                name=name,
                previous="not released" if before is None else shown(before),
                now="not released" if after is None else shown(after),
                change="not comparable",
            )
        change = "unchanged" if before == after else (f"{(after - before) / before:+.1%}" if before else "new")
        return ComparedFigure(name=name, previous=shown(before), now=shown(after), change=change)

    def text(name: str, before: str, after: str) -> ComparedFigure:
        return ComparedFigure(
            name=name, previous=before, now=after, change="unchanged" if before == after else "changed"
        )

    return [
        text("Periods covered", previous.periods, now.periods),
        number("Market sales (revealed cells)", previous.market_sales_cents, now.market_sales_cents, money),
        number("Units sold (revealed cells)", previous.units, now.units),
        number("Cells shown", previous.cells_shown, now.cells_shown),
        number("Cells withheld", previous.cells_withheld, now.cells_withheld),
        text("Top category", previous.top_category, now.top_category),
        text("Peak period", previous.peak_period, now.peak_period),
        number("Distinct customers", previous.distinct_customers, now.distinct_customers),
        number("Shopping at two or more retailers", previous.shared_customers, now.shared_customers),
    ]


def change_sentence(previous: PreviousRelease | None, rows: list[ComparedFigure]) -> str:
    """The summary's first line: what changed since the previous release, in plain words."""
    if previous is None:
        return "This is the consortium's first release: there is nothing earlier to compare with."
    when = previous.released_at[:10]
    if not rows:
        return (
            f"The previous release (run {previous.run_id}, {when}) is in the ledger, but its figures are not "
            "available to this coordinator, so nothing is compared."
        )
    by_name = {row.name: row for row in rows}
    sales, top = by_name["Market sales (revealed cells)"], by_name["Top category"]
    parts = [f"market sales {sales.change} ({sales.previous} to {sales.now})"]
    parts.append(
        "the same top category"
        if top.change == "unchanged"
        else f"top category now {top.now} (was {top.previous})"
    )
    if by_name["Periods covered"].change != "unchanged":
        parts.append(f"over different periods ({by_name['Periods covered'].previous} then)")
    return f"Since the previous release (run {previous.run_id}, {when}): " + "; ".join(parts) + "."
