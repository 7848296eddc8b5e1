"""Every approved secure analysis's local pre-aggregation, from the party's staged anonymized data:
the grids its player secret-shares, so secure cost depends on the number of cells, not rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.party.basket_statistics import BASKET_STATISTICS_FILE, basket_grid
from cleanroom.party.category_month import CATEGORY_MONTH_FILE, category_month_aggregates
from cleanroom.party.copurchase import COPURCHASE_FILE, copurchase_grid
from cleanroom.party.segments import SEGMENTS_FILE, segment_grid
from cleanroom.spec.models import CollaborationSpec


def pre_aggregate(spec: CollaborationSpec, staging: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(file name, [2, cells] grid) per approved analysis, the market totals first."""

    def transactions() -> pl.LazyFrame:
        return pl.scan_parquet(staging / "transactions.parquet")

    yield CATEGORY_MONTH_FILE.name, category_month_aggregates(transactions(), spec.category_month_sales)
    if spec.customer_segments is not None:
        yield SEGMENTS_FILE.name, segment_grid(transactions(), spec.customer_segments)
    if spec.copurchase_lift is not None:
        yield COPURCHASE_FILE.name, copurchase_grid(transactions(), spec.copurchase_lift)
    if spec.basket_statistics is not None:
        customers = pl.scan_parquet(staging / "customers.parquet")
        yield BASKET_STATISTICS_FILE.name, basket_grid(transactions(), customers, spec.basket_statistics)
