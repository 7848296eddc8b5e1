"""The joint recommender on retail data: the training settings taken from the spec, and what the
coordinator learns from a run (per-party evaluation only if the spec shares it)."""

from __future__ import annotations

import itertools
from dataclasses import replace

from pydantic import BaseModel

from cleanroom.recommend.factorization import MFConfig
from cleanroom.recommend.federated_als import AlsParams, Clipping
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


def scalable_settings(analysis: JointRecommender) -> tuple[AlsParams, Clipping | None]:
    """The scalable mode's ALS settings and each customer's clipping, from the spec. Clipping bounds
    what one customer moves for the noise's sake: without noise (no rho) nothing is clipped."""
    params = AlsParams(
        factors=analysis.factors,
        regularization=analysis.regularization,
        alpha=analysis.confidence,
        epochs=analysis.epochs,
        seed=analysis.seed,
    )
    if analysis.rho is None:
        return params, None
    return params, Clipping(analysis.max_items_per_customer, analysis.max_purchases_per_item)


def search_candidates(analysis: JointRecommender) -> list[AlsParams]:
    """The settings the search tries, in a fixed order every member derives from the spec (none
    without a search)."""
    search = analysis.search
    if search is None:
        return []
    own, _ = scalable_settings(analysis)
    grid = itertools.product(
        search.factors or [own.factors],
        search.regularization or [own.regularization],
        search.confidence or [own.alpha],
        search.epochs or [own.epochs],
    )
    return [replace(own, factors=k, regularization=r, alpha=a, epochs=e) for k, r, a, e in grid]


def budgeted_epochs(analysis: JointRecommender) -> int:
    """Every epoch a run may train: each candidate's, then the final training's at the most epochs any
    candidate has (the choice is not known in advance)."""
    candidates = search_candidates(analysis)
    return sum(c.epochs for c in candidates) + max([c.epochs for c in candidates] or [analysis.epochs])


def rho_per_epoch(analysis: JointRecommender) -> float | None:
    """The training's rho split equally over every epoch it may run."""
    return None if analysis.rho is None else analysis.rho / budgeted_epochs(analysis)


class TriedSettings(BaseModel):
    """One candidate of the search and its Recall@N on the validation period, averaged over the retailers."""

    factors: int
    regularization: float
    confidence: float
    epochs: int
    recall: float
    chosen: bool = False


class PartyRecall(BaseModel):
    """Recall@N on one party's held-out purchases, for the joint model and the two baselines (keys of
    the dicts: joint, alone, popularity; the scalable mode fills them)."""

    joint: float
    alone: float  # the same model trained on this party's data only
    popularity: float  # this party's own best sellers
    lift_interval: tuple[float, float]  # 95% paired bootstrap over this party's customers
    ndcg: dict[str, float] = {}
    recall_interval: dict[str, tuple[float, float]] = {}  # 95% bootstrap over customers
    ndcg_interval: dict[str, tuple[float, float]] = {}
    # The scalable mode: the blend of the joint model and the same method alone (`recommend.blend`).
    blend: float | None = None
    blend_lift_interval: tuple[float, float] | None = None
    delivered: str = "joint"  # whose lists its customers got: joint, own or blend (best on its validation)

    @property
    def lift(self) -> float:
        return self.joint - self.alone

    @property
    def blend_lift(self) -> float | None:
        return None if self.blend is None else self.blend - self.alone


class RecommenderOutcome(BaseModel):
    protocol: Protocol
    mode: str = "oblivious"
    items: int  # in the catalogue
    items_modelled: int | None = None  # scalable: those enough customers at enough retailers bought
    rho: float | None = None  # scalable: the training's privacy loss (zCDP)
    search: list[TriedSettings] = []  # scalable: the settings tried, the chosen one marked
    users_per_party: int
    factors: int
    epochs: int
    top_n: int
    seconds: float
    delivered: dict[str, bool]  # each party confirms it holds its users' factors and top-N lists
    recall: dict[str, PartyRecall]  # empty unless the spec shares the evaluation
