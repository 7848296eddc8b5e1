"""Inside one party, the scalable recommender (spec mode `scalable`): its purchases over the shared
catalogue as a sparse matrix, its support grid for the secure check of which items are modelled, its
half of every epoch (its customers' factors, kept here; its statistics vector, staged for its player),
and at the end its customers' top-N lists and its own evaluation against the same method trained on its
data alone and its own best sellers. Nothing here leaves the node except the vectors its player
secret-shares and, if the spec shares it, the evaluation."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
from scipy import sparse

from cleanroom.party.runs import PartyRun
from cleanroom.recommend.evaluation import Ranked, best_sellers, bootstrap, paired_lift, ranked, top_n
from cleanroom.recommend.federated_training import RetailerSide, item_support, released_items, train
from cleanroom.recommend.retail import PartyRecall, scalable_settings
from cleanroom.spec.analyses import JointRecommender

# In the run's recommender folder on the party's node.
TRAINING_FILE = Path("purchases.npz")  # customers x catalogue: purchase counts before the holdout
HELD_OUT_FILE = Path("held_out.npz")  # customers x catalogue: 1 where first bought after the holdout
CUSTOMERS_FILE = Path("customers.i64")  # row -> customer_code
USER_FACTORS_FILE = Path("user_factors.npy")  # in the run's outputs: the last epoch's, never shared
# In the run's player folder: [buyers, buyers] per catalogue item, the support check's grid.
SUPPORT_FILE = "item_support.i64"
RECOMMENDATIONS_FILE = Path("recommendations.parquet")  # in the run's reports folder
EVALUATION_FILE = Path("recommender.json")


@dataclass(frozen=True)
class Purchases:
    customer_codes: np.ndarray  # [customers]: everyone who bought a catalogue product before the holdout
    training: sparse.csr_matrix  # purchase counts before the holdout
    held_out: sparse.csr_matrix  # products first bought from the holdout on

    def sold(self) -> np.ndarray:
        """The products this retailer sold before the holdout: the ones it recommends from."""
        return np.diff(self.training.tocsc().indptr) > 0

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CUSTOMERS_FILE).write_bytes(self.customer_codes.astype("<i8").tobytes())
        sparse.save_npz(folder / TRAINING_FILE, self.training)
        sparse.save_npz(folder / HELD_OUT_FILE, self.held_out)

    @classmethod
    def load(cls, folder: Path) -> Purchases:
        codes = np.frombuffer((folder / CUSTOMERS_FILE).read_bytes(), dtype="<i8")
        training = sparse.load_npz(folder / TRAINING_FILE).tocsr()
        return cls(codes, training, sparse.load_npz(folder / HELD_OUT_FILE).tocsr())


def load_purchases(transactions: pl.LazyFrame, holdout_from: datetime, product_ids: list[str]) -> Purchases:
    """One row per customer who bought a catalogue product before the holdout; a line is one purchase."""
    item = pl.LazyFrame({"product_id": product_ids, "item": np.arange(len(product_ids), dtype=np.int64)})
    lines = (
        transactions.select("customer_code", "product_id", "purchased_at")
        .join(item, on="product_id", how="inner")
        .group_by(pl.col("customer_code").cast(pl.Int64), "item", pl.col("purchased_at") < holdout_from)
        .agg(pl.len().alias("purchases"))
        .rename({"purchased_at": "train"})
        .collect(engine="streaming")
    )
    train_lines = lines.filter(pl.col("train"))
    codes = np.unique(train_lines["customer_code"].to_numpy())
    shape = (len(codes), len(product_ids))
    training = _matrix(train_lines, codes, shape, "purchases")
    later = lines.filter(~pl.col("train") & pl.col("customer_code").is_in(codes))
    held_out = _matrix(later, codes, shape, None)
    held_out = held_out - held_out.multiply(training > 0)  # first purchases only
    held_out.eliminate_zeros()
    return Purchases(codes, training, held_out.tocsr())


def _matrix(
    lines: pl.DataFrame, codes: np.ndarray, shape: tuple[int, int], values: str | None
) -> sparse.csr_matrix:
    rows = np.searchsorted(codes, lines["customer_code"].to_numpy())
    data = lines[values].to_numpy().astype(np.float32) if values else np.ones(len(lines), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, lines["item"].to_numpy())), shape=shape, dtype=np.float32)


def holdout_start(analysis: JointRecommender) -> datetime:
    return datetime.combine(analysis.holdout_from, datetime.min.time(), tzinfo=timezone.utc)


def stage_support(purchases: Purchases, analysis: JointRecommender, player_dir: Path) -> None:
    """The grid the secure totals check: per item, this retailer's buyers (as value and as count)."""
    buyers = item_support(purchases.training, scalable_settings(analysis)[1])
    (player_dir / SUPPORT_FILE).write_bytes(np.stack([buyers, buyers]).astype("<i8").tobytes())


