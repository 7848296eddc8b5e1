"""Check one table, every row, streaming: parse to canonical types, evaluate the suite's rules, and
split the rows into clean and quarantined (each with the labels of the rules it broke).

Nothing is loaded whole: polars scans the export lazily, and the passes below are streaming queries
(a small pre-pass finds duplicated keys by hashing, then counts, then the sinks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.party.connectors import IGNORED_PREFIX, ColumnPlan, LocatedExport, malformed_csv, scan_export
from cleanroom.party.parsing import line_sales, parse_column
from cleanroom.party.rules import Expectation, RuleContext, Suite, failure, table_check_passes
from cleanroom.spec.sources import CanonicalTable, SourceFormat

RAW_SUFFIX = "__as_exported"
REASON = "reason"


@dataclass(frozen=True)
class RuleCount:
    label: str
    severity: str
    failing_rows: int


@dataclass
class CheckedTable:
    """The outcome of checking one table: rows, failures per rule, and the typed frame to read from."""

    export: LocatedExport
    suite: Suite  # as it applies to this export (the party's bounds, its columns)
    rows: int
    counts: list[RuleCount]
    typed: pl.LazyFrame  # every row, canonical types, plus the quarantine reason
    clean_rows: int = 0
    blocking: list[str] = field(default_factory=list)

    @property
    def quarantined_rows(self) -> int:
        return self.rows - self.clean_rows

    def clean(self) -> pl.LazyFrame:
        return self.typed.filter(pl.col(REASON) == "").drop(REASON)


def check_table(export: LocatedExport, suite: Suite, context: RuleContext, plan: ColumnPlan) -> CheckedTable:
    """Parse, find duplicated keys, evaluate every rule over every row; return counts and frames. An
    export polars cannot split into rows (an unclosed quote, a row with an extra field) is one error
    naming its first bad line."""
    try:
        return _check_table(export, suite, context, plan)
    except pl.exceptions.ComputeError:
        if export.source.resolved_format is SourceFormat.PARQUET:
            raise
        raise malformed_csv(export) from None


def _check_table(export: LocatedExport, suite: Suite, context: RuleContext, plan: ColumnPlan) -> CheckedTable:
    schema, source = export.schema, export.source
    raw = scan_export(export, plan)
    every_column = raw.collect_schema().names()
    ignored = [c for c in every_column if c.startswith(IGNORED_PREFIX)]
    dtypes = raw.collect_schema()
    parsed = [
        parse_column(c, source.column(c.name), dtypes[c.name], c.name + RAW_SUFFIX, source.decimal_comma)
        for c in schema.columns
    ]
    raw_copies = [pl.col(c.name).cast(pl.String).alias(c.name + RAW_SUFFIX) for c in schema.columns]
    typed = raw.with_columns(*raw_copies).with_columns(p.typed for p in parsed)
    if export.table is CanonicalTable.TRANSACTIONS:
        sales = line_sales(
            "line_total_cents" in plan.read,
            source.column("unit_price_cents"),
            dtypes["unit_price_cents"],
            "unit_price_cents" + RAW_SUFFIX,
            source.decimal_comma,
        )
        typed = typed.with_columns(sales.alias("sales_cents"))
    for expectation in suite.expectations:
        if expectation.type == "expect_column_values_to_be_unique":
            context.duplicated[expectation.column] = duplicated_keys(typed, expectation.column)  # type: ignore[index]

    rules: list[tuple[str, str, pl.Expr]] = [
        (p.reason, "quarantine", p.failure) for p in parsed if p.failure is not None
    ]
    rules += [(e.label, e.severity, failure(e, context)) for e in suite.expectations if e.row_level]
    stopping = [(label, expr) for label, severity, expr in rules if severity in ("quarantine", "block")]
    reason = pl.concat_str(
        [pl.when(expr).then(pl.lit(label)) for label, expr in stopping], separator="; ", ignore_nulls=True
    ).fill_null("")
    typed = typed.with_columns(reason.alias(REASON))

    totals = typed.select(
        pl.len().alias("__rows"),
        (pl.col(REASON) == "").sum().alias("__clean"),
        *[expr.sum().alias(f"__rule{i}") for i, (_, _, expr) in enumerate(rules)],
        # Every column read, so polars checks each row's field count (projection skips the check).
        *[pl.col(c).null_count().alias(f"__read{i}") for i, c in enumerate(every_column)],
    ).collect(engine="streaming")
    typed = typed.drop(ignored)  # the ignored columns go no further
    counts = [
        RuleCount(label, severity, int(totals[f"__rule{i}"][0])) for i, (label, severity, _) in enumerate(rules)
    ]
    rows = int(totals["__rows"][0])
    checked = CheckedTable(export, suite, rows, counts, typed, clean_rows=int(totals["__clean"][0]))
    checked.blocking = [c.label for c in counts if c.severity == "block" and c.failing_rows]
    checked.blocking += [e.label for e in _table_level(suite) if not table_check_passes(e, rows)]
    return checked


def duplicated_keys(frame: pl.LazyFrame, column: str) -> pl.Series:
    """Keys that occur more than once. Only 8-byte hashes are held (80 MB for 10 M rows) and sorted
    in numpy; the few candidates are then confirmed on the real keys, so a hash collision never
    flags a row."""
    key = pl.col(column)
    hashes = frame.filter(key.is_not_null()).select(key.hash()).collect(engine="streaming").to_series()
    hashes.sort(in_place=True)
    values = hashes.to_numpy()  # a view: no copy
    candidates = pl.Series("h", np.unique(values[1:][values[1:] == values[:-1]]), dtype=pl.UInt64)
    del values, hashes
    if candidates.is_empty():
        return pl.Series(column, [], dtype=pl.String)
    confirmed = (
        frame.select(key)
        .filter(key.hash().is_in(candidates.implode()))
        .group_by(column)
        .len()
        .filter(pl.col("len") > 1)
        .collect(engine="streaming")
    )
    return confirmed[column].cast(pl.String)


def sample_for_docs(checked: CheckedTable, limit: int, seed: int = 20251) -> tuple[pl.DataFrame, bool]:
    """The typed rows GE validates: all of them, or a uniform sample chosen by a seeded hash of the
    exported cells (streaming, and the same rows on every run). Returns (frame, sampled)."""
    columns = checked.export.schema.names
    typed = checked.typed.select(columns)
    if checked.rows <= limit:
        return typed.collect(engine="streaming"), False
    modulus = 1_000_000
    keep = int(modulus * limit / checked.rows)
    # The whole row's cells: a primary key the export lacks (no transaction ids) would be null everywhere.
    key = pl.struct([pl.col(c + RAW_SUFFIX) for c in columns])
    chosen = checked.typed.filter(key.hash(seed) % modulus < keep).select(columns)
    return chosen.collect(engine="streaming"), True


def quarantine_frame(checked: CheckedTable) -> pl.LazyFrame:
    """Rejected rows exactly as exported (text), with the reasons: only ever written in the party."""
    columns = [pl.col(c + RAW_SUFFIX).alias(c) for c in checked.export.schema.names]
    return checked.typed.filter(pl.col(REASON) != "").select(*columns, pl.col(REASON))


def _table_level(suite: Suite) -> list[Expectation]:
    return [e for e in suite.expectations if not e.row_level]


def sink(frame: pl.LazyFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.sink_parquet(path, engine="streaming")
