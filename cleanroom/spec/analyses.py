"""The analyses a spec may approve, one model per kind. Each secure analysis may name its own
protocol; otherwise the spec's `secure_computation.protocol` applies."""

from __future__ import annotations

from datetime import date, timedelta
from enum import Enum
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

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
    LOYALTY_ID = "loyalty_id"  # an id the retailers share (a coalition card): upper case, no spaces or dashes


class SecureAnalysis(Strict):
    """An analysis computed under MPC; `protocol` overrides the spec-wide choice for it alone."""

    protocol: Protocol | None = None


class Grain(str, Enum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday to Sunday
    MONTH = "month"
    QUARTER = "quarter"


MAX_PERIODS = {Grain.DAY: 1100, Grain.WEEK: 160, Grain.MONTH: 36, Grain.QUARTER: 12}


class CategoryMonthSales(SecureAnalysis):
    """Market sales per category and period (the trend). The kind keeps its historical name; the
    period is a day, an ISO week, a month or a quarter (`grain`) in the analysis's time zone."""

    id: Name
    kind: Literal[AnalysisKind.CATEGORY_MONTH_SALES]
    objective: Name
    categories: list[str] = Field(min_length=1)
    period_start: date = Field(description="the first period's first day (a Monday for weeks)")
    grain: Grain = Grain.MONTH
    periods: int = Field(ge=1, description="how many periods of the grain, from period_start")
    time_zone: str = "UTC"  # periods are calendar days, weeks, months or quarters in this zone
    units: bool = Field(default=True, description="also units sold per cell (every party then needs quantity)")

    _zone = field_validator("time_zone")(check_time_zone)

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("categories must be unique")
        return value

    @model_validator(mode="after")
    def _aligned(self) -> CategoryMonthSales:
        start, grain = self.period_start, self.grain
        if grain is Grain.WEEK and start.isoweekday() != 1:
            raise ValueError("period_start: weeks start on a Monday (ISO weeks)")
        if grain is Grain.MONTH and start.day != 1:
            raise ValueError("period_start: must be the first day of a month (YYYY-MM-01)")
        if grain is Grain.QUARTER and (start.day != 1 or start.month not in (1, 4, 7, 10)):
            raise ValueError(
                "period_start: must be the first day of a quarter (YYYY-01-01, -04-01, -07-01, -10-01)"
            )
        if self.periods > MAX_PERIODS[grain]:
            raise ValueError(
                f"periods: at most {MAX_PERIODS[grain]} {grain.value}s (one secure cell per category each)"
            )
        return self

    @property
    def grid_cells(self) -> int:
        """Cells of one measure: categories x periods, category-major."""
        return len(self.categories) * self.periods

    @property
    def measures(self) -> list[str]:
        return ["sales_cents", "units"] if self.units else ["sales_cents"]

    @property
    def cells(self) -> int:  # every measure's grid, sales first
        return self.grid_cells * len(self.measures)

    @property
    def value_units(self) -> list[float]:  # sales in cents compared in whole currency units; units as counted
        return [100.0] * self.grid_cells + [1.0] * (self.cells - self.grid_cells)

    @property
    def period_starts(self) -> list[date]:
        starts, current = [], self.period_start
        for _ in range(self.periods):
            starts.append(current)
            current = next_period(current, self.grain)
        return starts

    @property
    def period_end(self) -> date:
        """The day after the last period."""
        return next_period(self.period_starts[-1], self.grain)

    @property
    def period_labels(self) -> list[str]:
        return [period_label(start, self.grain) for start in self.period_starts]


def next_period(start: date, grain: Grain) -> date:
    if grain is Grain.DAY:
        return start + timedelta(days=1)
    if grain is Grain.WEEK:
        return start + timedelta(days=7)
    months = 1 if grain is Grain.MONTH else 3
    month = start.month - 1 + months
    return date(start.year + month // 12, month % 12 + 1, 1)


def period_label(start: date, grain: Grain) -> str:
    """2025-03-14, 2025-W11 (ISO), 2025-03, 2025-Q1."""
    if grain is Grain.DAY:
        return start.isoformat()
    if grain is Grain.WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if grain is Grain.MONTH:
        return f"{start.year:04d}-{start.month:02d}"
    return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"


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
