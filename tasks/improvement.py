"""Phase 7: continuous improvement — KPI history and the comparison with the previous run."""

from prefect import get_run_logger, task

from cleanroom.history import KpiChange, RunKpis, record_and_compare
from cleanroom.secure import RevealedTotals
from tasks import PRIVATE
from tasks.context import RunContext


@task(name="record-kpis", **PRIVATE)
def record_kpis(
    context: RunContext, revealed: RevealedTotals, verification: dict[str, bool], total_seconds: float
) -> list[KpiChange]:
    """Append this run's metadata KPIs (no market figures) to the history and compare with the last run."""
    trend = context.pinned.spec.category_month_sales
    cells, shown = trend.grid_cells, trend.sales_cells_shown(revealed.shown)
    kpis = RunKpis(
        run_id=context.run_id,
        spec_sha256=context.pinned.sha256,
        cells_shown=shown,
        cells_suppressed=cells - shown,
        secure_seconds=revealed.seconds,
        total_seconds=round(total_seconds, 1),
        verification_passed=all(verification.values()),
    )
    changes = record_and_compare(context.settings.history_file, kpis)
    for change in changes:
        get_run_logger().info("kpi %s: %s -> %s", change.name, change.previous, change.current)
    return changes
