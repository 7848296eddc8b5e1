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
from datetime import date, datetime, timezone
from functools import partial
from pathlib import Path
from typing import overload

import numpy as np
import polars as pl
from scipy import sparse

from cleanroom.party.runs import PartyRun
from cleanroom.recommend.blend import blended
from cleanroom.recommend.evaluation import Ranked, best_sellers, bootstrap, paired_lift, ranked, top_n
from cleanroom.recommend.federated_training import RetailerSide, alone_model, item_support
from cleanroom.recommend.joint_epochs import SUPPORT_FILE, USER_FACTORS_FILE, final_settings, lists_source
from cleanroom.recommend.retail import PartyRecall, scalable_settings
from cleanroom.spec.analyses import JointRecommender
from cleanroom.spec.catalogue import load_catalogue
from cleanroom.spec.models import CollaborationSpec

# In the run's recommender folder on the party's node.
# Purchases.save: one .npz per matrix (training, held_out; fit and validation with a search).
CUSTOMERS_FILE = Path("customers.i64")  # row -> customer_code
RECOMMENDATIONS_FILE = Path("recommendations.parquet")  # in the run's reports folder
EVALUATION_FILE = Path("recommender.json")


@dataclass(frozen=True)
class Purchases:
    customer_codes: np.ndarray  # [customers]: everyone who bought a catalogue product before the holdout
    training: sparse.csr_matrix  # purchase counts before the holdout
    held_out: sparse.csr_matrix  # products first bought from the holdout on
    # With a search: counts before its validation date, and products first bought from then to the holdout.
    fit: sparse.csr_matrix | None = None
    validation: sparse.csr_matrix | None = None

    def sold(self) -> np.ndarray:
        """The products this retailer sold before the holdout: the ones it recommends from."""
        return item_support(self.training, None) > 0

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CUSTOMERS_FILE).write_bytes(self.customer_codes.astype("<i8").tobytes())
        for name, matrix in self._matrices().items():
            if matrix is not None:
                sparse.save_npz(folder / f"{name}.npz", matrix)

    @classmethod
    def load(cls, folder: Path) -> Purchases:
        codes = np.frombuffer((folder / CUSTOMERS_FILE).read_bytes(), dtype="<i8")
        matrices = {
            name: sparse.load_npz(folder / f"{name}.npz").tocsr() if (folder / f"{name}.npz").is_file() else None
            for name in ("training", "held_out", "fit", "validation")
        }
        return cls(codes, **matrices)

    def _matrices(self) -> dict[str, sparse.csr_matrix | None]:
        return {
            "training": self.training,
            "held_out": self.held_out,
            "fit": self.fit,
            "validation": self.validation,
        }


def load_purchases(
    transactions: pl.LazyFrame,
    holdout_from: datetime,
    product_ids: list[str],
    validation_from: datetime | None = None,
) -> Purchases:
    """One row per customer who bought a catalogue product before the holdout; a line is one purchase.
    Periods: 0 before `validation_from` (when given), 1 from then to the holdout, 2 from the holdout on."""
    item = pl.LazyFrame({"product_id": product_ids, "item": np.arange(len(product_ids), dtype=np.int64)})
    period = (pl.col("purchased_at") >= holdout_from).cast(pl.Int8) * 2
    if validation_from is not None:
        period = period + ((pl.col("purchased_at") >= validation_from) & (pl.col("purchased_at") < holdout_from))
    lines = (
        transactions.select("customer_code", "product_id", "purchased_at")
        .join(item, on="product_id", how="inner")
        .group_by(pl.col("customer_code").cast(pl.Int64), "item", period.cast(pl.Int8).alias("period"))
        .agg(pl.len().alias("purchases"))
        .collect(engine="streaming")
    )
    before = lines.filter(pl.col("period") < 2)
    codes = np.unique(before["customer_code"].to_numpy())
    shape = (len(codes), len(product_ids))
    later = lines.filter(pl.col("customer_code").is_in(codes))
    training = _matrix(before, codes, shape, "purchases")
    held_out = _first(_matrix(later.filter(pl.col("period") == 2), codes, shape, None), training)
    if validation_from is None:
        return Purchases(codes, training, held_out)
    fit = _matrix(before.filter(pl.col("period") == 0), codes, shape, "purchases")
    validation = _first(_matrix(later.filter(pl.col("period") == 1), codes, shape, None), fit)
    return Purchases(codes, training, held_out, fit, validation)


def _first(bought: sparse.csr_matrix, earlier: sparse.csr_matrix) -> sparse.csr_matrix:
    """Only the products not bought earlier: first purchases."""
    first = bought - bought.multiply(earlier > 0)
    first.eliminate_zeros()
    return first.tocsr()


