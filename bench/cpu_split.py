"""Where a run's CPU goes, by kind of process: /proc sampled every second during the block (a process
that lived less than a second between two samples is missed; a run's processes live longer)."""

from __future__ import annotations

import collections
import os
import threading
from pathlib import Path

KINDS = [
    ("prefect server", "Prefect server"),
    ("moto.server", "object store (moto)"),
    ("worker start", "Prefect workers (nodes)"),
    ("prefect.engine", "party sessions (a flow run per node per run)"),
    ("cleanroom.secure.player", "TF Encrypted players"),
    ("cleanroom.secure.client", "secure client"),
    ("stunnel", "stunnel (TLS)"),
    ("socat", "socat bridges"),
    ("flows.cli run", "coordinator (lifecycle flow)"),
    ("flows.cli demo", "coordinator (lifecycle flow)"),
    ("flows.cli node", "node supervisors"),
]
TICKS = os.sysconf("SC_CLK_TCK")


def _sample() -> dict[int, tuple[str, int]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        kind = next((name for key, name in KINDS if key in command), "other")
        found[int(entry.name)] = (kind, int(fields[11]) + int(fields[12]))
    return found


class CpuSplit:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSplit:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        before, last = _sample(), {}
        while not self._stop.wait(1.0):
            last.update(_sample())
        last.update(_sample())
        totals: collections.Counter[str] = collections.Counter()
        for pid, (kind, ticks) in last.items():
            totals[kind] += (ticks - before.get(pid, (kind, 0))[1]) / TICKS
        self.seconds = {kind: round(value, 1) for kind, value in totals.most_common() if value >= 0.5}

    def table(self, wall: float) -> list[str]:
        total = sum(self.seconds.values())
        rows = [f"| {kind} | {value:.0f} s | {value / total:.0%} |" for kind, value in self.seconds.items()]
        return [
            f"CPU seconds of the second run across hosts, by kind of process ({total:.0f} CPU-s in "
            f"{wall:.0f} s on 2 cores: the run is CPU-bound):",
            "",
            "| process | CPU | share |",
            "| --- | --- | --- |",
            *rows,
        ]
