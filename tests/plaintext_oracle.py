"""An independent plaintext computation of the category x month totals, straight from the raw exports
with the csv module and pyarrow (no polars, none of the product's mapping code), to check the secure
results and the party-side preparation. It knows the demo's two export layouts by heart."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from cleanroom.spec.models import BasketStatistics, CategoryMonthSales, CopurchaseLift, CustomerSegments


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


def export_quantities(raw: Path) -> Iterator[int]:
    """Units per transaction line, in `export_lines` order."""
    if (raw / "transactions.csv").exists():
        with (raw / "transactions.csv").open() as handle:
            yield from (int(row["quantity"]) for row in csv.DictReader(handle))
        return
    yield from (row["menge"] for row in pq.read_table(raw / "bons.parquet").to_pylist())


def product_categories(raw: Path) -> dict[str, str]:
    if (raw / "products.csv").exists():
        with (raw / "products.csv").open() as handle:
            return {row["gtin"]: row["category"] for row in csv.DictReader(handle)}
    with (raw / "artikel.csv").open() as handle:
        return {row["ean"]: row["warengruppe"] for row in csv.DictReader(handle)}


def period_of(day: date, grain: str) -> str:
    """The label of the day's period, written out here rather than taken from the product."""
    if grain == "day":
        return day.isoformat()
    if grain == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if grain == "month":
        return day.strftime("%Y-%m")
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def plaintext_grid(raw_dirs: list[Path], analysis: CategoryMonthSales) -> tuple[list[int], list[int]]:
    """Market values and customer-retailer counts per cell, category-major like the spec grid: sales in
    cents, then (when the analysis counts them) units sold, each with the same customer counts."""
    zone = ZoneInfo(analysis.time_zone)
    labels = analysis.period_labels
    sales: dict[tuple[str, str], int] = defaultdict(int)
    units: dict[tuple[str, str], int] = defaultdict(int)
    customers: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for raw in raw_dirs:
        category_of = product_categories(raw)
        for (customer, gtin, moment, amount), quantity in zip(export_lines(raw), export_quantities(raw)):
            category = category_of.get(gtin)
            if category is None:
                continue
            period = period_of(moment.astimezone(zone).date(), analysis.grain.value)
            sales[category, period] += amount
            units[category, period] += quantity
            customers[category, period].add((str(raw), customer))
    keys = [(c, m) for c in analysis.categories for m in labels]
    counts = [len(customers[k]) for k in keys]
    if not analysis.units:
        return [sales[k] for k in keys], counts
    return [sales[k] for k in keys] + [units[k] for k in keys], counts + counts


def plaintext_disclosure(
    raw_dirs: list[Path], analysis: CategoryMonthSales, k: int, min_contributors: int, max_share_percent: float
) -> tuple[list[int], list[bool]]:
    """Market sales and which cells pass disclosure control: >= k customers, >= n retailers with sales,
    no retailer above p% of the cell (checked exactly, in integers: 100 * s_i <= p * total)."""
    return disclosure_of(
        [plaintext_grid([raw], analysis) for raw in raw_dirs], k, min_contributors, max_share_percent
    )


def disclosure_of(
    per_party: list[tuple[list[int], list[int]]], k: int, min_contributors: int, max_share_percent: float
) -> tuple[list[int], list[bool]]:
    """Sums of per-party (values, customers) grids and which cells pass the three disclosure rules."""
    sales = [sum(column) for column in zip(*(s for s, _ in per_party))]
    customers = [sum(column) for column in zip(*(c for _, c in per_party))]
    shown = []
    for cell, total in enumerate(sales):
        own = [s[cell] for s, _ in per_party]
        shown.append(
            customers[cell] >= k
            and sum(v > 0 for v in own) >= min_contributors
            and all(100 * v <= max_share_percent * total for v in own)
        )
    return sales, shown


def max_share_percent_per_cell(raw_dirs: list[Path], analysis: CategoryMonthSales) -> list[float]:
    per_party = [plaintext_grid([raw], analysis)[0] for raw in raw_dirs]
    return [100 * max(own) / sum(own) if sum(own) else 0.0 for own in zip(*per_party)]


