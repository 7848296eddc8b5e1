"""The expectation suites in `expectations/`, loaded in one place and evaluated as polars rules.

Every row of every table is checked here (streaming, full table): a failing row goes to the party's
quarantine with the expectation's label as its reason. Great Expectations validates the same suites
for the Data Docs (`validation.py`). Placeholders tie suites to the run and the party: `"$now"` (the
run's start, for "not in the future"), a value set `"$<table>.<column>"` (a foreign key), and
`"$bounds.<name>"` (the party's plausibility bounds from the spec, `data.bounds`). A rule with
`"only_if": "gtin"` applies where the spec declares the column as GTINs; rules on columns an export
does not have are left out (`party_suite`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

import polars as pl

from cleanroom.errors import ConfigurationError
from cleanroom.party.canonical import SCHEMAS, Kind
from cleanroom.spec.models import CollaborationSpec
from cleanroom.spec.sources import Bounds, CanonicalTable, TableSource

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
Severity = Literal["block", "quarantine", "warn"]
NOW = "$now"
ROW_TYPES = {
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_be_between",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
}
TABLE_TYPES = {"expect_table_row_count_to_be_between"}


@dataclass(frozen=True)
class Expectation:
    table: CanonicalTable
    type: str
    kwargs: dict[str, Any]
    severity: Severity
    only_if: str | None = None  # "gtin": only where the spec declares the column as GTINs

    @property
    def column(self) -> str | None:
        return self.kwargs.get("column")

    @property
    def label(self) -> str:
        return f"{self.table.value}.{self.column or '*'}:{self.type}"

    @property
    def bound(self) -> str:
        """What the rule allows, for people: "1 to 1000", "one of products.product_id", "not null"."""
        kwargs = self.kwargs
        if self.type == "expect_column_values_to_be_between" or self.type in TABLE_TYPES:
            low, high = kwargs.get("min_value"), kwargs.get("max_value")
            return f"{'-' if low is None else low} to {'-' if high is None else high}"
        if self.reference:
            return f"one of {self.reference[0].value}.{self.reference[1]}"
        if "value_set" in kwargs:
            return f"one of {len(kwargs['value_set'])} values"
        if "regex" in kwargs:
            return f"matches {kwargs['regex']}"
        plain = {"expect_column_values_to_not_be_null": "not null", "expect_column_values_to_be_unique": "unique"}
        return plain.get(self.type, "")

    @property
    def row_level(self) -> bool:
        return self.type in ROW_TYPES

    @property
    def reference(self) -> tuple[CanonicalTable, str] | None:
        """For a foreign key ("value_set": "$products.product_id"): the referenced table and column."""
        value_set = self.kwargs.get("value_set")
        if isinstance(value_set, str) and value_set.startswith("$"):
            table, column = value_set[1:].split(".", 1)
            return CanonicalTable(table), column
        return None


@dataclass(frozen=True)
class Suite:
    table: CanonicalTable
    expectations: tuple[Expectation, ...]


@dataclass
class RuleContext:
    """Run-time values the rules need: the run's start and the keys other tables contributed."""

    now: datetime
    # None: the referenced table could not be read (its foreign keys are then not checked)
    keys: dict[tuple[CanonicalTable, str], pl.Series | None] = field(default_factory=dict)
    duplicated: dict[str, pl.Series] = field(default_factory=dict)  # column -> keys seen twice or more


@cache
def load_suite(table: CanonicalTable, directory: Path = EXPECTATIONS_DIR) -> Suite:
    """The suite for one canonical table from `expectations/<table>.json`, checked against the schema."""
    path = directory / f"{table.value}.json"
    raw = json.loads(path.read_text())
    schema = SCHEMAS[table]
    expectations = []
    for i, item in enumerate(raw["expectations"]):
        expectation = Expectation(table, item["type"], item["kwargs"], item["severity"], item.get("only_if"))
        where = f"{path}: expectations[{i}]"
        if expectation.type not in ROW_TYPES | TABLE_TYPES:
            raise ConfigurationError(
                f"unsupported expectation type {expectation.type}",
                where=where,
                fix=f"use one of {', '.join(sorted(ROW_TYPES | TABLE_TYPES))}",
            )
        if expectation.column is not None and expectation.column not in schema.names:
            raise ConfigurationError(
                f"unknown column {expectation.column}", where=where, fix=f"use one of {schema.names}"
            )
        if expectation.severity not in ("block", "quarantine", "warn"):
            raise ConfigurationError("bad severity", where=where, fix="use block, quarantine or warn")
        if expectation.only_if not in (None, "gtin"):
            raise ConfigurationError("unknown only_if", where=where, fix='use "gtin" or leave it out')
        for name in ("min_value", "max_value"):
            value = expectation.kwargs.get(name)
            if isinstance(value, str) and value.startswith(BOUNDS) and value[len(BOUNDS) :] not in BOUND_NAMES:
                raise ConfigurationError(
                    f"unknown bound {value}", where=where, fix=f"use one of {', '.join(sorted(BOUND_NAMES))}"
                )
        expectations.append(expectation)
    return Suite(table, tuple(expectations))


