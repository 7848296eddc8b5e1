"""Benchmark: how accurate the scalable joint recommender is against the reference no clean room can beat,
`implicit` ALS trained in plaintext on the pooled data of all retailers with the same settings.

    .venv/bin/python -m bench.recommender_accuracy [--no-write]

Recall@10 and NDCG@10 per retailer (95% bootstrap intervals over its customers, and the paired interval
of joint minus reference), on each customer's first purchases after the training period, for the joint
model (the federated training the lifecycle runs: sums as the players reveal them, which equal the
plain sums, see tests/unit/test_joint_epochs.py), the pooled reference, the same method on the
retailer's data alone, and its own best sellers; each retailer ranks among the products it sells.

- MovieLens-100K, users dealt to three retailers at random, each user's latest 20% held out.
- The demo consortium's data (`cleanroom.demo_data`, scale 1), the demo spec's settings.
- The cost of differential privacy: synthetic purchases with structure (tests/recommender_data.py's
  generator, three retailers) at growing numbers of customers, exact against noised at rho 1 for the
  whole training.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date, datetime, timezone

import numpy as np
import polars as pl
import yaml
from scipy import sparse

from bench.report import bench_arguments, publish
from cleanroom.demo_data import retailer_data, shared_catalogue
from cleanroom.demo_setup import TEMPLATE
from cleanroom.party.scalable_recommendations import load_purchases
from cleanroom.recommend.blend import blended
from cleanroom.recommend.evaluation import Ranked, best_sellers, bootstrap, paired_lift, ranked, top_n
from cleanroom.recommend.federated_als import AlsParams, Clipping
from cleanroom.recommend.federated_training import Trained, item_support, released_items, train
from cleanroom.recommend.movielens import load_interactions, split_parties
from tests.recommender_data import latent_purchases

DEMO_PARTIES = ["northwind", "harbor", "alpine", "fjord"]


def pooled_reference(trains: list[sparse.csr_matrix], params: AlsParams) -> Trained:
    """`implicit` ALS on every retailer's customers stacked, its own defaults for what the params omit."""
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.epochs,
        random_state=params.seed,
    )
    model.fit(sparse.vstack(trains).tocsr(), show_progress=False)
    bounds = np.cumsum([0] + [t.shape[0] for t in trains])
    users = [model.user_factors[bounds[i] : bounds[i + 1]] for i in range(len(trains))]
    return Trained(model.item_factors, users, np.ones(trains[0].shape[1], dtype=bool))


def scored(
    model: Trained, trains: list[sparse.csr_matrix], tests: list[sparse.csr_matrix], offered: list[np.ndarray]
) -> list[Ranked]:
    """Per retailer, each customer's hits, possible hits and NDCG@10 on its later purchases."""
    out = []
    for index, (purchases, later) in enumerate(zip(trains, tests)):
        customers = np.flatnonzero(np.diff(later.indptr) > 0)
        user = model.user_factors[index if len(model.user_factors) > 1 else 0]
        lists = top_n(user, model.item_factors, purchases, customers, 10, True, offered[index] & model.released)
        out.append(ranked(lists, later, customers))
    return out


def recalls(
    model: Trained, trains: list[sparse.csr_matrix], tests: list[sparse.csr_matrix], offered: list[np.ndarray]
) -> list[float]:
    return [r.recall for r in scored(model, trains, tests, offered)]


