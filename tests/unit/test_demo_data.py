"""The demo generator is deterministic and looks like retail."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from cleanroom.demo_data import generate_consortium, gtin13


def _generate(root: Path) -> dict[str, Path]:
    homes = {name: root / name for name in ("northwind", "harbor", "alpine")}
    generate_consortium(homes, period_start=date(2025, 1, 1), seed=3, scale=0.2)
    return homes


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    first, second = _generate(tmp_path / "a"), _generate(tmp_path / "b")
    for name in first:
        files = sorted(p.name for p in (first[name] / "raw").iterdir())
        assert len(files) == 3
        for file in files:
            assert (first[name] / "raw" / file).read_bytes() == (second[name] / "raw" / file).read_bytes()


@pytest.fixture(scope="module")
def homes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _generate(tmp_path_factory.mktemp("demo"))


def test_gtin_check_digits(homes: dict[str, Path]) -> None:
    assert gtin13(400638133393) == "4006381333931"  # a published GS1 example
    gtins = pl.read_csv(homes["harbor"] / "raw" / "products.csv", schema_overrides={"gtin": pl.String})["gtin"]
    for gtin in gtins:
        digits = [int(d) for d in gtin]
        assert sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0


def test_customers_shared_between_retailers(homes: dict[str, Path]) -> None:
    def emails_of(home: Path) -> pl.Series:
        if (home / "raw" / "customers.csv").exists():
            return pl.read_csv(home / "raw" / "customers.csv")["email"]
        return pl.read_csv(home / "raw" / "kunden.csv")["mail"]  # Alpine's own export layout

    emails = {name: set(emails_of(home).str.to_lowercase().str.strip_chars()) for name, home in homes.items()}
    pair = len(emails["northwind"] & emails["harbor"]) / len(emails["northwind"])
    triple = emails["northwind"] & emails["harbor"] & emails["alpine"]
    assert 0.1 < pair < 0.5
    assert len(triple) > 0


def test_seasonality_and_baskets(homes: dict[str, Path]) -> None:
    transactions = pl.read_csv(homes["northwind"] / "raw" / "transactions.csv")
    monthly = (
        transactions.with_columns(pl.col("purchased_at").str.slice(5, 2).alias("month"))
        .group_by("month")
        .agg((pl.col("quantity") * pl.col("unit_price_cents")).sum().alias("sales"))
    )
    sales = dict(zip(monthly["month"], monthly["sales"]))
    assert sales["12"] > 1.4 * sales["02"]
    lines_per_basket = transactions.group_by("basket_id").len()["len"].mean()
    assert 2.0 < lines_per_basket < 5.0
    assert transactions["purchased_at"].str.contains(r"\+01:00$").all()
