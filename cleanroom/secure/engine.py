"""The secure engine's one interface, with an in-process implementation (tests, benchmarks) and the
coordinator's remote client joining the nodes' players."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol as TypingProtocol

from cleanroom.errors import CleanroomError, SecureComputationError
from cleanroom.network.sandbox import SOCKETS_INSIDE, sandboxed
from cleanroom.processes import start_process, stop_processes
from cleanroom.secure.client import RESULT_FILE
from cleanroom.secure.factorization import FactorizationRequest, TrainedFactors
from cleanroom.secure.requests import AggregateRequest, RevealedTotals
from cleanroom.secure.shared_sales import RevealedSharedSales, SharedSalesRequest


class SecureEngine(TypingProtocol):
    def secure_totals(self, request: AggregateRequest) -> RevealedTotals: ...
    def train_factorization(self, request: FactorizationRequest) -> TrainedFactors: ...
    def shared_sales(self, request: SharedSalesRequest) -> RevealedSharedSales: ...


@dataclass
class InProcessEngine:
    """All players in this process (TF Encrypted LocalConfig): fast, for tests and benchmarks."""

    def secure_totals(self, request: AggregateRequest) -> RevealedTotals:
        from cleanroom.secure.aggregates import run_totals
        from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness

        secure = require_secure_randomness(request.allow_insecure_randomness)
        config = import_tfe().LocalConfig(_all_players(request.players, request.providers()))
        with protocol_scope(request.protocol, config, request.players) as prot:
            return run_totals(request, prot, secure)

    def train_factorization(self, request: FactorizationRequest) -> TrainedFactors:
        from cleanroom.secure.factorization import run_training
        from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness

        require_secure_randomness(request.allow_insecure_randomness)
        config = import_tfe().LocalConfig(_all_players(request.players, request.providers()))
        with protocol_scope(request.protocol, config, request.players):
            return run_training(request)

    def shared_sales(self, request: SharedSalesRequest) -> RevealedSharedSales:
        from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness
        from cleanroom.secure.shared_sales import run_shared_sales

        require_secure_randomness(request.allow_insecure_randomness)
        config = import_tfe().LocalConfig(_all_players(request.players, request.providers()))
        with protocol_scope(request.protocol, config, request.players) as prot:
            return run_shared_sales(request, prot)


@dataclass
class RemoteEngine:
    """The coordinator's secure client, run per computation in its own sandbox, joining the players
    over the TLS terminator whose sockets are in `sockets`. `watch` is polled while it runs: when it
    names a problem (a node went offline, a player stopped), the client is stopped and that is raised."""

    internal: dict[str, str]  # every member's loopback address inside the sandboxes
    sockets: Path
    log_dir: Path
    watch: Callable[[], CleanroomError | None] = lambda: None
    timeout: float = 900.0
    diagnose_seconds: float = 0.0  # how long a crashed computation waits for `watch` to name its cause

    def secure_totals(self, request: AggregateRequest) -> RevealedTotals:
        return RevealedTotals.model_validate(self._run_client("totals", request.model_dump(mode="json")))

    def train_factorization(self, request: FactorizationRequest) -> TrainedFactors:
        return TrainedFactors.model_validate(self._run_client("factorization", request.model_dump(mode="json")))

    def shared_sales(self, request: SharedSalesRequest) -> RevealedSharedSales:
        return RevealedSharedSales.model_validate(
            self._run_client("shared_sales", request.model_dump(mode="json"))
        )

    def _run_client(self, kind: str, request: dict) -> dict:
        message = {"kind": kind, "request": request, "cluster": self.internal, "sockets": str(SOCKETS_INSIDE)}
        with tempfile.TemporaryDirectory(prefix="cleanroom-client-") as folder:
            workdir = Path(folder)
            (workdir / "request.json").write_text(json.dumps(message))
            command = [sys.executable, "-m", "cleanroom.secure.client", "request.json"]
            log = self.log_dir / "client.log"
            process = start_process(sandboxed(command, workdir, self.sockets), log)
            problem = self._wait(process)
            if problem is not None:
                raise problem
            output = (workdir / RESULT_FILE).read_text() if (workdir / RESULT_FILE).exists() else ""
        if output:
            payload = json.loads(output)
            if "error" in payload:
                raise SecureComputationError(payload["error"], where="secure engine client")
            return payload
        raise self._diagnosed() or SecureComputationError(
            f"secure computation client exited with code {process.returncode}",
            where="secure engine",
            fix=f"see {log}",
        )

    def _diagnosed(self) -> CleanroomError | None:
        """After a crash, the cause the watch finds (a node gone offline is seen within its heartbeat
        limit), so the error names the party rather than the client's exit code."""
        deadline = time.monotonic() + self.diagnose_seconds
        while time.monotonic() < deadline:
            problem = self.watch()
            if problem is not None:
                return problem
            time.sleep(1.0)
        return None

    def _wait(self, process: subprocess.Popen) -> CleanroomError | None:
        deadline = time.monotonic() + self.timeout
        while process.poll() is None:
            problem = self.watch()
            if problem is None and time.monotonic() > deadline:
                problem = SecureComputationError(
                    f"the secure computation took longer than {self.timeout:.0f} s", where="secure engine"
                )
            if problem is not None:
                stop_processes([process], grace=2)
                return problem
            time.sleep(0.5)
        return None


def _all_players(compute: list[str], providers: list[str]) -> list[str]:
    return compute + [p for p in providers if p not in compute]
