"""Great Expectations adapter: the party's Data Docs, built from the suites in `expectations/`.

This is the one place polars becomes pandas. Results use the BASIC format with
`partial_unexpected_count: 0`: counts and percentages only, so no failing raw value (an email, a name)
is copied into validation results or Data Docs; row-level detail lives in the party's quarantine.
GE sees the rows the polars rules saw, or a uniform sample of them for large tables (see `SAMPLE_ROWS`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from cleanroom.party.canonical import SCHEMAS, Kind
from cleanroom.party.rules import NOW, Expectation, RuleContext, Suite

GX_DIR = Path("gx")
DATA_DOCS_INDEX = GX_DIR / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 0}
# Tables above this size are validated by GE on a uniform sample; every row is still checked by the
# polars rules. 200k rows detect a failure rate of 0.005% with probability 1 - e^-10.
SAMPLE_ROWS = 200_000
ISO_TIMESTAMP = "%Y-%m-%dT%H:%M:%SZ"  # fixed width, so text order is time order for GE's comparisons
ISO_DATE = "%Y-%m-%d"


@dataclass(frozen=True)
class DocsOutcome:
    label: str
    success: bool
    unexpected_count: int | None


def validate_for_data_docs(
    suite: Suite, frame: pl.DataFrame, context: RuleContext, workspace: Path, *, sampled: bool
) -> list[DocsOutcome]:
    """Validate `frame` with GE (results stored in the party's GE project) and return GE's verdicts;
    `build_data_docs` renders them."""
    import great_expectations as gx

    gx_context = _context(workspace)
    table = suite.table.value
    source = gx_context.data_sources.add_or_update_pandas("party")
    asset = source.get_asset(table) if table in source.get_asset_names() else source.add_dataframe_asset(table)
    batch = (
        asset.get_batch_definition("whole")
        if "whole" in [b.name for b in asset.batch_definitions]
        else asset.add_batch_definition_whole_dataframe("whole")
    )
    expectations = [e for e in suite.expectations if e.row_level or not sampled]
    gx_suite = gx.ExpectationSuite(name=table)
    for expectation in expectations:
        gx_suite.add_expectation_configuration(_configuration(expectation, context))
    gx_suite = gx_context.suites.add_or_update(gx_suite)
    definition = gx_context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=table, data=batch, suite=gx_suite)
    )
    checkpoint = gx_context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"{table}-docs",
            validation_definitions=[definition],
            result_format=RESULT_FORMAT,
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": _pandas_frame(suite, frame, context)})
    outcomes = []
    for run in result.run_results.values():
        for item in run.results:
            if item.exception_info.get("raised_exception"):
                raise RuntimeError(f"GE could not evaluate {item.expectation_config.meta['label']}")
            outcomes.append(
                DocsOutcome(
                    item.expectation_config.meta["label"], bool(item.success), item.result.get("unexpected_count")
                )
            )
    return outcomes


def build_data_docs(workspace: Path) -> Path:
    """Render the party's Data Docs from the stored validation results; return the index page."""
    _context(workspace).build_data_docs()
    return workspace / DATA_DOCS_INDEX


@lru_cache(maxsize=4)
def _context(workspace: Path):  # type: ignore[no-untyped-def]
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="file", project_root_dir=str(workspace / GX_DIR))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _configuration(expectation: Expectation, context: RuleContext):  # type: ignore[no-untyped-def]
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    kwargs: dict[str, Any] = dict(expectation.kwargs)
    if expectation.reference is not None:
        # GE cannot hold another table's keys (customer numbers) in a suite: it checks a derived flag.
        kwargs = {"column": _reference_flag(expectation), "value_set": [True]}
    kind = SCHEMAS[expectation.table].column(expectation.column).kind if expectation.column else None
    for bound in ("min_value", "max_value"):
        if kwargs.get(bound) is not None and kind in (Kind.DATE, Kind.TIMESTAMP):
            kwargs[bound] = _iso_bound(kwargs[bound], kind, context)
    return ExpectationConfiguration(
        type=expectation.type, kwargs=kwargs, meta={"severity": expectation.severity, "label": expectation.label}
    )


def _pandas_frame(suite: Suite, frame: pl.DataFrame, context: RuleContext):  # type: ignore[no-untyped-def]
    """The frame GE validates: dates and timestamps as ISO text, foreign keys as derived flags."""
    schema = SCHEMAS[suite.table]
    columns = []
    for name in frame.columns:
        kind = schema.column(name).kind
        if kind is Kind.TIMESTAMP:
            columns.append(pl.col(name).dt.strftime(ISO_TIMESTAMP))
        elif kind is Kind.DATE:
            columns.append(pl.col(name).dt.strftime(ISO_DATE))
        else:
            columns.append(pl.col(name))
    for expectation in suite.expectations:
        if expectation.reference is not None:
            keys = context.keys[expectation.reference]
            column = pl.col(expectation.column)
            # The referenced table could not be read (its own problem): the reference counts as met.
            present = pl.lit(True) if keys is None else column.is_null() | column.is_in(keys.implode())
            columns.append(present.alias(_reference_flag(expectation)))
    return frame.select(columns).to_pandas()


def _reference_flag(expectation: Expectation) -> str:
    table, column = expectation.reference  # type: ignore[misc]
    return f"{expectation.column} in {table.value}.{column}"


def _iso_bound(value: str, kind: Kind, context: RuleContext) -> str:
    from datetime import datetime

    moment = context.now if value == NOW else datetime.fromisoformat(value)
    if kind is Kind.DATE:
        return moment.strftime(ISO_DATE)
    return moment.astimezone(timezone.utc).strftime(ISO_TIMESTAMP)
