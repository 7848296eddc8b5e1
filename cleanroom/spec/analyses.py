"""The analyses a spec may approve, one model per kind. Each secure analysis may name its own
protocol; otherwise the spec's `secure_computation.protocol` applies."""

from __future__ import annotations

from datetime import date
from enum import Enum
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import Field, field_validator

from cleanroom.spec.base import Strict
from cleanroom.spec.sources import check_time_zone

NAME_PATTERN = r"^[a-z][a-z0-9-]{1,30}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class Protocol(str, Enum):
    ABY3 = "aby3"  # three compute parties, honest majority, replicated sharing
    POND = "pond"  # two compute parties plus a dealer of multiplication triples
    SECURENN = "securenn"  # Pond plus the third party's comparison protocol


class AnalysisKind(str, Enum):
    CATEGORY_MONTH_SALES = "category_month_sales"  # secure totals per category and month
    CUSTOMER_OVERLAP = "customer_overlap"  # private set intersection, counts only
    CUSTOMER_SEGMENTS = "customer_segments"  # RFM bands, customers counted securely
    COPURCHASE_LIFT = "copurchase_lift"  # baskets with both categories, for the lift between them
    JOINT_RECOMMENDER = "joint_recommender"  # matrix factorization trained under MPC
    BASKET_STATISTICS = "basket_statistics"  # baskets by region and size: count, sum, mean, histogram


class JoinKey(str, Enum):
    EMAIL = "email"  # trimmed, lower-cased
    PHONE = "phone"  # E.164


class SecureAnalysis(Strict):
    """An analysis computed under MPC; `protocol` overrides the spec-wide choice for it alone."""

    protocol: Protocol | None = None


class CategoryMonthSales(SecureAnalysis):
    id: Name
    kind: Literal[AnalysisKind.CATEGORY_MONTH_SALES]
    objective: Name
    categories: list[str] = Field(min_length=1)
    period_start: date
    months: int = Field(ge=1, le=36)
    time_zone: str = "UTC"  # months are calendar months in this zone

    _zone = field_validator("time_zone")(check_time_zone)

    @field_validator("period_start")
    @classmethod
    def _first_of_month(cls, value: date) -> date:
        if value.day != 1:
            raise ValueError("must be the first day of a month (YYYY-MM-01)")
        return value

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("categories must be unique")
        return value

    @property
    def cells(self) -> int:
        return len(self.categories) * self.months

    @property
    def value_units(self) -> list[float]:  # sales in cents, compared in whole currency units
        return [100.0] * self.cells

    @property
    def month_labels(self) -> list[str]:
        labels = []
        year, month = self.period_start.year, self.period_start.month
        for _ in range(self.months):
            labels.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return labels


class CustomerOverlap(Strict):
    """How many customers the retailers share, pairwise and all together, by private set intersection;
    a customer matches on any of the join keys and is counted once."""

    id: Name
    kind: Literal[AnalysisKind.CUSTOMER_OVERLAP]
    objective: Name
    join_keys: list[JoinKey] = Field(min_length=1)
    shared_customer_sales: bool = Field(
        default=False,
        description="also sum, under MPC, the sales of customers who shop at more than one retailer, from "
        "secret-shared overlap indicators (the coordinator must not collude with a retailer)",
    )

    @field_validator("join_keys")
    @classmethod
    def _unique_keys(cls, value: list[JoinKey]) -> list[JoinKey]:
        if len(set(value)) != len(value):
            raise ValueError("join keys must be unique")
        return value


class CustomerSegments(SecureAnalysis):
    """Customers per recency x frequency x monetary band (RFM), summed across retailers under MPC with
    the same disclosure control as the market totals. Bands are upper bounds, ascending; a last open
    band catches the rest."""

    id: Name
    kind: Literal[AnalysisKind.CUSTOMER_SEGMENTS]
    objective: Name
    as_of: date = Field(description="recency is days from the last purchase to this date")
    recency_days: list[int] = Field(default=[30, 90], min_length=1)
    frequency_baskets: list[int] = Field(default=[2, 5], min_length=1)
    monetary_cents: list[int] = Field(default=[5_000, 20_000], min_length=1)

    _ascending = field_validator("recency_days", "frequency_baskets", "monetary_cents")(
        classmethod(lambda cls, value: _check_ascending(value))
    )

    def labels(self, bounds: list[int], unit: str) -> list[str]:
        return _band_labels(bounds, unit)

    @property
    def cells(self) -> int:
        return (len(self.recency_days) + 1) * (len(self.frequency_baskets) + 1) * (len(self.monetary_cents) + 1)

    @property
    def value_units(self) -> list[float]:  # customer counts
        return [1.0] * self.cells


