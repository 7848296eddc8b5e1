"""Retention: prepared versions and quarantined files older than their table's declared retention are
deleted, and so are the run folders that carry the same tables' data.

Runs at the start of every preparation, inside the party, before anything is read or written.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from cleanroom.party.runs import RUNS_DIR
from cleanroom.party.versions import versions
from cleanroom.spec.sources import CanonicalTable, PartyData

QUARANTINE_DIR = Path("quarantine")

# Which derived files carry which table's data (so they follow that table's retention), by folder:
# a prepared version's files and the quarantine.
DERIVED_FILES: dict[CanonicalTable, tuple[str, ...]] = {
    CanonicalTable.CUSTOMERS: ("customers.parquet", "join_keys.parquet"),
    CanonicalTable.PRODUCTS: ("products.parquet",),
    CanonicalTable.TRANSACTIONS: (
        "transactions.parquet",
        "category_month.i64",
        "customer_segments.i64",
        "copurchase.i64",
        "basket_statistics.i64",
    ),
    CanonicalTable.STORE_SALES: ("store_sales.parquet", "category_month.i64"),
}


def delete_expired(data: PartyData, workspace: Path, now: datetime) -> list[str]:
    """Delete what is past its table's retention; return the workspace-relative paths deleted. A
    prepared version goes as a whole (it is immutable), a run folder when it is older than the
    shortest retention of the tables it was computed from."""
    deleted = []
    limits = {t: timedelta(days=data.tables[t].retention_days) for t in DERIVED_FILES if t in data.tables}
    derived = {t: names for t, names in DERIVED_FILES.items() if t in limits}  # the tables this party exports
    for version in versions(workspace):
        if any(_older(version / name, limits[t], now) for t, names in derived.items() for name in names):
            shutil.rmtree(version)
            deleted.append(str(version.relative_to(workspace)))
    for table, names in derived.items():
        for name in names:
            path = workspace / QUARANTINE_DIR / name
            if _older(path, limits[table], now):
                path.unlink()
                deleted.append(str(path.relative_to(workspace)))
    shortest = min(limits.values())
    for run in sorted((workspace / RUNS_DIR).glob("*")):
        if run.is_dir() and _older(run, shortest, now):
            shutil.rmtree(run)
            deleted.append(str(run.relative_to(workspace)))
    return deleted


def _older(path: Path, limit: timedelta, now: datetime) -> bool:
    return path.exists() and now - datetime.fromtimestamp(path.stat().st_mtime, now.tzinfo) > limit
