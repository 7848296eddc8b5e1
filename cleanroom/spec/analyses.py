"""The analyses a spec may approve, one model per kind. Each secure analysis may name its own
protocol; otherwise the spec's `secure_computation.protocol` applies."""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Annotated, Literal

from pydantic import Field, field_validator

from cleanroom.analyses.basket_statistics import BasketStatistics
from cleanroom.analyses.category_month_sales import CategoryMonthSales
from cleanroom.analyses.copurchase_lift import CopurchaseLift
from cleanroom.analyses.customer_segments import CustomerSegments
from cleanroom.spec.base import Strict
from cleanroom.spec.kinds import NAME_PATTERN, AnalysisKind, Name, Protocol, SecureAnalysis


class JoinKey(str, Enum):
    EMAIL = "email"  # trimmed, lower-cased
    PHONE = "phone"  # E.164
    LOYALTY_ID = "loyalty_id"  # an id the retailers share (a coalition card): upper case, no spaces or dashes


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


__all__ = [
    "NAME_PATTERN",
    "Analysis",
    "AnalysisKind",
    "BasketStatistics",
    "Catalogue",
    "CategoryMonthSales",
    "CopurchaseLift",
    "CustomerOverlap",
    "CustomerSegments",
    "JoinKey",
    "JointRecommender",
    "Name",
    "Protocol",
    "SecureAnalysis",
]
