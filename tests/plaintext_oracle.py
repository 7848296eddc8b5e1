"""An independent plaintext computation of the category x month totals, straight from the raw CSVs
with the csv module (no polars), to check the secure results and the party-side pre-aggregation."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from cleanroom.spec.models import Analysis


def plaintext_grid(raw_dirs: list[Path], analysis: Analysis) -> tuple[list[int], list[int]]:
    """Market sales (cents) and customer-retailer counts per cell, category-major like the spec grid."""
    zone = ZoneInfo(analysis.time_zone)
    months = analysis.month_labels
    sales: dict[tuple[str, str], int] = defaultdict(int)
    customers: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for raw in raw_dirs:
        with (raw / "products.csv").open() as handle:
            category_of = {row["gtin"]: row["category"] for row in csv.DictReader(handle)}
        with (raw / "transactions.csv").open() as handle:
            for row in csv.DictReader(handle):
                category = category_of.get(row["gtin"])
                month = datetime.fromisoformat(row["purchased_at"]).astimezone(zone).strftime("%Y-%m")
                if category is None:
                    continue
                sales[category, month] += int(row["quantity"]) * int(row["unit_price_cents"])
                customers[category, month].add((str(raw), row["customer_id"]))
    keys = [(c, m) for c in analysis.categories for m in months]
    return [sales[k] for k in keys], [len(customers[k]) for k in keys]
