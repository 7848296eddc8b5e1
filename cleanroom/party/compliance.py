"""Retention: prepared and quarantined files older than their table's declared retention are deleted.

Runs at the start of every preparation, inside the party, before anything is read or written.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cleanroom.spec.sources import CanonicalTable, PartyData

PREPARED_DIR = Path("prepared")
QUARANTINE_DIR = Path("quarantine")

# Which derived files carry which table's data (so they follow that table's retention).
DERIVED_FILES: dict[CanonicalTable, tuple[Path, ...]] = {
    CanonicalTable.CUSTOMERS: (
        PREPARED_DIR / "customers.parquet",
        PREPARED_DIR / "join_keys.parquet",
        QUARANTINE_DIR / "customers.parquet",
    ),
    CanonicalTable.PRODUCTS: (QUARANTINE_DIR / "products.parquet",),
    CanonicalTable.TRANSACTIONS: (
        PREPARED_DIR / "transactions.parquet",
        PREPARED_DIR / "category_month.i64",
        PREPARED_DIR / "customer_segments.i64",
        PREPARED_DIR / "copurchase.i64",
        QUARANTINE_DIR / "transactions.parquet",
    ),
}


def delete_expired(data: PartyData, workspace: Path, now: datetime) -> list[str]:
    """Delete derived files past their table's retention; return their workspace-relative paths."""
    deleted = []
    for table, files in DERIVED_FILES.items():
        limit = timedelta(days=data.tables[table].retention_days)
        for relative in files:
            path = workspace / relative
            if path.exists() and now - datetime.fromtimestamp(path.stat().st_mtime, now.tzinfo) > limit:
                path.unlink()
                deleted.append(str(relative))
    return deleted
