"""The analyses a spec may approve, one model per kind. Each secure analysis may name its own
protocol; otherwise the spec's `secure_computation.protocol` applies."""

from __future__ import annotations

import math
from datetime import date
from enum import Enum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

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


class RecommenderMode(str, Enum):
    OBLIVIOUS = "oblivious"  # dense matrix factorization under MPC: small catalogues, nothing revealed but factors
    SCALABLE = "scalable"  # federated ALS: customers' factors stay home, per-item sums are summed and noised


# Only one mode uses these; naming one under the other mode is a mistake the spec check reports.
OBLIVIOUS_ONLY = ("users_per_party", "learning_rate", "purchase_weight")
SCALABLE_ONLY = (
    "confidence",
    "min_item_customers",
    "min_item_retailers",
    "max_items_per_customer",
    "max_purchases_per_item",
    "rho",
    "seed",
    "search",
)
SCALABLE_EPOCHS = 10  # ALS converges in a few epochs; gradient descent needs a hundred


MAX_CANDIDATES = 12  # each candidate is a whole training: the search is bounded


class RecommenderSearch(Strict):
    """Model refinement (phase 5.2) in the scalable mode: every combination of the values listed (a
    setting not listed keeps the analysis's own) is trained on purchases before `validation_from` and
    scored by Recall@N on the first purchases from then until the holdout date, summed over all
    retailers under MPC (only the consortium's total is revealed); the best is trained on everything
    before the holdout."""

    validation_from: date
    factors: list[int] = Field(default=[], max_length=MAX_CANDIDATES)
    regularization: list[float] = Field(default=[], max_length=MAX_CANDIDATES)
    confidence: list[float] = Field(default=[], max_length=MAX_CANDIDATES)
    epochs: list[int] = Field(default=[], max_length=MAX_CANDIDATES)

    @model_validator(mode="after")
    def _bounded(self) -> RecommenderSearch:
        problems = []
        for name, low, high in (
            ("factors", 2, 64),
            ("regularization", 0, 1e6),
            ("confidence", 1e-9, 1000),
            ("epochs", 1, 100),
        ):
            values = getattr(self, name)
            if any(not low <= v <= high for v in values):
                problems.append(f"{name}: every value between {low:g} and {high:g}")
            if len(set(values)) != len(values):
                problems.append(f"{name}: each value once")
        combinations = math.prod(
            max(1, len(getattr(self, n))) for n in ("factors", "regularization", "confidence", "epochs")
        )
        if combinations > MAX_CANDIDATES:
            problems.append(f"{combinations} combinations to train; at most {MAX_CANDIDATES}: list fewer values")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class JointRecommender(SecureAnalysis):
    """A joint recommender over the shared catalogue; each party ranks its own top-N and evaluates on
    purchases from `holdout_from` on.

    mode oblivious: implicit-feedback matrix factorization trained under MPC on every party's purchases
    (bought items weigh `purchase_weight`, the rest 1); item factors are revealed, each party receives
    only its own users' factors. Its cost is customers x products x factors per epoch: small catalogues.

    mode scalable: implicit ALS where each retailer solves its own customers' factors (they never leave
    its node) and only per-item sums over customers are combined: secret-shared, summed and noised
    (rho for the whole training, split over the epochs) under MPC, then revealed; items bought by fewer
    than `min_item_customers` customers or at fewer than `min_item_retailers` retailers are not modelled."""

    id: Name
    kind: Literal[AnalysisKind.JOINT_RECOMMENDER]
    objective: Name
    catalogue: Catalogue
    mode: RecommenderMode = RecommenderMode.OBLIVIOUS
    holdout_from: date = Field(description="purchases before this date train, later ones evaluate")
    factors: int = Field(default=10, ge=2, le=64)
    epochs: int = Field(default=100, ge=1, le=1000)
    regularization: float = Field(default=0.1, ge=0)
    top_n: int = Field(default=10, ge=1, le=100)
    exclude_bought: bool = Field(default=True, description="top-N lists leave out what the customer bought")
    share_evaluation: bool = Field(
        default=True, description="each party's Recall@N (joint, alone, popularity) goes into the report"
    )
    # mode oblivious
    users_per_party: int = Field(
        default=400, ge=10, le=5000, description="public bound: each party's most active customers, padded"
    )
    # Full-batch steps grow with the number of customers: keep lr x customers x parties moderate.
    learning_rate: float = Field(default=0.002, gt=0, le=1)
    purchase_weight: int = Field(default=5, ge=1, le=100)
    # mode scalable
    confidence: float = Field(default=10.0, gt=0, le=1000, description="weight of one purchase (ALS alpha)")
    min_item_customers: int | None = Field(
        default=None, ge=1, description="customers who bought an item, at least; default privacy.min_group_size"
    )
    min_item_retailers: int = Field(default=2, ge=1)
    max_items_per_customer: int = Field(default=50, ge=1, le=10_000, description="with rho: a customer's items")
    max_purchases_per_item: float = Field(default=5.0, gt=0, le=1000, description="with rho: purchases counted")
    rho: float | None = Field(default=None, gt=0, le=10, description="zCDP of the whole training; None: no noise")
    seed: int = Field(default=0, ge=0, description="the public initial item factors")
    search: RecommenderSearch | None = None

    @model_validator(mode="before")
    @classmethod
    def _epochs_by_mode(cls, raw: object) -> object:
        if isinstance(raw, dict) and raw.get("mode") == RecommenderMode.SCALABLE.value and "epochs" not in raw:
            return raw | {"epochs": SCALABLE_EPOCHS}
        return raw

    @model_validator(mode="after")
    def _fields_of_its_mode(self) -> JointRecommender:
        foreign = SCALABLE_ONLY if self.mode is RecommenderMode.OBLIVIOUS else OBLIVIOUS_ONLY
        named = [name for name in foreign if name in self.model_fields_set]
        if named:
            other = "scalable" if self.mode is RecommenderMode.OBLIVIOUS else "oblivious"
            raise ValueError(f"{', '.join(named)}: only for mode {other}; remove, or set mode: {other}")
        clips = [n for n in ("max_items_per_customer", "max_purchases_per_item") if n in self.model_fields_set]
        if clips and self.rho is None:
            raise ValueError(f"{', '.join(clips)}: clipping is for the noise; set rho, or remove it")
        if self.search is not None and self.search.validation_from >= self.holdout_from:
            raise ValueError("search.validation_from: before holdout_from (validation comes before the holdout)")
        return self


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
    "RecommenderMode",
    "RecommenderSearch",
    "SecureAnalysis",
]
