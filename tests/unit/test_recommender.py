"""The retail recommender's party side: interactions from prepared data against the raw exports,
Recall@k against a brute-force count, the pinned catalogue's errors, and secure training on the
parties' own input files against plaintext training."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cleanroom.errors import ConfigurationError
from cleanroom.party.interactions import build_interactions
from cleanroom.recommend import factorization as mf
from cleanroom.recommend.retail import training_config
from cleanroom.spec import load_spec, pin_spec
from cleanroom.spec.catalogue import load_catalogue
from tests.conftest import home, prepared
from tests.plaintext_oracle import plaintext_interactions


def test_recall_counts_hits_among_unseen_top_k() -> None:
    rng = np.random.default_rng(0)
    scores, seen = rng.random((40, 30)), rng.random((40, 30)) < 0.3
    pairs = np.argwhere((rng.random((40, 30)) < 0.1) & ~seen)
    hits = possible = 0
    for row in np.unique(pairs[:, 0]):
        ranked = [i for i in np.argsort(-scores[row]) if not seen[row, i]][:5]
        relevant = set(pairs[pairs[:, 0] == row][:, 1].tolist())
        hits += len(relevant & set(ranked))
        possible += min(len(relevant), 5)
    assert mf.recall(scores, seen, pairs, 5) == pytest.approx(hits / possible)
    # A perfect scorer finds everything it can; the bootstrap interval of a zero lift is zero.
    perfect = np.zeros((40, 30))
    perfect[pairs[:, 0], pairs[:, 1]] = 1
    parts = mf.recall_parts(perfect, seen, pairs, 30)
    assert mf.recall_of(parts) == 1.0 and mf.lift_interval(parts, parts) == (0.0, 0.0)


def test_interactions_match_the_raw_exports(prepared_workspace, small_spec) -> None:
    analysis = small_spec.spec.joint_recommender
    gtins = load_catalogue(small_spec.path, small_spec.spec)
    cutoff = datetime.combine(analysis.holdout_from, datetime.min.time(), tzinfo=timezone.utc)
    for party in ("northwind", "alpine"):  # canonical CSV and Alpine's own Parquet layout
        transactions = pl.scan_parquet(prepared(prepared_workspace, party) / "transactions.parquet")
        data = build_interactions(transactions, analysis, gtins)
        counts, new_pairs = plaintext_interactions(home(prepared_workspace, party) / "raw", gtins, cutoff)
        assert len(counts) <= analysis.users_per_party  # the small consortium fits under the bound
        assert sorted(data.bought.sum(axis=1).tolist(), reverse=True) == counts
        assert len(data.held_out) == new_pairs > 0
        assert not data.bought[data.held_out[:, 0], data.held_out[:, 1]].any()
        target, weight = data.weights(analysis.purchase_weight, analysis.users_per_party)
        assert weight.shape == (analysis.users_per_party, len(gtins))
        assert not weight[len(counts) :].any()  # padding rows carry no weight
        assert set(np.unique(weight[: len(counts)])) == {1.0, float(analysis.purchase_weight)}
        assert np.array_equal(target > 0, weight == analysis.purchase_weight)


@pytest.mark.parametrize(
    ("change", "field"),
    [("edit", "catalogue.sha256"), ("remove", "catalogue.location")],
)
def test_catalogue_problems_name_the_field(tmp_path: Path, small_spec, change: str, field: str) -> None:
    spec_path = tmp_path / "consortium.yaml"
    shutil.copy(small_spec.path, spec_path)
    catalogue = tmp_path / small_spec.spec.joint_recommender.catalogue.location
    if change == "edit":
        shutil.copy(small_spec.path.parent / catalogue.name, catalogue)
        catalogue.write_text(catalogue.read_text().replace("Fieldway", "Fieldway Plus", 1))
    index = small_spec.spec.analyses.index(small_spec.spec.joint_recommender)
    with pytest.raises(ConfigurationError) as error:
        pin_spec(spec_path)
    assert f"analyses[{index}].{field}" in str(error.value) and "fix:" in str(error.value)
    assert load_spec(spec_path) is not None  # the spec itself is fine; the pinned file is not


def test_alone_training_is_the_secure_algorithm_on_one_party(prepared_workspace, small_spec) -> None:
    """The per-party baseline uses exactly the weighting the players use (E = W * (U V^T) - W * bought)."""
    analysis = small_spec.spec.joint_recommender
    gtins = load_catalogue(small_spec.path, small_spec.spec)
    transactions = pl.scan_parquet(prepared(prepared_workspace, "harbor") / "transactions.parquet")
    data = build_interactions(transactions, analysis, gtins)
    target, weight = data.weights(analysis.purchase_weight, len(data.customer_codes))
    config = training_config(analysis)
    u, v = mf.initial_factors(*target.shape, config)
    before = mf.centred(data.bought.astype(np.float64), weight, config)
    assert np.array_equal(before, target)  # the targets mf.train derives equal the players' input
    mf.epoch(u, v, target, weight, config)
    assert np.isfinite(u).all() and np.abs(v).max() < 1