def compare(
    name: str,
    retailers: list[str],
    trains: list[sparse.csr_matrix],
    tests: list[sparse.csr_matrix],
    params: AlsParams,
    min_customers: int,
) -> list[str]:
    """Two tables (Recall@10, NDCG@10): per retailer with 95% bootstrap intervals over its customers, and on
    average, joint vs pooled reference (and their paired difference) vs alone vs best sellers."""
    offered = [item_support(t, None) > 0 for t in trains]
    released = released_items([item_support(t, None) for t in trains], min_customers, 2)
    started = time.perf_counter()
    joint_model = train(trains, params, None, released)
    seconds = time.perf_counter() - started
    joint = scored(joint_model, trains, tests, offered)
    pooled = scored(pooled_reference(trains, params), trains, tests, offered)
    alone, blend = [], []
    for index, purchases in enumerate(trains):
        own = train([purchases], params, None, offered[index])
        alone += scored(own, [purchases], [tests[index]], [offered[index]])
        users, items = blended(
            (joint_model.user_factors[index], joint_model.item_factors),
            (own.user_factors[0], own.item_factors),
            offered[index],
        )
        both = Trained(items, [users], np.ones_like(offered[index]))
        blend += scored(both, [purchases], [tests[index]], [offered[index]])
    popular = []
    for purchases, later in zip(trains, tests):
        customers = np.flatnonzero(np.diff(later.indptr) > 0)
        popular.append(ranked(best_sellers(purchases, customers, 10), later, customers))

    def cell(result: Ranked, measure: str) -> str:
        value = result.recall if measure == "recall" else float(result.ndcg.mean())
        low, high = bootstrap(result)[measure]
        return f"{value:.3f} [{low:.3f}, {high:.3f}]"

    rows = [
        f"**{name}** ({sum(t.shape[0] for t in trains):,} customers, {trains[0].shape[1]:,} products, "
        f"{int(released.sum()):,} modelled; k = {params.factors}, lambda = {params.regularization:g}, "
        f"confidence = {params.alpha:g}, {params.epochs} epochs; joint training {seconds:.1f} s). Recall@10 "
        "with its 95% bootstrap interval over the retailer's customers; joint - reference with the paired "
        "interval; the blend of joint and alone (`cleanroom/recommend/blend.py`) with its paired gain over alone:",
        "",
        "| retailer | joint | pooled reference | joint / reference | joint - reference | alone | blend | "
        "blend - alone | best sellers |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for index, retailer in enumerate(retailers):
        gap, low, high = paired_lift(joint[index], pooled[index])
        gain, gain_low, gain_high = paired_lift(blend[index], alone[index])
        rows.append(
            f"| {retailer} | {cell(joint[index], 'recall')} | {cell(pooled[index], 'recall')} | "
            f"{joint[index].recall / pooled[index].recall:.3f} | {gap:+.3f} [{low:+.3f}, {high:+.3f}] | "
            f"{cell(alone[index], 'recall')} | {cell(blend[index], 'recall')} | "
            f"{gain:+.3f} [{gain_low:+.3f}, {gain_high:+.3f}] | {cell(popular[index], 'recall')} |"
        )

    def mean(results: list[Ranked], measure: str = "recall") -> float:
        return float(np.mean([r.recall if measure == "recall" else r.ndcg.mean() for r in results]))

    ratio = mean(joint) / mean(pooled)
    rows += [
        f"| mean | {mean(joint):.3f} | {mean(pooled):.3f} | **{ratio:.3f}** | | {mean(alone):.3f} | "
        f"{mean(blend):.3f} | | {mean(popular):.3f} |",
        "",
        "NDCG@10, the same models:",
        "",
        "| retailer | joint | pooled reference | alone | blend | best sellers |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for index, retailer in enumerate(retailers):
        rows.append(
            f"| {retailer} | {cell(joint[index], 'ndcg')} | {cell(pooled[index], 'ndcg')} | "
            f"{cell(alone[index], 'ndcg')} | {cell(blend[index], 'ndcg')} | {cell(popular[index], 'ndcg')} |"
        )
    rows += [
        f"| mean | {mean(joint, 'ndcg'):.3f} | {mean(pooled, 'ndcg'):.3f} | {mean(alone, 'ndcg'):.3f} | "
        f"{mean(blend, 'ndcg'):.3f} | {mean(popular, 'ndcg'):.3f} |",
        "",
    ]
    return rows


def movielens() -> tuple[list[sparse.csr_matrix], list[sparse.csr_matrix]]:
    parties = split_parties(load_interactions(), parties=3)
    trains = [sparse.csr_matrix(p.train_mask.astype(np.float32)) for p in parties]
    tests = []
    for party, purchases in zip(parties, trains):
        rows, items = party.test[:, 0].astype(np.int64), party.test[:, 1].astype(np.int64)
        later = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, items)), shape=purchases.shape)
        later.data[:] = 1
        tests.append((later - later.multiply(purchases > 0)).tocsr())
    return trains, tests