def _matrix(
    lines: pl.DataFrame, codes: np.ndarray, shape: tuple[int, int], values: str | None
) -> sparse.csr_matrix:
    rows = np.searchsorted(codes, lines["customer_code"].to_numpy())
    data = lines[values].to_numpy().astype(np.float32) if values else np.ones(len(lines), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, lines["item"].to_numpy())), shape=shape, dtype=np.float32)


@overload
def day_start(day: date) -> datetime: ...
@overload
def day_start(day: None) -> None: ...
def day_start(day: date | None) -> datetime | None:
    """The day's first instant in UTC (purchase times are UTC)."""
    return None if day is None else datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)


def prepare_scalable_input(spec: CollaborationSpec, spec_path: Path, prepared: Path, run: PartyRun) -> None:
    """This run's purchase matrices in its recommender folder, and the support grid for its player."""
    analysis = spec.joint_recommender
    assert analysis is not None
    validation_from = analysis.search.validation_from if analysis.search else None
    purchases = load_purchases(
        pl.scan_parquet(prepared / "transactions.parquet"),
        day_start(analysis.holdout_from),
        load_catalogue(spec_path, spec),
        day_start(validation_from),
    )
    purchases.save(run.evaluation_dir)
    stage_support(purchases, analysis, run.player_dir)


def stage_support(purchases: Purchases, analysis: JointRecommender, player_dir: Path) -> None:
    """The grid the secure totals check: per item, this retailer's buyers (as value and as count)."""
    buyers = item_support(purchases.training, scalable_settings(analysis)[1])
    (player_dir / SUPPORT_FILE).write_bytes(np.stack([buyers, buyers]).astype("<i8").tobytes())


def deliver(
    analysis: JointRecommender, run: PartyRun, prepared: Path, item_factors: np.ndarray, product_ids: list[str]
) -> PartyRecall:
    """Rank every customer's top N from the joint item factors and its own factors (or from its own
    model, or the blend of both, where that did better on its validation purchases), evaluate the joint
    model and the blend against the same method on this party's data alone and its best sellers;
    everything is kept in the run's reports."""
    started = time.perf_counter()
    params, clipping = final_settings(run.outputs_dir), scalable_settings(analysis)[1]
    purchases = Purchases.load(run.evaluation_dir)
    released = np.any(item_factors != 0, axis=1)
    side = RetailerSide(purchases.training, params, clipping, released)
    side.factors = np.load(run.outputs_dir / USER_FACTORS_FILE)
    alone = alone_model(purchases.training, params, clipping)
    everyone = np.arange(len(purchases.customer_codes))
    rank = partial(
        top_n,
        bought=purchases.training,
        customers=everyone,
        n=analysis.top_n,
        exclude_bought=analysis.exclude_bought,
    )
    joint = (side.final_factors(item_factors), item_factors)
    own = (alone.user_factors[0], alone.item_factors)
    lists = {
        "joint": rank(*joint, offered=purchases.sold() & released),
        "own": rank(*own, offered=purchases.sold()),
        "blend": rank(*blended(joint, own, purchases.sold()), offered=purchases.sold()),
    }
    sent = lists_source(run.outputs_dir)
    _write_top_n(
        prepared, run.reports_dir / RECOMMENDATIONS_FILE, purchases.customer_codes, lists[sent], product_ids
    )
    recall = evaluate(purchases, lists, analysis).model_copy(update={"delivered": sent})
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


def evaluate(purchases: Purchases, lists: dict[str, np.ndarray], analysis: JointRecommender) -> PartyRecall:
    """Recall@N and NDCG@N on the customers with purchases after the holdout, for the joint model, the
    same method trained on this party's data alone (`own`), their blend, and its own best sellers, with
    95% bootstrap intervals; the lifts over alone with their paired intervals. Each list set ranks every
    customer."""
    evaluated = np.flatnonzero(np.diff(purchases.held_out.indptr) > 0)
    best = best_sellers(purchases.training, evaluated, analysis.top_n, analysis.exclude_bought)
    scored: dict[str, Ranked] = {
        "joint": ranked(lists["joint"][evaluated], purchases.held_out, evaluated),
        "alone": ranked(lists["own"][evaluated], purchases.held_out, evaluated),
        "popularity": ranked(best, purchases.held_out, evaluated),
        "blend": ranked(lists["blend"][evaluated], purchases.held_out, evaluated),
    }
    intervals = {name: bootstrap(r) for name, r in scored.items()}
    _, low, high = paired_lift(scored["joint"], scored["alone"])
    _, blend_low, blend_high = paired_lift(scored["blend"], scored["alone"])
    return PartyRecall(
        joint=scored["joint"].recall,
        alone=scored["alone"].recall,
        popularity=scored["popularity"].recall,
        lift_interval=(low, high),
        blend=scored["blend"].recall,
        blend_lift_interval=(blend_low, blend_high),
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
