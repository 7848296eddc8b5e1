"""Phase 2 inside one party: load its exports, validate them, drop identifiers, pre-aggregate.

Runs in the party's own process with the party's workspace as working directory. It writes only under
that workspace and returns a summary without any row, identifier or per-party figure.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.errors import DataContractError
from cleanroom.party.validation import ExpectationOutcome, load_suite, validate_table
from cleanroom.spec.models import Analysis, AnalysisKind, CollaborationSpec, Party

PREPARED_DIR = Path("prepared")
# The secure engine's players read this file, relative to their own working directory.
CATEGORY_MONTH_FILE = PREPARED_DIR / "category_month.i64"

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "customers": {
        "customer_id": pl.String(),
        "full_name": pl.String(),
        "email": pl.String(),
        "phone": pl.String(),
        "postcode": pl.String(),
        "birth_date": pl.Date(),
        "signup_date": pl.Date(),
    },
    "products": {
        "gtin": pl.String(),
        "product_name": pl.String(),
        "category": pl.String(),
        "brand": pl.String(),
        "list_price_cents": pl.Int64(),
    },
    "transactions": {
        "transaction_id": pl.String(),
        "basket_id": pl.String(),
        "customer_id": pl.String(),
        "gtin": pl.String(),
        "quantity": pl.Int64(),
        "unit_price_cents": pl.Int64(),
        "purchased_at": pl.String(),
    },
}
DIRECT_IDENTIFIERS = ("full_name", "email", "phone")


@dataclass
class PreparationSummary:
    """What a party tells the coordinator: status and expectation names, no figures."""

    party: str
    status: str
    expectations_evaluated: int = 0
    failed_blocking: list[str] = field(default_factory=list)
    failed_warning: list[str] = field(default_factory=list)
    aggregate_digest: str = ""
    error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def load_table(party: Party, table: str, workspace: Path) -> pl.DataFrame:
    """Read one export with the canonical schema; a wrong file or column is a DataContractError."""
    path = workspace / party.data_location / f"{table}.csv"
    where = f"party {party.name}: {party.data_location}/{table}.csv"
    if not path.is_file():
        raise DataContractError("file not found", where=where, fix=f"export the {table} table to that path")
    if path.stat().st_size == 0:
        raise DataContractError("file is empty", where=where, fix="re-export the table with its header row")
    schema = SCHEMAS[table]
    header = pl.scan_csv(path, n_rows=0, infer_schema=False).collect_schema().names()
    missing = [c for c in schema if c not in header]
    if missing:
        raise DataContractError(
            f"missing column(s) {', '.join(missing)}", where=where, fix="add them or map the export's names"
        )
    try:
        return pl.scan_csv(path, schema_overrides=schema, infer_schema=False).select(list(schema)).collect()
    except pl.exceptions.PolarsError as exc:
        # The polars message can quote a cell value: keep it out of the one-line error.
        raise DataContractError(
            "a value does not parse as the expected type", where=where, fix=f"check column types: {schema}"
        ) from exc


def drop_identifiers(customers: pl.DataFrame, reference: date) -> pl.DataFrame:
    """Remove direct identifiers; generalize birth date to a 10-year age band and postcode to 2 digits."""
    age = (reference.year - pl.col("birth_date").dt.year()).clip(0, 120)
    return customers.select(
        "customer_id",
        ((age // 10) * 10).cast(pl.Int32).alias("age_band"),
        pl.col("postcode").str.slice(0, 2).alias("postcode_prefix"),
        "signup_date",
    )


def category_month_aggregates(
    transactions: pl.DataFrame, products: pl.DataFrame, analysis: Analysis, time_zone: str = "UTC"
) -> np.ndarray:
    """Dense [2, categories x months] int64: sales in cents and distinct customers per cell.

    The grid comes from the spec, so every party's array has the same public shape and order.
    """
    months = analysis.month_labels
    grid = pl.DataFrame(
        {
            "category": [c for c in analysis.categories for _ in months],
            "month": [m for _ in analysis.categories for m in months],
        }
    )
    lines = (
        transactions.lazy()
        .join(products.lazy().select("gtin", "category"), on="gtin", how="inner")
        .with_columns(
            pl.col("purchased_at")
            .str.to_datetime(time_zone="UTC")
            .dt.convert_time_zone(time_zone)
            .dt.strftime("%Y-%m")
            .alias("month"),
            (pl.col("quantity") * pl.col("unit_price_cents")).alias("sales_cents"),
        )
        .group_by("category", "month")
        .agg(pl.col("sales_cents").sum(), pl.col("customer_id").n_unique().alias("customers"))
    )
    cells = (
        grid.lazy().join(lines, on=["category", "month"], how="left", maintain_order="left").fill_null(0).collect()
    )
    return np.stack([cells["sales_cents"].to_numpy(), cells["customers"].to_numpy()]).astype(np.int64)


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def prepare_party(spec: CollaborationSpec, party_name: str, workspace: Path) -> PreparationSummary:
    """Load, validate, anonymize and pre-aggregate one party's data inside its workspace."""
    party = spec.party(party_name)
    analysis = spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    tables = {name: load_table(party, name, workspace) for name in SCHEMAS}
    outcomes: list[ExpectationOutcome] = []
    for name, frame in tables.items():
        outcomes += validate_table(name, frame, load_suite(name))
    blocking = [o.label for o in outcomes if not o.success and o.severity == "block"]
    warnings = [o.label for o in outcomes if not o.success and o.severity == "warn"]
    summary = PreparationSummary(
        party=party.name,
        status="failed" if blocking else "ok",
        expectations_evaluated=len(outcomes),
        failed_blocking=blocking,
        failed_warning=warnings,
    )
    if blocking:
        return summary
    customers = drop_identifiers(tables["customers"], analysis.period_start)
    aggregates = category_month_aggregates(
        tables["transactions"], tables["products"], analysis, analysis.time_zone
    )
    buffer = io.BytesIO()
    customers.write_parquet(buffer)
    write_atomically(workspace / PREPARED_DIR / "customers.parquet", buffer.getvalue())
    payload = aggregates.astype("<i8").tobytes()
    write_atomically(workspace / CATEGORY_MONTH_FILE, payload)
    summary.aggregate_digest = hashlib.sha256(payload).hexdigest()
    return summary
