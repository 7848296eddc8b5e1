"""Inside one party: its purchases as an implicit-feedback matrix over the shared catalogue, the input
its player secret-shares for the joint recommender. Rows are the party's most active customers (at
most the spec's public bound, padded to it, so the row count reveals nothing); purchases from the
hold-out date on are kept apart to evaluate the recommendations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.secure.factorization import RATINGS_INPUT_PATH, write_party_ratings
from cleanroom.spec.analyses import JointRecommender

# In the run's recommender folder on the party's node.
USERS_FILE = Path("users.i64")  # row -> customer_code
BOUGHT_FILE = Path("bought.u8")  # [rows, items] 0/1, before the hold-out date
HELD_OUT_FILE = Path("held_out.i64")  # [n, 2] (row, item) bought later, new


@dataclass(frozen=True)
class Interactions:
    customer_codes: np.ndarray  # [rows]
    bought: np.ndarray  # [rows, items] bool
    held_out: np.ndarray  # [n, 2] int64, unique pairs

    def weights(self, purchase_weight: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """(weighted targets, weights) padded to `rows`: weight 1 for every item of a real customer,
        `purchase_weight` where bought, 0 on padding rows. Integers: the secret mask needs no rounding."""
        weight = np.zeros((rows, self.bought.shape[1]))
        weight[: len(self.customer_codes)] = 1 + (purchase_weight - 1) * self.bought
        target = np.zeros_like(weight)
        target[: len(self.customer_codes)] = self.bought
        return weight * target, weight


def build_interactions(
    transactions: pl.LazyFrame, analysis: JointRecommender, product_ids: list[str]
) -> Interactions:
    item = pl.LazyFrame({"product_id": product_ids, "item": np.arange(len(product_ids), dtype=np.int64)})
    cutoff = datetime.combine(analysis.holdout_from, datetime.min.time(), tzinfo=timezone.utc)
    lines = (
        transactions.select("customer_code", "product_id", "purchased_at")
        .join(item, on="product_id", how="inner")
        .select(pl.col("customer_code").cast(pl.Int64), "item", (pl.col("purchased_at") < cutoff).alias("train"))
        .unique()
        .collect(engine="streaming")
    )
    train = lines.filter(pl.col("train"))
    active = (
        train.group_by("customer_code")
        .agg(pl.col("item").n_unique().alias("items"))
        .sort(["items", "customer_code"], descending=[True, False])
        .head(analysis.users_per_party)
    )
    codes = active["customer_code"].to_numpy()
    row = pl.DataFrame({"customer_code": codes, "row": np.arange(len(codes), dtype=np.int64)})
    bought = np.zeros((len(codes), len(product_ids)), dtype=bool)
    seen = train.join(row, on="customer_code")
    bought[seen["row"].to_numpy(), seen["item"].to_numpy()] = True
    later = lines.filter(~pl.col("train")).join(row, on="customer_code").select("row", "item").unique()
    pairs = later.to_numpy().astype(np.int64).reshape(-1, 2)
    new = pairs[~bought[pairs[:, 0], pairs[:, 1]]] if len(pairs) else pairs
    return Interactions(codes, bought, new[np.lexsort((new[:, 1], new[:, 0]))])


def write_inputs(
    player_dir: Path, evaluation_dir: Path, interactions: Interactions, analysis: JointRecommender
) -> None:
    """The player's input (weighted targets and weights), plus what evaluation needs later."""
    target, weight = interactions.weights(analysis.purchase_weight, analysis.users_per_party)
    write_party_ratings(str(player_dir / RATINGS_INPUT_PATH), target, weight, analysis.users_per_party)
    evaluation_dir.mkdir(parents=True, exist_ok=True)
    (evaluation_dir / USERS_FILE).write_bytes(interactions.customer_codes.astype("<i8").tobytes())
    (evaluation_dir / BOUGHT_FILE).write_bytes(interactions.bought.astype(np.uint8).tobytes())
    (evaluation_dir / HELD_OUT_FILE).write_bytes(interactions.held_out.astype("<i8").tobytes())


def read_interactions(evaluation_dir: Path, items: int) -> Interactions:
    codes = np.frombuffer((evaluation_dir / USERS_FILE).read_bytes(), dtype="<i8")
    bought = np.frombuffer((evaluation_dir / BOUGHT_FILE).read_bytes(), dtype=np.uint8).reshape(len(codes), items)
    held_out = np.frombuffer((evaluation_dir / HELD_OUT_FILE).read_bytes(), dtype="<i8").reshape(-1, 2)
    return Interactions(codes, bought.astype(bool), held_out)
