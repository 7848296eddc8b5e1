"""Turn exported cells into canonical types. A cell that does not parse becomes a row-level failure
(the row goes to quarantine with the reason) instead of an exception that would quote the cell.

Money is held as integer cents (hundredths of the consortium's currency unit). Decimal amounts may have
up to six decimals (12.3456 per kilo) and a decimal comma where the table says so. A line's sales are
rounded once, at line level: its line total if the export has one, else quantity x the exact unit price,
rounded half to even to the cent (`line_sales`). Unit prices shown on their own are rounded the same way."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cleanroom.party.canonical import Column, Kind
from cleanroom.spec.sources import ColumnSource, MoneyUnit

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
DEFAULT_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # ISO 8601 with offset: 2025-03-01T10:15:00+01:00
DEFAULT_NAIVE_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
DECIMAL_MONEY = r"^-?[0-9]+(\.[0-9]{1,6})?$"
EXACT = pl.Decimal(24, 6)
TYPE_NAMES = {
    Kind.INTEGER: "an integer",
    Kind.MONEY: "an amount",
    Kind.DATE: "a date",
    Kind.TIMESTAMP: "a timestamp",
}


@dataclass(frozen=True)
class ParsedColumn:
    """The canonical typed expression of one column and the reason a row fails to parse, if it does."""

    name: str
    typed: pl.Expr
    failure: pl.Expr | None  # true where the exported cell had a value that did not parse

    @property
    def reason(self) -> str:
        return f"{self.name}: does not parse"


def parse_column(
    column: Column, source: ColumnSource, dtype: pl.DataType, exported_as: str, decimal_comma: bool = False
) -> ParsedColumn:
    """Build the typed expression for `column` from an export column of type `dtype`; the failure
    compares the typed value with the exported cell kept (as text) in column `exported_as`."""
    raw = pl.col(column.name)
    if dtype == pl.String:
        raw = raw.str.strip_chars()
        raw = pl.when(raw == "").then(None).otherwise(raw)
        if column.kind is Kind.MONEY and decimal_comma:
            raw = raw.str.replace(",", ".", literal=True)
    typed = _typed(column, source, dtype, raw).alias(column.name)
    if column.kind is Kind.TEXT:
        return ParsedColumn(column.name, typed, None)
    exported = pl.col(exported_as).str.strip_chars()
    return ParsedColumn(column.name, typed, (exported != "") & pl.col(column.name).is_null())


def _typed(column: Column, source: ColumnSource, dtype: pl.DataType, raw: pl.Expr) -> pl.Expr:
    kind = column.kind
    if kind is Kind.TEXT:
        return raw.cast(pl.String)
    if kind is Kind.INTEGER or (kind is Kind.MONEY and source.unit in (None, MoneyUnit.CENTS)):
        return raw.cast(pl.Int64, strict=False)
    if kind is Kind.MONEY:
        return (_exact_amount(raw, dtype) * 100).round(0).cast(pl.Int64, strict=False)
    if kind is Kind.DATE:
        if dtype == pl.Date:
            return raw
        if isinstance(dtype, pl.Datetime):
            return raw.dt.date()
        return raw.cast(pl.String).str.to_date(source.format or DEFAULT_DATE_FORMAT, strict=False)
    return _timestamp(source, dtype, raw)


def _exact_amount(raw: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    if dtype == pl.String:
        raw = pl.when(raw.str.contains(DECIMAL_MONEY)).then(raw)
    return raw.cast(EXACT, strict=False)


def line_sales(
    has_line_total: bool, unit_price: ColumnSource, dtype: pl.DataType, exported_as: str, decimal_comma: bool
) -> pl.Expr:
    """A line's sales in cents, rounded once: the line total, or quantity x the exact unit price (from
    the exported cell in `exported_as`, not from the price already rounded to cents)."""
    if has_line_total:
        return pl.col("line_total_cents")
    if unit_price.unit in (None, MoneyUnit.CENTS):
        return pl.col("quantity") * pl.col("unit_price_cents")
    raw = pl.col(exported_as).str.strip_chars()
    if decimal_comma:
        raw = raw.str.replace(",", ".", literal=True)
    exact = _exact_amount(raw, pl.String) if dtype == pl.String else pl.col(exported_as).cast(EXACT, strict=False)
    return (exact * pl.col("quantity") * 100).round(0).cast(pl.Int64)


def _timestamp(source: ColumnSource, dtype: pl.DataType, raw: pl.Expr) -> pl.Expr:
    """Canonical timestamps are UTC. Offsets in the export win; naive ones are read in `time_zone`."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return raw.dt.convert_time_zone("UTC")
    if isinstance(dtype, pl.Datetime):
        naive = raw
    elif source.time_zone is not None:
        naive = raw.cast(pl.String).str.to_datetime(source.format or DEFAULT_NAIVE_TIMESTAMP_FORMAT, strict=False)
    else:
        return raw.cast(pl.String).str.to_datetime(
            source.format or DEFAULT_TIMESTAMP_FORMAT, time_zone="UTC", strict=False
        )
    # Times that do not exist or are ambiguous at a DST change become failures, not guesses.
    return naive.dt.replace_time_zone(
        source.time_zone or "UTC", ambiguous="null", non_existent="null"
    ).dt.convert_time_zone("UTC")
