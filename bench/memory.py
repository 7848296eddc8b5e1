"""Peak memory of a child process, sampled from /proc: total resident and anonymous (heap) memory.

Polars memory-maps CSV files, so a process's resident size includes file pages the kernel can drop at
any time; anonymous memory is what the process really holds. Both are reported.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PeakMemory:
    resident: int = 0
    anonymous: int = 0


def run_sampled(command: list[str], interval: float = 0.02, **popen: object) -> tuple[int, PeakMemory, float]:
    """Run `command` to completion; return (exit code, peak memory in bytes, wall seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, **popen)  # type: ignore[call-overload]
    peak = PeakMemory()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            try:
                with open(f"/proc/{process.pid}/status") as handle:
                    fields = dict(line.split(":", 1) for line in handle if ":" in line)
            except (FileNotFoundError, ProcessLookupError):
                return
            resident = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
            anonymous = int(fields.get("RssAnon", "0 kB").split()[0]) * 1024
            peak.resident, peak.anonymous = max(peak.resident, resident), max(peak.anonymous, anonymous)
            time.sleep(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = process.wait()
    done.set()
    sampler.join()
    return code, peak, time.perf_counter() - started


def peak_resident_gib(pid: str = "self") -> float:
    """A process's peak resident memory (VmHWM, GiB) since it started or last reset it (writing "5" to
    its /proc/<pid>/clear_refs). Not ru_maxrss: Linux carries that over exec from the forking parent, so
    a child spawned by a big process reports the parent's size."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status if ":" in line)
    return int(fields["VmHWM"].split()[0]) / 2**20
