"""The collaboration lifecycle: seven phases, each a task module in `tasks/`."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from secrets import token_hex

from prefect import flow
from pydantic import BaseModel

from cleanroom.history import KpiChange
from cleanroom.settings import build_adapters
from tasks import analysis, improvement, objectives, preparation, reporting, review, secure_setup


class LifecycleOutcome(BaseModel):
    """What the run hands back: locations and run metadata, no figures (they are in the sealed report)."""

    run_id: str
    spec_sha256: str
    report_uris: dict[str, str]
    archive_dir: str
    kpi_changes: list[KpiChange]


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + token_hex(2)


@flow(name="collaboration-lifecycle", persist_result=False)
def collaboration_lifecycle(spec_path: Path) -> LifecycleOutcome:
    """Run one collaboration end to end: pin the spec, prepare each party's data in its own process,
    start the secure players, compute the approved analysis under MPC, cross-verify, publish the
    sealed report, and record KPIs for the next run."""
    started, run_id, adapters = time.monotonic(), new_run_id(), build_adapters()

    pinned = objectives.pin_collaboration_spec(spec_path)
    preparation.prepare_all_parties(pinned, adapters.party_host)
    overlap, indicator_shares = analysis.customer_overlap(pinned, adapters)
    with secure_setup.player_network(pinned, adapters, run_id) as network:
        sums = analysis.secure_sums(pinned, network, adapters)
        recommender = analysis.joint_recommender(pinned, network, adapters)
        shared_sales = analysis.shared_customer_sales(pinned, network, adapters, indicator_shares)
    spec = pinned.spec
    revealed = sums[spec.category_month_sales.id]
    segments, copurchase, baskets = (
        sums[a.id] if a else None for a in (spec.customer_segments, spec.copurchase_lift, spec.basket_statistics)
    )
    verification = review.cross_verify(pinned, revealed, adapters.party_host)
    insights = reporting.Insights(overlap, segments, copurchase, recommender, baskets, shared_sales)
    uris = reporting.publish_report(pinned, revealed, insights, verification, adapters, run_id)
    changes = improvement.record_kpis(pinned, revealed, verification, adapters, run_id, time.monotonic() - started)

    return LifecycleOutcome(
        run_id=run_id,
        spec_sha256=pinned.sha256,
        report_uris=uris,
        archive_dir=uris["archive"],
        kpi_changes=changes,
    )