class CopurchaseLift(SecureAnalysis):
    """How much more often two categories share a basket than chance across the market:
    lift(A, B) = baskets(A and B) * baskets / (baskets(A) * baskets(B)). The basket counts are summed
    under MPC with disclosure control; a lift is shown only when all four of its counts are."""

    id: Name
    kind: Literal[AnalysisKind.COPURCHASE_LIFT]
    objective: Name
    categories: list[str] = Field(min_length=2, max_length=16)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(a, b) for i, a in enumerate(self.categories) for b in self.categories[i + 1 :]]

    @property
    def cells(self) -> int:  # one per category, one per pair, one for all baskets
        return len(self.categories) + len(self.pairs) + 1

    @property
    def value_units(self) -> list[float]:  # basket counts
        return [1.0] * self.cells


class BasketStatistics(SecureAnalysis):
    """Baskets by postal region and basket-size band: how many, their total and mean value, and a
    histogram over basket-value bands, summed across retailers under MPC with disclosure control. The
    region is the first `region_digits` of the customer's generalized postcode; bands are upper bounds,
    ascending, with an open last band."""

    id: Name
    kind: Literal[AnalysisKind.BASKET_STATISTICS]
    objective: Name
    region_digits: int = Field(default=1, ge=1, le=2)
    basket_size_items: list[int] = Field(default=[1, 3, 6], min_length=1)
    basket_value_cents: list[int] = Field(default=[1_000, 5_000, 20_000], min_length=1)

    _ascending = field_validator("basket_size_items", "basket_value_cents")(
        classmethod(lambda cls, value: _check_ascending(value))
    )

    @property
    def regions(self) -> list[str]:  # every possible prefix, then customers whose postcode was withheld
        return [f"{i:0{self.region_digits}d}" for i in range(10**self.region_digits)] + ["unknown"]

    @property
    def size_labels(self) -> list[str]:
        return _band_labels(self.basket_size_items, "items")

    @property
    def value_bands(self) -> int:
        return len(self.basket_value_cents) + 1

    @property
    def measures(self) -> int:  # baskets, value, then one count per value band
        return 2 + self.value_bands

    @property
    def cells(self) -> int:
        return len(self.regions) * len(self.size_labels) * self.measures

    @property
    def value_units(self) -> list[float]:  # per group: basket count, value in cents, band counts
        return [1.0, 100.0, *[1.0] * self.value_bands] * (len(self.regions) * len(self.size_labels))


def _check_ascending(value: list[int]) -> list[int]:
    if any(b <= a for a, b in pairwise(value)) or value[0] < 0:
        raise ValueError("band bounds must be non-negative and strictly ascending")
    return value


def money_band_labels(bounds_cents: list[int], currency: str) -> list[str]:
    upper = [f"<= {currency} {b / 100:,.0f}" for b in bounds_cents]
    return [*upper, f"> {currency} {bounds_cents[-1] / 100:,.0f}"]


def _band_labels(bounds: list[int], unit: str) -> list[str]:
    return [f"<= {b} {unit}" for b in bounds] + [f"> {bounds[-1]} {unit}"]


class Catalogue(Strict):
    """The shared catalogue: a public CSV with a `product_id` column (the ids the parties' products
    carry), pinned by its SHA-256 so that every
    party models the same items in the same order."""

    location: str = Field(description="path of the CSV, relative to the spec file")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class JointRecommender(SecureAnalysis):
    """Implicit-feedback matrix factorization over the shared catalogue, trained under MPC on every
    party's purchases: bought items weigh `purchase_weight`, the rest 1 (integer weights keep the
    secret mask exact). Item factors are revealed; each party receives only its own users' factors,
    ranks its own top-N and evaluates Recall@N on purchases from `holdout_from` on."""

    id: Name
    kind: Literal[AnalysisKind.JOINT_RECOMMENDER]
    objective: Name
    catalogue: Catalogue
    holdout_from: date = Field(description="purchases before this date train, later ones evaluate")
    users_per_party: int = Field(
        default=400, ge=10, le=5000, description="public bound: each party's most active customers, padded"
    )
    factors: int = Field(default=10, ge=2, le=64)
    epochs: int = Field(default=100, ge=1, le=1000)
    # Full-batch steps grow with the number of customers: keep lr x customers x parties moderate.
    learning_rate: float = Field(default=0.002, gt=0, le=1)
    regularization: float = Field(default=0.1, ge=0)
    purchase_weight: int = Field(default=5, ge=1, le=100)
    top_n: int = Field(default=10, ge=1, le=100)
    share_evaluation: bool = Field(
        default=True, description="each party's Recall@N (joint, alone, popularity) goes into the report"
    )


Analysis = Annotated[
    CategoryMonthSales | CustomerOverlap | CustomerSegments | CopurchaseLift | JointRecommender | BasketStatistics,
    Field(discriminator="kind"),
]
