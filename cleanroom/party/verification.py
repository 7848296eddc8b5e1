"""Phase 5 inside one party: check the revealed market totals against the party's own contribution."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cleanroom.analyses.category_month_sales import GRID_FILE
from cleanroom.spec.models import CategoryMonthSales

MARKET_SHARE_FILE = Path("market_share.json")  # in the run's reports folder


@dataclass(frozen=True)
class ContributionCheck:
    """A party's verdict; it says whether the checks held, never the party's own figures."""

    party: str
    consistent: bool
    cells_checked: int
    problems: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def load_own_aggregates(prepared: Path, cells: int) -> np.ndarray:
    raw = (prepared / GRID_FILE).read_bytes()
    return np.frombuffer(raw, dtype="<i8").reshape(2, cells)


def check_contribution(
    party: str,
    own: np.ndarray,
    revealed_sales: list[int | None],
    revealed_customers_ok: list[bool],
    noise_margin: list[float] | None = None,
) -> ContributionCheck:
    """Every revealed market total must be at least this party's own sales in that cell, and every
    suppressed cell must be one where the party alone could not have met the group size (checked by
    the minimum-size rule itself inside MPC; here: suppressed cells are never revealed as numbers).
    With noise, a total may fall below the party's own figure by the cell's `noise_margin`."""
    problems = []
    sales, _customers = own
    for cell, (total, shown) in enumerate(zip(revealed_sales, revealed_customers_ok)):
        if shown and total is None:
            problems.append(f"cell {cell}: marked as shown but has no value")
        if not shown and total is not None:
            problems.append(f"cell {cell}: suppressed but a value was revealed")
        margin = noise_margin[cell] if noise_margin else 0.0
        if total is not None and total + margin < sales[cell]:
            problems.append(f"cell {cell}: market total is below this party's own sales")
    return ContributionCheck(party, not problems, len(revealed_sales), problems)


def market_share(own_sales: np.ndarray, revealed_sales: list[int | None]) -> list[float | None]:
    """This party's share of each revealed market total (None where the cell was suppressed)."""
    return [
        None if total is None else (float(own) / total if total else 0.0)
        for own, total in zip(own_sales.tolist(), revealed_sales)
    ]


def write_market_share(
    reports_dir: Path, analysis: CategoryMonthSales, own: np.ndarray, revealed_sales: list[int | None]
) -> Path:
    """The party's market share per category and month, written only into its own run's reports."""
    cells = analysis.grid_cells  # sales come first
    shares = market_share(own[0][:cells], revealed_sales[:cells])
    months = analysis.period_labels
    table = {
        category: dict(zip(months, shares[i * len(months) : (i + 1) * len(months)]))
        for i, category in enumerate(analysis.categories)
    }
    path = reports_dir / MARKET_SHARE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"analysis": analysis.id, "share_of_market_sales": table}, indent=2))
    return path
