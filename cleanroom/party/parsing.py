"""Turn exported cells into canonical types. A cell that does not parse becomes a row-level failure
(the row goes to quarantine with the reason) instead of an exception that would quote the cell."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cleanroom.party.canonical import Column, Kind
from cleanroom.spec.sources import ColumnSource, MoneyUnit

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
DEFAULT_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%z"  # ISO 8601 with offset: 2025-03-01T10:15:00+01:00
DEFAULT_NAIVE_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
DECIMAL_MONEY = r"^-?[0-9]+(\.[0-9]{1,2})?$"
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


def parse_column(column: Column, source: ColumnSource, dtype: pl.DataType, exported_as: str) -> ParsedColumn:
    """Build the typed expression for `column` from an export column of type `dtype`; the failure
    compares the typed value with the exported cell kept (as text) in column `exported_as`."""
    raw = pl.col(column.name)
    if dtype == pl.String:
        raw = raw.str.strip_chars()
        raw = pl.when(raw == "").then(None).otherwise(raw)
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
        if dtype == pl.String:
            exact = raw.str.contains(DECIMAL_MONEY)
            raw = pl.when(exact).then(raw)
        return (raw.cast(pl.Decimal(18, 2), strict=False) * 100).cast(pl.Int64, strict=False)
    if kind is Kind.DATE:
        if dtype == pl.Date:
            return raw
        if isinstance(dtype, pl.Datetime):
            return raw.dt.date()
        return raw.cast(pl.String).str.to_date(source.format or DEFAULT_DATE_FORMAT, strict=False)
    return _timestamp(source, dtype, raw)


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
