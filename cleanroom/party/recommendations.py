"""Inside one party, after secure training: its own users' factors (from its own player) times the
revealed item factors give each customer's top-N unseen products. The party also trains the same model
on its data alone and ranks its own best sellers, and measures all three on its held-out purchases:
the collaboration lift is joint minus alone."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.errors import SecureComputationError
from cleanroom.party.interactions import Interactions, build_interactions, read_interactions, write_inputs
from cleanroom.party.runs import PartyRun
from cleanroom.recommend import factorization as mf
from cleanroom.recommend.retail import PartyRecall, training_config
from cleanroom.secure.factorization import USER_FACTORS_OUTPUT_PATH, read_user_factors
from cleanroom.spec.analyses import JointRecommender
from cleanroom.spec.catalogue import load_catalogue
from cleanroom.spec.models import CollaborationSpec

RECOMMENDATIONS_FILE = Path("recommendations.parquet")  # in the run's reports folder
EVALUATION_FILE = Path("recommender.json")


def prepare_recommender_input(spec: CollaborationSpec, spec_path: Path, prepared: Path, run: PartyRun) -> int:
    """Write the player's input and the evaluation files for this run; returns the number of customers
    modelled (a figure that stays in the party)."""
    analysis = spec.joint_recommender
    assert analysis is not None
    product_ids = load_catalogue(spec_path, spec)
    interactions = build_interactions(pl.scan_parquet(prepared / "transactions.parquet"), analysis, product_ids)
    write_inputs(run.player_dir, run.evaluation_dir, interactions, analysis)
    return len(interactions.customer_codes)


def deliver_recommendations(
    spec: CollaborationSpec, spec_path: Path, prepared: Path, run: PartyRun, item_factors: np.ndarray
) -> PartyRecall:
    """Rank, evaluate and keep everything in the run's own reports folder."""
    analysis = spec.joint_recommender
    assert analysis is not None
    started = time.perf_counter()
    product_ids = load_catalogue(spec_path, spec)
    if item_factors.shape != (len(product_ids), analysis.factors):
        raise SecureComputationError(
            f"revealed item factors have shape {item_factors.shape}, "
            f"expected {(len(product_ids), analysis.factors)}",
            where="joint recommender",
            fix="rerun: the coordinator and this party disagree on the catalogue or the spec",
        )
    data = read_interactions(run.evaluation_dir, len(product_ids))
    users = read_user_factors(str(run.outputs_dir / USER_FACTORS_OUTPUT_PATH))[: len(data.customer_codes)]
    joint = users @ item_factors.T
    n = analysis.top_n
    joint_parts = mf.recall_parts(joint, data.bought, data.held_out, n)
    alone_parts = mf.recall_parts(_alone_scores(data, analysis), data.bought, data.held_out, n)
    recall = PartyRecall(
        joint=mf.recall_of(joint_parts),
        alone=mf.recall_of(alone_parts),
        popularity=mf.recall(_popularity_scores(data), data.bought, data.held_out, n),
        lift_interval=mf.lift_interval(joint_parts, alone_parts),
    )
    _write_top_n(prepared, run.reports_dir / RECOMMENDATIONS_FILE, data, joint, product_ids, n)
    (run.reports_dir / EVALUATION_FILE).write_text(
        json.dumps(
            {
                "recall_at_n": recall.model_dump() | {"lift": recall.lift},
                "top_n": n,
                "customers_modelled": len(data.customer_codes),
                "held_out_purchases": len(data.held_out),
                "seconds": round(time.perf_counter() - started, 2),
            },
            indent=2,
        )
    )
    return recall


def _alone_scores(data: Interactions, analysis: JointRecommender) -> np.ndarray:
    _, weight = data.weights(analysis.purchase_weight, len(data.customer_codes))
    # mf.train weighs its targets itself: E = W * (U V^T) - W * bought, exactly what the players ran.
    u, v = mf.train(data.bought.astype(np.float64), weight, training_config(analysis))
    return u @ v.T


def _popularity_scores(data: Interactions) -> np.ndarray:
    return np.broadcast_to(data.bought.sum(axis=0, dtype=np.float64), data.bought.shape)


def _write_top_n(
    prepared: Path, target: Path, data: Interactions, scores: np.ndarray, product_ids: list[str], n: int
) -> None:
    """Per customer pseudonym: rank, GTIN and score of the top-N products it has not bought yet."""
    top = mf.top_unseen(scores, data.bought, n)
    rows = np.repeat(np.arange(len(data.customer_codes)), n)
    customers = pl.read_parquet(prepared / "customers.parquet", columns=["customer_code", "customer_pseudonym"])
    table = pl.DataFrame(
        {
            "customer_code": data.customer_codes[rows].astype(np.uint32),
            "rank": np.tile(np.arange(1, n + 1), len(data.customer_codes)).astype(np.int16),
            "product_id": np.asarray(product_ids)[top.reshape(-1)],
            "score": np.take_along_axis(scores, top, axis=1).reshape(-1),
        }
    )
    joined = table.join(customers.with_columns(pl.col("customer_code").cast(pl.UInt32)), on="customer_code")
    joined.select("customer_pseudonym", "rank", "product_id", "score").write_parquet(target)
