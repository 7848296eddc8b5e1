"""The joint recommender on retail data: the training settings taken from the spec, and what the
coordinator learns from a run (per-party evaluation only if the spec shares it)."""

from __future__ import annotations

from pydantic import BaseModel

from cleanroom.recommend.factorization import MFConfig
from cleanroom.spec.analyses import JointRecommender, Protocol


def training_config(analysis: JointRecommender) -> MFConfig:
    """Implicit feedback: targets are 0/1 (bought or not), so nothing is centred."""
    return MFConfig(
        factors=analysis.factors,
        epochs=analysis.epochs,
        learning_rate=analysis.learning_rate,
        regularization=analysis.regularization,
        centre=0.0,
    )


class PartyRecall(BaseModel):
    """Recall@N on one party's held-out purchases, for the joint model and the two baselines."""

    joint: float
    alone: float  # the same model trained on this party's data only
    popularity: float  # this party's own best sellers
    lift_interval: tuple[float, float]  # 95% paired bootstrap over this party's customers

    @property
    def lift(self) -> float:
        return self.joint - self.alone


class RecommenderOutcome(BaseModel):
    protocol: Protocol
    items: int
    users_per_party: int
    factors: int
    epochs: int
    top_n: int
    seconds: float
    delivered: dict[str, bool]  # each party confirms it holds its users' factors and top-N lists
    recall: dict[str, PartyRecall]  # empty unless the spec shares the evaluation
