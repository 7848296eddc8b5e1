"""What every analysis model shares: its kind, its name rule, and the protocols a secure one may use.
Kept apart from the models so that each analysis module (`cleanroom.analyses`) can import it."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

from pydantic import Field

from cleanroom.spec.base import Strict

NAME_PATTERN = r"^[a-z][a-z0-9-]{1,30}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class Protocol(str, Enum):
    ABY3 = "aby3"  # three compute parties, honest majority, replicated sharing
    POND = "pond"  # two compute parties plus a dealer of multiplication triples
    SECURENN = "securenn"  # Pond plus the third party's comparison protocol


class AnalysisKind(str, Enum):
    CATEGORY_MONTH_SALES = "category_month_sales"  # secure totals per category and period (the trend)
    CUSTOMER_OVERLAP = "customer_overlap"  # private set intersection, counts only
    CUSTOMER_SEGMENTS = "customer_segments"  # RFM bands, customers counted securely
    COPURCHASE_LIFT = "copurchase_lift"  # baskets with both categories, for the lift between them
    JOINT_RECOMMENDER = "joint_recommender"  # matrix factorization trained under MPC
    BASKET_STATISTICS = "basket_statistics"  # baskets by region and size: count, sum, mean, histogram


class SecureAnalysis(Strict):
    """An analysis computed under MPC; `protocol` overrides the spec-wide choice for it alone."""

    protocol: Protocol | None = None
