"""The consortium's privacy budget across runs. Released runs' spending is in the ledger; a run reserves
its rho before anything is computed (under the ledger's lock, so concurrent runs cannot both take the
last of it), the reservation becomes spent once the secure computation starts (the revealed figures
exist from then on, released or not), and is given back only if the run ends before that.

Kept as one small JSON file per run beside the coordinator's ledger mirror: it survives restarts, and
a run that died mid-way stays counted (the safe side) until an operator says otherwise."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from cleanroom.errors import CleanroomError, StorageError
from cleanroom.release.ledger import LedgerEntry
from cleanroom.spec.noise import BudgetPeriod, PrivacyBudget

TOLERANCE = 1e-9  # rho values are sums of floats from the calibration


class PrivacyBudgetExhausted(CleanroomError):
    """The run would spend more privacy budget than the spec allows: nothing was computed."""


class Spending(BaseModel):
    run_id: str
    rho: float
    at: datetime  # when it was reserved: the period it counts in
    state: Literal["reserved", "spent"]


@dataclass(frozen=True)
class BudgetStatus:
    period: str  # e.g. 2026-12, 2026-Q4, 2026
    period_spent: float
    period_limit: float
    lifetime_spent: float
    lifetime_limit: float
    resets_on: date

    @property
    def period_left(self) -> float:
        return max(0.0, self.period_limit - self.period_spent)

    @property
    def lifetime_left(self) -> float:
        return max(0.0, self.lifetime_limit - self.lifetime_spent)

    def line(self) -> str:
        return (
            f"period {self.period}: rho {_shown(self.period_spent)} of {_shown(self.period_limit)} spent "
            f"(resets {self.resets_on.isoformat()}); "
            f"lifetime: {_shown(self.lifetime_spent)} of {_shown(self.lifetime_limit)}"
        )


def _shown(rho: float) -> str:
    """A rho for people: float sums like 1.9999999 read as 2."""
    return f"{round(rho, 6):.4g}"


def budget_folder(workspace: Path, collaboration: str) -> Path:
    """The coordinator's budget records for one consortium."""
    return workspace / "budget" / collaboration


def period_of(day: date, period: BudgetPeriod) -> tuple[str, date, date]:
    """(label, first day, first day of the next period), calendar periods in UTC."""
    if period is BudgetPeriod.YEAR:
        return f"{day.year}", date(day.year, 1, 1), date(day.year + 1, 1, 1)
    months = 1 if period is BudgetPeriod.MONTH else 3
    first_month = (day.month - 1) // months * months
    start = date(day.year, first_month + 1, 1)
    after = first_month + months
    label = f"{day.year}-{day.month:02d}" if months == 1 else f"{day.year}-Q{first_month // 3 + 1}"
    return label, start, date(day.year + after // 12, after % 12 + 1, 1)


def spendings(folder: Path) -> list[Spending]:
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            records.append(Spending.model_validate_json(path.read_bytes()))
        except (OSError, ValidationError) as exc:
            raise StorageError(
                f"unreadable budget record ({type(exc).__name__})",
                where=str(path),
                fix="restore it from a backup; deleting it would forget privacy budget already spent",
            ) from None
    return records


def status(folder: Path, ledger: list[LedgerEntry], budget: PrivacyBudget, now: datetime) -> BudgetStatus:
    """What is spent in `now`'s period and in total: every record, plus released runs that have none."""
    spent = released_spending(ledger) | {r.run_id: (r.rho, r.at.date()) for r in spendings(folder)}
    return spending_status(spent, budget, now)


def released_spending(ledger: list[LedgerEntry]) -> dict[str, tuple[float, date]]:
    """Per released run in the ledger: the rho it spent and the day it was released."""
    return {
        entry.run_id: (sum(entry.privacy_budget_spent.values()), datetime.fromisoformat(entry.released_at).date())
        for entry in ledger
        if entry.privacy_budget_spent
    }


def spending_status(spent: dict[str, tuple[float, date]], budget: PrivacyBudget, now: datetime) -> BudgetStatus:
    label, start, resets = period_of(now.date(), budget.period)
    return BudgetStatus(
        period=label,
        period_spent=sum(rho for rho, day in spent.values() if start <= day < resets),
        period_limit=budget.rho_per_period,
        lifetime_spent=sum(rho for rho, _ in spent.values()),
        lifetime_limit=budget.lifetime_rho,
        resets_on=resets,
    )


def reserve(
    folder: Path, ledger: list[LedgerEntry], budget: PrivacyBudget, run_id: str, rho: float, now: datetime
) -> BudgetStatus:
    """Reserve the run's rho, or refuse saying what is left. The caller holds the ledger's lock."""
    before = status(folder, ledger, budget, now)
    problems = []
    if before.period_spent + rho > budget.rho_per_period + TOLERANCE:
        problems.append(
            f"{_shown(before.period_left)} left in period {before.period} (of {_shown(budget.rho_per_period)}; "
            f"resets {before.resets_on.isoformat()})"
        )
    if before.lifetime_spent + rho > budget.lifetime_rho + TOLERANCE:
        problems.append(
            f"{_shown(before.lifetime_left)} left of the lifetime cap {_shown(budget.lifetime_rho)} (never resets)"
        )
    if problems:
        raise PrivacyBudgetExhausted(
            f"this run needs privacy budget rho {_shown(rho)}; " + "; ".join(problems),
            where="privacy.budget",
            fix="run again once the period resets, or agree a new spec (a smaller rho per run or a larger budget)",
        )
    _write(folder, Spending(run_id=run_id, rho=rho, at=now, state="reserved"))
    return status(folder, ledger, budget, now)


def mark_spent(folder: Path, run_id: str) -> None:
    """From now on the run's noisy figures exist: its reservation is spent whatever happens next."""
    path = folder / f"{run_id}.json"
    if path.exists():
        record = Spending.model_validate_json(path.read_bytes())
        _write(folder, record.model_copy(update={"state": "spent"}))


def give_back_unspent(folder: Path, run_id: str) -> bool:
    """The run ended before computing anything: its reservation is removed. True if there was one."""
    path = folder / f"{run_id}.json"
    if not path.exists() or Spending.model_validate_json(path.read_bytes()).state != "reserved":
        return False
    path.unlink()
    return True


def _write(folder: Path, record: Spending) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{record.run_id}.json.partial"
    partial.write_text(json.dumps(record.model_dump(mode="json"), indent=2) + "\n")
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    partial.replace(folder / f"{record.run_id}.json")
