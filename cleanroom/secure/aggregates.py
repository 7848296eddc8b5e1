"""Secure category x month totals: each party's grid enters as shares on its own player; only the
cells that pass disclosure control, checked inside MPC, are revealed:
- at least k distinct customers (customer-retailer pairs) contributed;
- at least n retailers have sales in the cell;
- no retailer has more than p% of the cell's sales (100 * s_i <= p * total for every i).
Which rule suppressed a cell is not revealed (that would say, e.g., that one retailer dominates it).
With differential privacy in the spec, every compute party adds its own noise share to the shared sums
before the reveal, so no one ever sees an un-noised total; the rules above still decide on exact sums."""

from __future__ import annotations

import operator
import time
from functools import reduce
from typing import Any

import numpy as np

from cleanroom.secure.requests import AggregateRequest, RevealedTotals
from cleanroom.secure.runtime import all_true, greater_than, import_tfe


# Dominance terms are compared in fixed point, each cell's values divided by its unit (cents / 100 =
# euros, counts / 1), so p * value stays far inside the ring's range; exact sums use the raw integers.
# With integer values and p in steps of 0.1 (the spec enforces it), p * total - 100 * own is a multiple
# of 0.1 / unit: half of that separates "exactly p%" (passes) from "above p%" by more than the encoding
# error of the n + 1 terms (at most (n + 1) * 0.5 * 3^-8 ~ 3e-4 for SecureNN's base-3 fixed point and
# three retailers; ABY3's 2^-16 is ten times finer).
def tie_tolerance(unit: float) -> float:
    return 0.05 / unit


def build_totals_function(request: AggregateRequest, prot: Any) -> Any:
    """A tf.function computing the whole analysis on the players and returning revealed values only."""
    import tensorflow as tf

    tfe = import_tfe()
    cells = request.cells
    units = np.asarray(request.units(), dtype=np.float64)
    tolerance = np.asarray([tie_tolerance(u) for u in request.units()])

    def read_own_grid(party: str) -> Any:
        # Runs on the party's player: the files are read there and never reach the coordinator.
        grids = []
        for part in request.grid_files(party):
            raw = tf.io.decode_raw(tf.io.read_file(part.file), tf.int64, little_endian=True)
            grids.append(tf.reshape(tf.ensure_shape(raw, (2 * part.cells,)), (2, part.cells)))
        return tf.concat(grids, axis=1)

    def party_inputs(party: str) -> tuple[Any, Any, Any]:
        @tfe.local_computation(party, apply_scaling=False)
        def sales() -> Any:  # integer cents: unscaled, so sums are exact in the ring
            return read_own_grid(party)[0]

        @tfe.local_computation(party)
        def customers() -> Any:  # fixed point: compared with k - 0.5 below
            return tf.cast(read_own_grid(party)[1], tf.float64)

        @tfe.local_computation(party)
        def dominance_terms() -> Any:  # [contributes, p * sales, 100 * sales] computed on the party's player
            own = tf.cast(read_own_grid(party)[0], tf.float64) / units
            contributes = tf.cast(own > 0, tf.float64)
            return tf.stack([contributes, request.max_share_percent * own, 100.0 * own])

        return sales(), customers(), dominance_terms()

    def noise_share(party: str) -> Any:
        @tfe.local_computation(party, apply_scaling=False)
        def noise() -> Any:  # drawn on the party's node for this run; zeros for parts without noise
            parts = []
            for part in request.grid_files(party):
                if part.noise_file is None:
                    parts.append(tf.zeros((part.cells,), dtype=tf.int64))
                else:
                    raw = tf.io.decode_raw(tf.io.read_file(part.noise_file), tf.int64, little_endian=True)
                    parts.append(tf.ensure_shape(raw, (part.cells,)))
            return tf.concat(parts, axis=0)

        return noise()

    def reconstructs_to_own_input(party: str, sales_shared: Any) -> Any:
        @tfe.local_computation(party, apply_scaling=False)
        def check(sales_reconstructed: Any) -> Any:
            same = tf.reduce_all(tf.equal(tf.cast(sales_reconstructed, tf.int64), read_own_grid(party)[0]))
            return tf.reshape(tf.cast(same, tf.int64), (1,))

        return check(sales_shared)

    @tf.function
    def totals() -> tuple[Any, Any, list[Any]]:
        inputs = {party: party_inputs(party) for party in request.providers()}
        sales_shared = reduce(operator.add, [sales for sales, _, _ in inputs.values()])
        customers_shared = reduce(operator.add, [customers for _, customers, _ in inputs.values()])
        terms = {party: inputs[party][2] for party in request.providers()}
        contributors_shared = reduce(operator.add, [t[0] for t in terms.values()])
        share_limit_shared = reduce(operator.add, [t[1] for t in terms.values()])  # p * total
        # Every rule as "margin > 0", stacked so one secure comparison covers them all (each comparison
        # is a large bit-decomposition subgraph). Integer counts: "count >= k" is "count > k - 0.5".
        margins = tfe.concat(
            [
                customers_shared - (request.min_group_size - 0.5),
                contributors_shared - (request.min_contributors - 0.5),
                *[share_limit_shared - t[2] + prot.define_constant(tolerance) for t in terms.values()],
            ],
            axis=0,
        )
        passed = greater_than(prot, margins, 0.0)
        shown_shared = all_true(prot, [passed[i * cells : (i + 1) * cells] for i in range(2 + len(terms))])
        released = sales_shared
        if request.noised():
            released = reduce(operator.add, [noise_share(party) for party in request.players], released)
        checks = [
            reconstructs_to_own_input(party, inputs[party][0]).reveal().to_native()
            for party in request.providers()
        ]
        if not request.reveal_sums:
            return shown_shared.reveal().to_native(), tf.zeros((cells,), dtype=tf.int64), checks
        masked_shared = tfe.select(shown_shared, released - released, released)
        return shown_shared.reveal().to_native(), masked_shared.reveal().to_native(), checks

    return totals


def run_totals(request: AggregateRequest, prot: Any) -> RevealedTotals:
    """Trace and run the totals graph once under the protocol in scope."""
    started = time.perf_counter()
    shown_revealed, masked_revealed, checks = build_totals_function(request, prot)()
    shown = np.asarray(shown_revealed).astype(bool).reshape(-1)
    masked = np.asarray(masked_revealed).astype(np.int64).reshape(-1)
    return RevealedTotals(
        sales_cents=[int(v) if ok and request.reveal_sums else None for v, ok in zip(masked, shown)],
        shown=shown.tolist(),
        contribution_consistent={
            party: bool(np.asarray(c).reshape(-1)[0] == 1) for party, c in zip(request.providers(), checks)
        },
        protocol=request.protocol,
        seconds=round(time.perf_counter() - started, 3),
    )
