"""Phase 7: KPI history, one JSON line per run, and the comparison with the previous run.

The history is the operator's plaintext file, so it holds run metadata only: market figures stay
inside the encrypted report.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel


class RunKpis(BaseModel):
    run_id: str
    spec_sha256: str
    cells_shown: int
    cells_suppressed: int
    secure_seconds: float
    total_seconds: float
    verification_passed: bool


class KpiChange(BaseModel):
    name: str
    previous: float | None
    current: float

    @property
    def delta(self) -> float | None:
        return None if self.previous is None else self.current - self.previous


def previous_run(history_file: Path) -> RunKpis | None:
    if not history_file.exists():
        return None
    lines = [line for line in history_file.read_text().splitlines() if line.strip()]
    return RunKpis.model_validate_json(lines[-1]) if lines else None


def append_run(history_file: Path, kpis: RunKpis) -> None:
    history_file.parent.mkdir(parents=True, exist_ok=True)
    with history_file.open("a") as handle:
        handle.write(kpis.model_dump_json() + "\n")


def compare(previous: RunKpis | None, current: RunKpis) -> list[KpiChange]:
    names = ("cells_shown", "cells_suppressed", "secure_seconds", "total_seconds")
    return [
        KpiChange(
            name=n,
            previous=None if previous is None else float(getattr(previous, n)),
            current=float(getattr(current, n)),
        )
        for n in names
    ]


def record_and_compare(history_file: Path, kpis: RunKpis) -> list[KpiChange]:
    """Compare with the last recorded run, then append this one."""
    changes = compare(previous_run(history_file), kpis)
    append_run(history_file, kpis)
    return changes