BOUNDS = "$bounds."
BOUND_NAMES = {
    "max_quantity",
    "max_unit_price_cents",
    "max_line_total_cents",
    "earliest_purchase",
    "earliest_date",
}


def party_suite(
    spec: CollaborationSpec, source: TableSource, table: CanonicalTable, read: set[str], bounds: Bounds
) -> Suite:
    """The suite as it applies to one party's export: its bounds filled in, rules on columns the export
    does not have left out, GTIN rules only where declared."""
    earliest = bounds.earliest_purchase or spec.earliest_purchase
    values = {
        "max_quantity": bounds.max_quantity,
        "max_unit_price_cents": bounds.max_unit_price_cents,
        "max_line_total_cents": bounds.max_line_total_cents,
        "earliest_purchase": f"{earliest.isoformat()}T00:00:00+00:00",
        "earliest_date": earliest.isoformat(),
    }
    kept = []
    for expectation in load_suite(table).expectations:
        if expectation.column is not None and expectation.column not in read:
            continue
        if expectation.only_if == "gtin" and not source.column(expectation.column or "").gtin:
            continue
        kwargs = {
            k: values[v[len(BOUNDS) :]] if isinstance(v, str) and v.startswith(BOUNDS) else v
            for k, v in expectation.kwargs.items()
        }
        kept.append(Expectation(table, expectation.type, kwargs, expectation.severity, expectation.only_if))
    return Suite(table, tuple(kept))


def failure(expectation: Expectation, context: RuleContext) -> pl.Expr:
    """True for the rows that break a row-level expectation (nulls only fail the not-null rule)."""
    column = expectation.column
    assert column is not None
    value = pl.col(column)
    kwargs = expectation.kwargs
    kind = SCHEMAS[expectation.table].column(column).kind
    if expectation.type == "expect_column_values_to_not_be_null":
        return value.is_null()
    if expectation.type == "expect_column_values_to_be_unique":
        return value.is_in(context.duplicated.get(column, pl.Series([], dtype=pl.String)).implode())
    if expectation.type == "expect_column_values_to_be_between":
        ok = pl.lit(True)
        if kwargs.get("min_value") is not None:
            ok = ok & (value >= _bound(kwargs["min_value"], kind, context))
        if kwargs.get("max_value") is not None:
            ok = ok & (value <= _bound(kwargs["max_value"], kind, context))
        return value.is_not_null() & ~ok
    if expectation.type == "expect_column_values_to_be_in_set":
        reference = expectation.reference
        allowed = context.keys[reference] if reference else pl.Series(kwargs["value_set"])
        if allowed is None:  # the referenced table could not be read: that is its own problem
            return pl.lit(False)
        return value.is_not_null() & ~value.is_in(allowed.implode())
    return value.is_not_null() & ~value.str.contains(kwargs["regex"])


def _bound(value: Any, kind: Kind, context: RuleContext) -> Any:
    if kind is Kind.TIMESTAMP:
        return pl.lit(context.now if value == NOW else datetime.fromisoformat(value)).dt.convert_time_zone("UTC")
    if kind is Kind.DATE:
        return context.now.date() if value == NOW else date.fromisoformat(value)
    return value


def table_check_passes(expectation: Expectation, rows: int) -> bool:
    """Table-level expectations, evaluated on full-table counts."""
    low = expectation.kwargs.get("min_value")
    high = expectation.kwargs.get("max_value")
    return (low is None or rows >= low) and (high is None or rows <= high)