def demo() -> tuple[list[sparse.csr_matrix], list[sparse.csr_matrix], AlsParams]:
    template = yaml.safe_load(TEMPLATE.read_text())  # keys and catalogue hash are filled in by `make demo`
    analysis = next(a for a in template["analyses"] if a["kind"] == "joint_recommender")
    product_ids = shared_catalogue(7)["product_id"].to_list()
    holdout = datetime.combine(analysis["holdout_from"], datetime.min.time(), tzinfo=timezone.utc)
    trains, tests = [], []
    for _, _, _, transactions in retailer_data(DEMO_PARTIES, period_start=date(2025, 1, 1)):
        lines = transactions.lazy().select(
            pl.col("customer_id").str.slice(2).cast(pl.Int64).alias("customer_code"),
            pl.col("gtin").alias("product_id"),
            pl.col("purchased_at").str.to_datetime(time_zone="UTC"),
        )
        purchases = load_purchases(lines, holdout, product_ids)
        trains.append(purchases.training)
        tests.append(purchases.held_out)
    params = AlsParams(analysis["factors"], analysis["regularization"], analysis["confidence"], analysis["epochs"])
    return trains, tests, params


def noise_cost(sizes: list[int], rho: float, params: AlsParams, clipping: Clipping) -> list[str]:
    """Exact against noised Recall@10 at growing numbers of customers, for the settings' confidence and
    for confidence 1 (then every S_i is zero and only G and b_i take noise)."""
    settings = [params, replace(params, alpha=1.0 / clipping.max_purchases)]
    rows = [
        f"**The cost of differential privacy** (synthetic purchases, three retailers, 300 products; "
        f"rho {rho:g} for the whole training of {params.epochs} epochs, each of 3 computing retailers adding its "
        f"own full-scale noise; clipping: {clipping.max_items} products, {clipping.max_purchases:g} each)",
        "",
        "| customers per retailer | "
        + " | ".join(f"confidence {s.alpha:g}: exact | noised | noised / exact" for s in settings)
        + " |",
        "| --- |" + " --- | --- | --- |" * len(settings),
    ]
    for size in sizes:
        trains, tests = latent_purchases([size] * 3, [12] * 3, seed=11)
        offered = [np.ones(300, dtype=bool)] * 3
        released = released_items([item_support(t, clipping) for t in trains], 10, 2)
        cells = []
        for setting in settings:
            exact = np.mean(recalls(train(trains, setting, clipping, released), trains, tests, offered))
            noised_model = train(trains, setting, clipping, released, rho_per_epoch=rho / setting.epochs)
            noised = np.mean(recalls(noised_model, trains, tests, offered))
            cells.append(f"{exact:.3f} | {noised:.3f} | {noised / exact:.2f}")
        rows.append(f"| {size:,} | " + " | ".join(cells) + " |")
    return [*rows, ""]


def main() -> None:
    parser = bench_arguments(__doc__ or "", "recommender-accuracy")
    parser.add_argument("--noise-sizes", default="2000,20000,200000")
    arguments = parser.parse_args()
    lines = []
    trains, tests, params = demo()
    lines += compare(
        "Demo consortium (scale 1; Fjord small, short histories)", DEMO_PARTIES, trains, tests, params, 10
    )
    trains, tests = movielens()
    names = ["retailer 1", "retailer 2", "retailer 3"]
    lines += compare(
        "MovieLens-100K, users dealt to three retailers", names, trains, tests, replace(params, factors=32), 10
    )
    sizes = [int(s) for s in arguments.noise_sizes.split(",")]
    lines += noise_cost(sizes, 1.0, AlsParams(factors=8, regularization=5.0, alpha=5.0, epochs=8), Clipping(20, 1))
    lines.append(
        "Target (issue 13): joint within 5% of the pooled reference, i.e. joint / reference >= 0.95 on average."
    )
    publish(
        lines,
        "recommender-accuracy",
        "Scalable joint recommender: accuracy against the pooled plaintext reference",
        command="python -m bench.recommender_accuracy",
        dry_run=arguments.no_write,
    )


if __name__ == "__main__":
    main()
