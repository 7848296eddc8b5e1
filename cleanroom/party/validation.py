"""Great Expectations adapter: suites from `expectations/`, polars converted to pandas here only.

Results use the BOOLEAN_ONLY format, so no failing raw value (an email, a name) is copied into them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import polars as pl

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
Severity = Literal["block", "warn"]


@dataclass(frozen=True)
class ExpectationOutcome:
    table: str
    expectation: str
    column: str | None
    severity: Severity
    success: bool

    @property
    def label(self) -> str:
        return f"{self.table}.{self.column or '*'}:{self.expectation}"


@dataclass(frozen=True)
class SuiteDefinition:
    name: str
    columns: tuple[str, ...]
    expectations: tuple[dict, ...]


def load_suite(table: str, directory: Path = EXPECTATIONS_DIR) -> SuiteDefinition:
    """The expectation suite for one canonical table, as stored in `expectations/<table>.json`."""
    raw = json.loads((directory / f"{table}.json").read_text())
    return SuiteDefinition(raw["name"], tuple(raw["columns"]), tuple(raw["expectations"]))


@lru_cache(maxsize=1)
def _context():  # type: ignore[no-untyped-def]
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def validate_table(table: str, frame: pl.DataFrame, suite: SuiteDefinition) -> list[ExpectationOutcome]:
    """Run a suite over a polars frame; outcomes carry pass/fail only, never values."""
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    context = _context()
    source = context.data_sources.add_or_update_pandas(f"party-{table}")
    asset = source.add_dataframe_asset(table)
    batch_definition = asset.add_batch_definition_whole_dataframe("all")
    gx_suite = gx.ExpectationSuite(name=f"{suite.name}-run")
    for spec in suite.expectations:
        gx_suite.add_expectation_configuration(
            ExpectationConfiguration(type=spec["type"], kwargs=spec["kwargs"], meta={"severity": spec["severity"]})
        )
    gx_suite = context.suites.add_or_update(gx_suite)
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame.to_pandas()})
    result = batch.validate(gx_suite, result_format="BOOLEAN_ONLY")
    return [
        ExpectationOutcome(
            table=table,
            expectation=r.expectation_config.type,
            column=r.expectation_config.kwargs.get("column"),
            severity=r.expectation_config.meta.get("severity", "block"),
            success=bool(r.success),
        )
        for r in result.results
    ]
