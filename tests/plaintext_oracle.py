"""An independent plaintext computation of the category x month totals, straight from the raw exports
with the csv module and pyarrow (no polars, none of the product's mapping code), to check the secure
results and the party-side preparation. It knows the demo's two export layouts by heart."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from cleanroom.spec.models import CategoryMonthSales


def export_lines(raw: Path) -> Iterator[tuple[str, str, datetime, int]]:
    """(customer, gtin, aware timestamp, sales cents) per transaction line, from either layout."""
    if (raw / "transactions.csv").exists():
        with (raw / "transactions.csv").open() as handle:
            for row in csv.DictReader(handle):
                sales = int(row["quantity"]) * int(row["unit_price_cents"])
                yield row["customer_id"], row["gtin"], datetime.fromisoformat(row["purchased_at"]), sales
        return
    vienna = ZoneInfo("Europe/Vienna")
    for row in pq.read_table(raw / "bons.parquet").to_pylist():
        cents = int(Decimal(row["preis_eur"]) * 100)
        yield row["kundennr"], row["ean"], row["zeitpunkt"].replace(tzinfo=vienna), row["menge"] * cents


def product_categories(raw: Path) -> dict[str, str]:
    if (raw / "products.csv").exists():
        with (raw / "products.csv").open() as handle:
            return {row["gtin"]: row["category"] for row in csv.DictReader(handle)}
    with (raw / "artikel.csv").open() as handle:
        return {row["ean"]: row["warengruppe"] for row in csv.DictReader(handle)}


def plaintext_grid(raw_dirs: list[Path], analysis: CategoryMonthSales) -> tuple[list[int], list[int]]:
    """Market sales (cents) and customer-retailer counts per cell, category-major like the spec grid."""
    zone = ZoneInfo(analysis.time_zone)
    months = analysis.month_labels
    sales: dict[tuple[str, str], int] = defaultdict(int)
    customers: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for raw in raw_dirs:
        category_of = product_categories(raw)
        for customer, gtin, moment, amount in export_lines(raw):
            category = category_of.get(gtin)
            if category is None:
                continue
            month = moment.astimezone(zone).strftime("%Y-%m")
            sales[category, month] += amount
            customers[category, month].add((str(raw), customer))
    keys = [(c, m) for c in analysis.categories for m in months]
    return [sales[k] for k in keys], [len(customers[k]) for k in keys]
