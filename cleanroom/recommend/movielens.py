"""MovieLens-100K as shipped in the recbole 1.2.1 wheel (installed for its data only, never imported),
split across retailers by user, with each user's latest interactions held out for evaluation."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from cleanroom.errors import ConfigurationError

INTERACTIONS = Path("dataset_example") / "ml-100k" / "ml-100k.inter"


def movielens_100k_path() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or spec.origin is None:
        raise ConfigurationError(
            "MovieLens-100K is not installed",
            where="recbole 1.2.1 (data only)",
            fix="run `make setup` (installs requirements-data.txt with --no-deps)",
        )
    return Path(spec.origin).parent / INTERACTIONS


def load_interactions(path: Path | None = None) -> pl.DataFrame:
    """(user, item, rating, timestamp) with users and items as dense 0-based indices."""
    raw = pl.read_csv(path or movielens_100k_path(), separator="\t")
    raw.columns = ["user_id", "item_id", "rating", "timestamp"]
    users = raw["user_id"].unique().sort()
    items = raw["item_id"].unique().sort()
    return raw.select(
        pl.col("user_id").replace_strict(users, pl.int_range(len(users), eager=True)).alias("user"),
        pl.col("item_id").replace_strict(items, pl.int_range(len(items), eager=True)).alias("item"),
        pl.col("rating").cast(pl.Float64),
        pl.col("timestamp").cast(pl.Int64),
    )


@dataclass(frozen=True)
class PartyRatings:
    """One retailer's users: dense train ratings and mask over the shared catalogue, plus held-out
    (row, item, rating) triples for evaluation. Row r is the party's r-th user."""

    users: np.ndarray
    train_ratings: np.ndarray  # [users, items], 0 where unobserved
    train_mask: np.ndarray  # [users, items], 1 where observed
    test: np.ndarray  # [n, 3]: row, item, rating


def split_parties(
    interactions: pl.DataFrame, parties: int = 3, holdout: float = 0.2, seed: int = 5
) -> list[PartyRatings]:
    """Users dealt to parties at random (seeded); each user's latest `holdout` share is test data."""
    n_users = int(interactions["user"].max()) + 1
    n_items = int(interactions["item"].max()) + 1
    owner = np.random.default_rng(seed).integers(0, parties, n_users)
    ranked = interactions.with_columns(
        (pl.col("timestamp").rank("ordinal").over("user") / pl.len().over("user")).alias("position")
    )
    out = []
    for party in range(parties):
        users = np.flatnonzero(owner == party)
        row_of = {int(u): r for r, u in enumerate(users)}
        mine = ranked.filter(pl.col("user").is_in(users.tolist()))
        train = mine.filter(pl.col("position") <= 1 - holdout)
        test = mine.filter(pl.col("position") > 1 - holdout)
        ratings = np.zeros((len(users), n_items))
        rows = np.array([row_of[u] for u in train["user"].to_list()], dtype=np.int64)
        ratings[rows, train["item"].to_numpy()] = train["rating"].to_numpy()
        test_rows = np.array([row_of[u] for u in test["user"].to_list()], dtype=np.int64)
        out.append(
            PartyRatings(
                users=users,
                train_ratings=ratings,
                train_mask=(ratings > 0).astype(np.float64),
                test=np.column_stack([test_rows, test["item"].to_numpy(), test["rating"].to_numpy()]),
            )
        )
    return out
