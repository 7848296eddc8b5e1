"""Deterministic demo data for a consortium of retailers that looks like retail.

Each retailer gets customers with PII (so anonymization has something to do), its slice of a shared
product catalogue (GTIN-13, category, brand), and twelve months of baskets with seasonality. Customers
are drawn from one population, so some shop at two or three retailers (same person, same email).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl

FIRST_NAMES = (
    "anna",
    "emma",
    "lena",
    "mia",
    "sofia",
    "clara",
    "nina",
    "julia",
    "eva",
    "laura",
    "lukas",
    "jonas",
    "felix",
    "leon",
    "paul",
    "noah",
    "elias",
    "ben",
    "tim",
    "max",
    "marta",
    "ines",
    "pedro",
    "joao",
    "sara",
    "rui",
    "olga",
    "ivan",
    "piet",
    "sanne",
    "daan",
    "lotte",
)
LAST_NAMES = (
    "muller",
    "schmidt",
    "schneider",
    "fischer",
    "weber",
    "meyer",
    "wagner",
    "becker",
    "schulz",
    "hoffmann",
    "silva",
    "santos",
    "ferreira",
    "pereira",
    "costa",
    "jansen",
    "devries",
    "bakker",
    "visser",
    "smit",
    "novak",
    "horvat",
    "kowalski",
    "nowak",
)
EMAIL_DOMAINS = ["mail.example", "post.example", "inbox.example", "web.example"]


@dataclass(frozen=True)
class CategoryProfile:
    name: str
    brands: tuple[str, ...]
    price_range_cents: tuple[int, int]
    popularity: float  # relative weight of the category in baskets
    season: tuple[float, ...]  # 12 monthly multipliers, January first


FLAT = (1.0,) * 12
CATEGORIES: tuple[CategoryProfile, ...] = (
    CategoryProfile("Grocery", ("Fieldway", "Goodharvest", "Mornmill"), (80, 900), 9.0, FLAT),
    CategoryProfile(
        "Beverages",
        ("Clearspring", "Roastery Nine"),
        (90, 1500),
        5.0,
        (0.8, 0.8, 0.9, 1.0, 1.1, 1.3, 1.4, 1.3, 1.0, 0.9, 0.9, 1.3),
    ),
    CategoryProfile("Household", ("Brightnest", "Homeline"), (150, 2500), 3.0, FLAT),
    CategoryProfile("Personal Care", ("Puraskin", "Dentaleaf"), (200, 3000), 2.5, FLAT),
    CategoryProfile(
        "Apparel",
        ("Northcoat", "Linenhouse", "Stride"),
        (1500, 12000),
        1.4,
        (1.3, 0.7, 0.9, 1.1, 1.0, 0.9, 1.2, 0.8, 1.0, 1.1, 1.2, 1.6),
    ),
    CategoryProfile(
        "Electronics",
        ("Voltaro", "Pixelon"),
        (1900, 60000),
        0.5,
        (0.8, 0.7, 0.8, 0.8, 0.8, 0.8, 0.9, 0.9, 1.0, 1.0, 1.8, 2.4),
    ),
    CategoryProfile(
        "Toys",
        ("Playforge", "Tinytown"),
        (500, 8000),
        0.5,
        (0.5, 0.5, 0.6, 0.7, 0.6, 0.6, 0.6, 0.6, 0.7, 0.9, 1.8, 3.8),
    ),
    CategoryProfile(
        "Garden",
        ("Greenhand", "Terrabloom"),
        (300, 15000),
        0.6,
        (0.2, 0.3, 1.0, 2.0, 2.4, 2.0, 1.5, 1.0, 0.6, 0.4, 0.2, 0.2),
    ),
    CategoryProfile("Watches", ("Horologe",), (9000, 90000), 0.02, FLAT),
)
CATEGORY_NAMES = [c.name for c in CATEGORIES]
# Overall shopping intensity by month: a November/December peak and a summer lull.
MONTH_TRAFFIC = np.array([0.9, 0.8, 0.95, 1.0, 1.0, 0.95, 0.9, 0.9, 1.0, 1.05, 1.2, 1.45])


@dataclass(frozen=True)
class Tastes:
    """Latent preferences: within a category a person picks products that match their taste, the
    same way at every retailer. This is the structure a joint recommender can learn."""

    people: np.ndarray  # [people, dims]
    products: np.ndarray  # [catalogue rows, dims]
    # How much taste decides the pick within a category: strong enough that what a person buys at the
    # large retailers says something about what they will buy at the small one.
    strength: float = 3.0

    @classmethod
    def draw(cls, rng: np.random.Generator, people: int, products: int, dims: int = 4) -> Tastes:
        return cls(rng.normal(size=(people, dims)) / np.sqrt(dims), rng.normal(size=(products, dims)))

    def choose(self, rng: np.random.Generator, persons: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """For each purchase line (by person), the index into `rows` of the product bought: a softmax
        over taste match, sampled with the Gumbel-max trick."""
        logits = self.strength * self.people[persons] @ self.products[rows].T
        return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)


@dataclass(frozen=True)
class RetailerProfile:
    name: str
    customers: int
    baskets_per_customer: float
    phone_style: str  # each retailer formats phone numbers its own way
    # Each retailer is strong in some categories and thin in others: where one sees few purchases the
    # others see many, which is what a joint model can add.
    focus: dict[str, float] = field(default_factory=dict)


FOCUS = {
    "northwind": {"Apparel": 3.0, "Personal Care": 2.0, "Grocery": 0.3, "Garden": 0.3},
    "harbor": {"Grocery": 1.5, "Beverages": 2.0, "Apparel": 0.3, "Electronics": 0.3},
    "alpine": {"Garden": 3.0, "Electronics": 2.0, "Beverages": 0.3, "Personal Care": 0.3},
    "fjord": {"Grocery": 2.0, "Household": 2.0, "Electronics": 0.2, "Watches": 0.0},
}


def demo_retailers(scale: float = 1.0) -> list[RetailerProfile]:
    """The demo retailers (three compute parties and Fjord, an input-only party); scale multiplies
    customer counts (tests use small scales). Fjord is the small retailer with short histories (its
    loyalty customers come about one and a half times a year) whose customers also shop elsewhere: the
    one a joint recommender should help."""
    return [
        RetailerProfile("northwind", max(20, int(1500 * scale)), 8.0, "e164", FOCUS["northwind"]),
        RetailerProfile("harbor", max(20, int(1800 * scale)), 6.5, "spaced", FOCUS["harbor"]),
        RetailerProfile("alpine", max(20, int(1200 * scale)), 9.5, "national", FOCUS["alpine"]),
        RetailerProfile("fjord", max(20, int(600 * scale)), 1.5, "e164", FOCUS["fjord"]),
    ]


def gtin13(base12: int) -> str:
    """A GTIN-13 with a valid check digit (GS1 mod-10, weights 1 and 3)."""
    digits = f"{base12:012d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return digits + str((10 - total % 10) % 10)


def product_catalogue(rng: np.random.Generator, per_category: int = 40) -> pl.DataFrame:
    rows = []
    for c_index, profile in enumerate(CATEGORIES):
        for i in range(per_category):
            low, high = profile.price_range_cents
            price = int(np.exp(rng.uniform(np.log(low), np.log(high))))
            brand = profile.brands[i % len(profile.brands)]
            rows.append(
                {
                    "gtin": gtin13(400_638_000_000 + c_index * 1000 + i),
                    "product_name": f"{brand} {profile.name.lower()} item {i + 1:03d}",
                    "category": profile.name,
                    "brand": brand,
                    "list_price_cents": price - price % 10 + 9,
                }
            )
    return pl.DataFrame(rows)


def shared_catalogue(seed: int) -> pl.DataFrame:
    """The public product list the consortium agrees to model (the recommender's items): the same
    catalogue `generate_consortium` draws from, without prices."""
    return product_catalogue(np.random.default_rng(seed)).select(
        pl.col("gtin").alias("product_id"), "product_name", "category", "brand"
    )


def population(rng: np.random.Generator, size: int) -> pl.DataFrame:
    """People who may shop anywhere: the same person has the same email at every retailer."""
    first = rng.choice(FIRST_NAMES, size)
    last = rng.choice(LAST_NAMES, size)
    person = np.arange(size)
    email = [f"{f}.{s}{p % 997}@{EMAIL_DOMAINS[p % len(EMAIL_DOMAINS)]}" for f, s, p in zip(first, last, person)]
    national = rng.integers(150_000_000, 179_999_999, size)
    birth = np.datetime64("1950-01-01") + rng.integers(0, 365 * 55, size).astype("timedelta64[D]")
    return pl.DataFrame(
        {
            "person": person,
            "full_name": [f"{f.title()} {s.title()}" for f, s in zip(first, last)],
            "email": email,
            "national_phone": national,
            "postcode": rng.integers(10_000, 99_999, size).astype(str),
            "birth_date": birth,
        }
    )


def format_phone(number: int, style: str) -> str:
    text = f"{number:09d}"
    if style == "e164":
        return f"+49{text}"
    if style == "spaced":
        return f"+49 {text[:3]} {text[3:6]} {text[6:]}"
    return f"0{text}"


def retailer_customers(rng: np.random.Generator, people: pl.DataFrame, profile: RetailerProfile) -> pl.DataFrame:
    """The retailer's loyalty customers; `person` links to the population (dropped before export)."""
    chosen = np.sort(rng.choice(people.height, profile.customers, replace=False))
    picked = people[chosen]
    signup = np.datetime64("2022-01-01") + rng.integers(0, 1000, picked.height).astype("timedelta64[D]")
    return pl.DataFrame(
        {
            "customer_id": [f"{profile.name[:2].upper()}{i:07d}" for i in range(1, picked.height + 1)],
            "person": picked["person"],
            "full_name": picked["full_name"],
            # Retailers store emails with their own casing and stray spaces; PSI normalizes them later.
            "email": [e.upper() if i % 7 == 0 else e for i, e in enumerate(picked["email"].to_list())],
            "phone": [format_phone(n, profile.phone_style) for n in picked["national_phone"].to_list()],
            "postcode": picked["postcode"],
            "birth_date": picked["birth_date"],
            "signup_date": signup,
        }
    )


def retailer_transactions(
    rng: np.random.Generator,
    customers: pl.DataFrame,
    catalogue: pl.DataFrame,
    profile: RetailerProfile,
    period_start: date,
    tastes: Tastes,
) -> pl.DataFrame:
    n_customers = customers.height
    # Shopping frequency differs a lot between customers (gamma-Poisson).
    intensity = rng.gamma(shape=1.5, scale=profile.baskets_per_customer / 1.5, size=n_customers)
    baskets_per_customer = rng.poisson(intensity)
    basket_customer = np.repeat(np.arange(n_customers), baskets_per_customer)
    n_baskets = basket_customer.size
    month = rng.choice(12, n_baskets, p=MONTH_TRAFFIC / MONTH_TRAFFIC.sum())
    items_per_basket = 1 + rng.poisson(2.2, n_baskets)
    line_basket = np.repeat(np.arange(n_baskets), items_per_basket)
    line_month = month[line_basket]

    weights = np.array(
        [[c.popularity * c.season[m] * profile.focus.get(c.name, 1.0) for c in CATEGORIES] for m in range(12)]
    )
    weights /= weights.sum(axis=1, keepdims=True)
    cumulative = weights.cumsum(axis=1)[line_month]
    line_category = (rng.random(line_basket.size)[:, None] > cumulative).sum(axis=1)

    categories = catalogue["category"].to_numpy()
    by_category = [np.flatnonzero(categories == c.name) for c in CATEGORIES]
    line_customer = basket_customer[line_basket]
    product_index = np.empty(line_basket.size, dtype=np.int64)
    for c, products in enumerate(by_category):
        lines = np.flatnonzero(line_category == c)
        if lines.size:
            product_index[lines] = products[
                tastes.choose(
                    rng,
                    customers["person"].to_numpy()[line_customer[lines]],
                    catalogue["row"].to_numpy()[products],
                )
            ]
    quantity = 1 + rng.poisson(0.35, line_basket.size)
    list_price = catalogue["list_price_cents"].to_numpy()[product_index]
    # Occasional promotions: 10-30% off.
    discount = np.where(rng.random(line_basket.size) < 0.15, rng.uniform(0.7, 0.9, line_basket.size), 1.0)
    unit_price = np.round(list_price * discount).astype(np.int64)

    month_start = [_add_months(period_start, m) for m in range(12)]
    month_days = [(_add_months(period_start, m + 1) - month_start[m]).days for m in range(12)]
    basket_day = (rng.random(n_baskets) * np.array(month_days)[month]).astype(int)
    basket_seconds = rng.integers(8 * 3600, 21 * 3600, n_baskets)
    tz = timezone(timedelta(hours=1))
    basket_time = [
        datetime(month_start[m].year, month_start[m].month, 1, tzinfo=tz) + timedelta(days=int(d), seconds=int(s))
        for m, d, s in zip(month, basket_day, basket_seconds)
    ]
    basket_ids = [f"{profile.name[:2].upper()}B{i:08d}" for i in range(n_baskets)]
    customer_ids = customers["customer_id"].to_numpy()
    return pl.DataFrame(
        {
            "transaction_id": [f"{profile.name[:2].upper()}T{i:09d}" for i in range(line_basket.size)],
            "basket_id": [basket_ids[b] for b in line_basket],
            "customer_id": customer_ids[line_customer],
            "gtin": catalogue["gtin"].to_numpy()[product_index],
            "quantity": quantity,
            "unit_price_cents": unit_price,
            "purchased_at": [basket_time[b].isoformat() for b in line_basket],
        }
    )


def write_canonical_exports(
    folder: Path, customers: pl.DataFrame, products: pl.DataFrame, transactions: pl.DataFrame
) -> None:
    customers.write_csv(folder / "customers.csv")
    products.write_csv(folder / "products.csv")
    transactions.write_csv(folder / "transactions.csv")


def write_alpine_exports(
    folder: Path, customers: pl.DataFrame, products: pl.DataFrame, transactions: pl.DataFrame
) -> None:
    """Alpine's own export layout: German column names, dd.mm.yyyy dates, prices in euros with
    decimals, a column nobody asked for, and transactions as Parquet with naive Vienna local times."""
    customers.select(
        pl.col("customer_id").alias("kundennr"),
        pl.col("full_name").alias("name"),
        pl.col("email").alias("mail"),
        pl.col("phone").alias("telefon"),
        pl.col("postcode").alias("plz"),
        pl.col("birth_date").dt.strftime("%d.%m.%Y").alias("geburtsdatum"),
        pl.col("signup_date").dt.strftime("%d.%m.%Y").alias("angemeldet_am"),
        (pl.int_range(pl.len()) % 3 == 0).alias("newsletter"),
    ).write_csv(folder / "kunden.csv")
    products.select(
        pl.col("gtin").alias("ean"),
        pl.col("product_name").alias("bezeichnung"),
        pl.col("category").alias("warengruppe"),
        pl.col("brand").alias("marke"),
        _euros("list_price_cents").alias("listenpreis_eur"),
    ).write_csv(folder / "artikel.csv")
    transactions.select(
        pl.col("transaction_id").alias("position_id"),
        pl.col("basket_id").alias("bon_id"),
        pl.col("customer_id").alias("kundennr"),
        pl.col("gtin").alias("ean"),
        pl.col("quantity").cast(pl.Int32).alias("menge"),
        (pl.col("unit_price_cents").cast(pl.Decimal(12, 2)) / 100).cast(pl.Decimal(12, 2)).alias("preis_eur"),
        pl.col("purchased_at")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%z", time_zone="UTC")
        .dt.convert_time_zone("Europe/Vienna")
        .dt.replace_time_zone(None)
        .alias("zeitpunkt"),
    ).write_parquet(folder / "bons.parquet")


def _euros(cents: str) -> pl.Expr:
    return (pl.col(cents) // 100).cast(pl.String) + "." + (pl.col(cents) % 100).cast(pl.String).str.zfill(2)


EXPORT_STYLES = {"alpine": write_alpine_exports}


def _add_months(start: date, months: int) -> date:
    year, month = divmod(start.month - 1 + months, 12)
    return date(start.year + year, month + 1, 1)


def retailer_data(
    names: list[str], *, period_start: date, seed: int = 7, scale: float = 1.0
) -> Iterator[tuple[str, pl.DataFrame, pl.DataFrame, pl.DataFrame]]:
    """Per retailer: (name, customers, the catalogue rows it carries, transactions), in memory."""
    rng = np.random.default_rng(seed)
    catalogue = product_catalogue(rng).with_row_index("row")
    profiles = {p.name: p for p in demo_retailers(scale)}
    people = population(rng, 4 * max(p.customers for p in profiles.values()))
    tastes = Tastes.draw(np.random.default_rng([seed, 1]), people.height, catalogue.height)
    for name in names:
        profile = profiles[name]
        party_rng = np.random.default_rng([seed, len(name), sum(map(ord, name))])
        customers = retailer_customers(party_rng, people, profile)
        carried = catalogue.sample(fraction=0.85, seed=int(party_rng.integers(1 << 31)), shuffle=False)
        transactions = retailer_transactions(party_rng, customers, carried, profile, period_start, tastes)
        yield name, customers.drop("person"), carried.drop("row"), transactions


def generate_consortium(
    party_homes: dict[str, Path], *, period_start: date, seed: int = 7, scale: float = 1.0
) -> dict[str, int]:
    """Write each retailer's exports into its own `raw/` directory; returns transaction rows per party."""
    rows = {}
    for name, customers, carried, transactions in retailer_data(
        list(party_homes), period_start=period_start, seed=seed, scale=scale
    ):
        home = party_homes[name]
        # Write beside, then rename: an interrupted run leaves no half-written exports.
        partial = home / "raw.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        EXPORT_STYLES.get(name, write_canonical_exports)(partial, customers, carried, transactions)
        shutil.rmtree(home / "raw", ignore_errors=True)
        partial.rename(home / "raw")
        rows[name] = transactions.height
    return rows
