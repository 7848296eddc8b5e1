"""Every approved secure analysis's local pre-aggregation, from the party's staged anonymized data:
the grids its player secret-shares, so secure cost depends on the number of cells, not rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.analyses import PreparedTables, summed_analyses
from cleanroom.spec.models import CollaborationSpec


def pre_aggregate(spec: CollaborationSpec, staging: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(file name, [2, cells] grid) per approved summed analysis, the market trend first."""
    tables = PreparedTables(
        transactions=pl.scan_parquet(staging / "transactions.parquet"),
        customers=pl.scan_parquet(staging / "customers.parquet"),
    )
    for analysis, kind in summed_analyses(spec.analyses):
        yield kind.grid_file, kind.local_grid(analysis, tables)