def plaintext_segments(raw: Path, analysis: CustomerSegments) -> list[int]:
    """One party's customers per RFM cell, from its raw export (lines after `as_of` ignored)."""
    import bisect
    from datetime import timezone

    last: dict[str, datetime] = {}
    baskets: dict[str, set[float]] = defaultdict(set)
    spend: dict[str, int] = defaultdict(int)
    for customer, _gtin, moment, amount in export_lines(raw):
        if moment.astimezone(timezone.utc).date() > analysis.as_of:
            continue
        last[customer] = max(last.get(customer, moment), moment)
        baskets[customer].add(moment.timestamp())  # a checkout: one moment, all its lines
        spend[customer] += amount
    f, m = len(analysis.frequency_baskets) + 1, len(analysis.monetary_cents) + 1
    counts = [0] * analysis.cells
    for customer, moment in last.items():
        r = bisect.bisect_left(
            analysis.recency_days, (analysis.as_of - moment.astimezone(timezone.utc).date()).days
        )
        fi = bisect.bisect_left(analysis.frequency_baskets, len(baskets[customer]))
        mi = bisect.bisect_left(analysis.monetary_cents, spend[customer])
        counts[(r * f + fi) * m + mi] += 1
    return counts


def disclosed(
    per_party: list[list[int]], k: int, min_contributors: int, max_share_percent: float
) -> list[int | None]:
    """Sum per cell across parties and apply the disclosure rules to counts that are their own group size."""
    out: list[int | None] = []
    for own in zip(*per_party):
        total = sum(own)
        ok = (
            total >= k
            and sum(v > 0 for v in own) >= min_contributors
            and all(100 * v <= max_share_percent * total for v in own)
        )
        out.append(total if ok else None)
    return out


def plaintext_copurchase(raw: Path, analysis: CopurchaseLift) -> tuple[list[int], list[int]]:
    """One party's basket counts (categories, pairs, all baskets) and distinct customers per count;
    a basket is one customer's purchase moment."""
    category_of = product_categories(raw)
    baskets: dict[tuple[str, float], set[str]] = defaultdict(set)
    for customer, gtin, moment, _amount in export_lines(raw):
        category = category_of.get(gtin)
        if category in analysis.categories:
            baskets[customer, moment.timestamp()].add(category)
    wanted = [{c} for c in analysis.categories] + [{a, b} for a, b in analysis.pairs]
    counts, people = [], []
    for need in wanted:
        hits = [key for key, cats in baskets.items() if need <= cats]
        counts.append(len(hits))
        people.append(len({customer for customer, _ in hits}))
    counts.append(len(baskets))
    people.append(len({customer for customer, _ in baskets}))
    return counts, people


def plaintext_interactions(raw: Path, gtins: list[str], cutoff: datetime) -> tuple[list[int], int]:
    """From one party's raw export: distinct catalogue items each customer bought before the cutoff
    (sorted, largest first), and the (customer, item) pairs first bought on or after it."""
    catalogue = set(gtins)
    before: dict[str, set[str]] = defaultdict(set)
    after: dict[str, set[str]] = defaultdict(set)
    for customer, gtin, moment, _ in export_lines(raw):
        if gtin in catalogue:
            (before if moment < cutoff else after)[customer].add(gtin)
    new = sum(len(items - before[c]) for c, items in after.items() if c in before)
    return sorted((len(items) for items in before.values()), reverse=True), new


def plaintext_baskets(prepared: Path, analysis: BasketStatistics) -> tuple[list[int], list[int]]:
    """One party's basket grid (values, distinct customers) from its prepared tables, in plain Python."""
    import bisect

    digits, sizes = analysis.region_digits, len(analysis.size_labels)
    region_of = {}
    for row in pq.read_table(prepared / "customers.parquet").to_pylist():
        prefix = (row["postcode_prefix"] or "")[:digits]
        region_of[row["customer_code"]] = int(prefix) if len(prefix) == digits and prefix.isdigit() else 10**digits
    baskets: dict[tuple[int, datetime], list[int]] = defaultdict(lambda: [0, 0])
    for row in pq.read_table(prepared / "transactions.parquet").to_pylist():
        basket = baskets[row["customer_code"], row["purchased_at"]]
        basket[0] += row["quantity"]
        basket[1] += row["sales_cents"]
    values = [0] * analysis.cells
    who: dict[int, set[int]] = defaultdict(set)
    for (code, _), (items, value) in baskets.items():
        group = region_of.get(code, 10**digits) * sizes + bisect.bisect_left(analysis.basket_size_items, items)
        base = group * analysis.measures
        band = base + 2 + bisect.bisect_left(analysis.basket_value_cents, value)
        values[base] += 1
        values[base + 1] += value
        values[band] += 1
        for cell in (base, base + 1, band):
            who[cell].add(code)
    return values, [len(who[cell]) for cell in range(analysis.cells)]