def retailer_side(run: PartyRun, analysis: JointRecommender, released: np.ndarray) -> RetailerSide:
    params, clipping = scalable_settings(analysis)
    return RetailerSide(Purchases.load(run.evaluation_dir).training, params, clipping, released)


def deliver(
    analysis: JointRecommender, run: PartyRun, prepared: Path, item_factors: np.ndarray, product_ids: list[str]
) -> PartyRecall:
    """Rank every customer's top N from the joint item factors and its own factors, evaluate against the
    same method on this party's data alone and its best sellers; everything is kept in the run's reports."""
    started = time.perf_counter()
    params, clipping = scalable_settings(analysis)
    purchases = Purchases.load(run.evaluation_dir)
    released = np.any(item_factors != 0, axis=1)
    side = RetailerSide(purchases.training, params, clipping, released)
    side.factors = np.load(run.outputs_dir / USER_FACTORS_FILE)
    users = side.final_factors(item_factors)
    everyone = np.arange(len(purchases.customer_codes))
    offered = purchases.sold() & released
    lists = top_n(
        users, item_factors, purchases.training, everyone, analysis.top_n, analysis.exclude_bought, offered
    )
    _write_top_n(prepared, run.reports_dir / RECOMMENDATIONS_FILE, purchases.customer_codes, lists, product_ids)
    recall = evaluate(purchases, lists, analysis)
    (run.reports_dir / EVALUATION_FILE).write_text(
        json.dumps(
            {
                "evaluation": recall.model_dump(mode="json") | {"lift": recall.lift},
                "top_n": analysis.top_n,
                "customers_ranked": len(everyone),
                "items_modelled": int(released.sum()),
                "seconds": round(time.perf_counter() - started, 2),
            },
            indent=2,
        )
    )
    return recall


def evaluate(purchases: Purchases, joint_lists: np.ndarray, analysis: JointRecommender) -> PartyRecall:
    """Recall@N and NDCG@N on the customers with purchases after the holdout, for the joint model, the
    same method trained on this party's data alone, and its own best sellers, with 95% bootstrap
    intervals; the lift over alone with its paired interval."""
    params, clipping = scalable_settings(analysis)
    n, exclude = analysis.top_n, analysis.exclude_bought
    evaluated = np.flatnonzero(np.diff(purchases.held_out.indptr) > 0)
    own_items = released_items([item_support(purchases.training, clipping)], 1, 1)
    alone = train([purchases.training], params, clipping, own_items)
    sold = purchases.sold()
    scored: dict[str, Ranked] = {
        "joint": ranked(joint_lists[evaluated], purchases.held_out, evaluated),
        "alone": ranked(
            top_n(alone.user_factors[0], alone.item_factors, purchases.training, evaluated, n, exclude, sold),
            purchases.held_out,
            evaluated,
        ),
        "popularity": ranked(
            best_sellers(purchases.training, evaluated, n, exclude), purchases.held_out, evaluated
        ),
    }
    intervals = {name: bootstrap(r) for name, r in scored.items()}
    _, low, high = paired_lift(scored["joint"], scored["alone"])
    return PartyRecall(
        joint=scored["joint"].recall,
        alone=scored["alone"].recall,
        popularity=scored["popularity"].recall,
        lift_interval=(low, high),
        ndcg={name: float(r.ndcg.mean()) if r.ndcg.size else 0.0 for name, r in scored.items()},
        recall_interval={name: i["recall"] for name, i in intervals.items()},
        ndcg_interval={name: i["ndcg"] for name, i in intervals.items()},
    )


def _write_top_n(
    prepared: Path, target: Path, codes: np.ndarray, lists: np.ndarray, product_ids: list[str]
) -> None:
    """Per customer pseudonym: rank and product id of its top-N products (fewer where none are left)."""
    n = lists.shape[1]
    rows = np.repeat(np.arange(len(codes)), n)
    flat = lists.reshape(-1)
    kept = flat >= 0
    table = pl.DataFrame(
        {
            "customer_code": codes[rows[kept]].astype(np.uint32),
            "rank": np.tile(np.arange(1, n + 1), len(codes))[kept].astype(np.int16),
            "product_id": np.asarray(product_ids)[flat[kept]],
        }
    )
    customers = pl.read_parquet(prepared / "customers.parquet", columns=["customer_code", "customer_pseudonym"])
    joined = table.join(customers.with_columns(pl.col("customer_code").cast(pl.UInt32)), on="customer_code")
    joined.select("customer_pseudonym", "rank", "product_id").sort(["customer_pseudonym", "rank"]).write_parquet(
        target
    )
