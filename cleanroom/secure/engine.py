"""The secure engine's one interface, with an in-process implementation (tests, benchmarks) and the
coordinator's remote client joining the nodes' players."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol as TypingProtocol

import numpy as np

from cleanroom.errors import CleanroomError, SecureComputationError
from cleanroom.network.sandbox import SOCKETS_INSIDE, sandboxed
from cleanroom.processes import start_process, stop_processes
from cleanroom.secure.client import CLUSTER_FILE, result_file
from cleanroom.secure.factorization import FactorizationRequest, TrainedFactors
from cleanroom.secure.requests import AggregateRequest, RevealedTotals
from cleanroom.secure.shared_sales import RevealedSharedSales, SharedSalesRequest
from cleanroom.secure.vector_sum import VectorSumRequest

CLIENT_LOG = "client.log"
CLOSE_GRACE_SECONDS = 10.0
WATCH_SECONDS = 2.0  # how often a running computation asks whether a node went offline or a player stopped


class SecureEngine(TypingProtocol):
    def secure_totals(self, request: AggregateRequest) -> RevealedTotals: ...
    def train_factorization(self, request: FactorizationRequest) -> TrainedFactors: ...
    def shared_sales(self, request: SharedSalesRequest) -> RevealedSharedSales: ...
    def vector_sum(self, request: VectorSumRequest) -> tuple[np.ndarray, float]: ...


@dataclass
class InProcessEngine:
    """All players in this process (TF Encrypted LocalConfig): fast, for tests and benchmarks."""

    def secure_totals(self, request: AggregateRequest) -> RevealedTotals:
        from cleanroom.secure.aggregates import run_totals
        from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness

        require_secure_randomness()
        config = import_tfe().LocalConfig(_all_players(request.players, request.providers()))
        with protocol_scope(request.protocol, config, request.players) as prot:
            return run_totals(request, prot)

    def train_factorization(self, request: FactorizationRequest) -> TrainedFactors:
        from cleanroom.secure.factorization import run_training
        from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness

        require_secure_randomness()
        config = import_tfe().LocalConfig(_all_players(request.players, request.providers()))
        with protocol_scope(request.protocol, config, request.players):
            return run_training(request)

    def vector_sum(self, request: VectorSumRequest) -> tuple[np.ndarray, float]:
        from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness
        from cleanroom.secure.vector_sum import run_vector_sum

        require_secure_randomness()
        config = import_tfe().LocalConfig(_all_players(request.players, request.providers()))
        with protocol_scope(request.protocol, config, request.players):
            return run_vector_sum(request)

    def shared_sales(self, request: SharedSalesRequest) -> RevealedSharedSales:
        from cleanroom.secure.runtime import import_tfe, protocol_scope, require_secure_randomness
        from cleanroom.secure.shared_sales import run_shared_sales

        require_secure_randomness()
        config = import_tfe().LocalConfig(_all_players(request.players, request.providers()))
        with protocol_scope(request.protocol, config, request.players) as prot:
            return run_shared_sales(request, prot)


@dataclass
class RemoteEngine:
    """The coordinator's secure client, in its own sandbox, joining the players over the TLS terminator
    whose sockets are in `sockets`. One client process serves every computation of a player session
    (it starts at the first and stops at `close`): TensorFlow's import and the cluster join cost seconds
    of CPU each time. `watch` is polled while a computation runs: when it names a problem (a node went
    offline, a player stopped), the client is stopped and that is raised."""

    internal: dict[str, str]  # every member's loopback address inside the sandboxes
    sockets: Path
    log_dir: Path
    watch: Callable[[], CleanroomError | None] = lambda: None
    timeout: float = 900.0
    diagnose_seconds: float = 0.0  # how long a crashed computation waits for `watch` to name its cause
    _client: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _workdir: Path | None = field(default=None, init=False, repr=False)
    _requests: int = field(default=0, init=False, repr=False)

    def secure_totals(self, request: AggregateRequest) -> RevealedTotals:
        return RevealedTotals.model_validate(self._run_client("totals", request.model_dump(mode="json")))

    def train_factorization(self, request: FactorizationRequest) -> TrainedFactors:
        return TrainedFactors.model_validate(self._run_client("factorization", request.model_dump(mode="json")))

    def shared_sales(self, request: SharedSalesRequest) -> RevealedSharedSales:
        return RevealedSharedSales.model_validate(
            self._run_client("shared_sales", request.model_dump(mode="json"))
        )

    def vector_sum(self, request: VectorSumRequest) -> tuple[np.ndarray, float]:
        answer = self._run_client("vector_sum", request.model_dump(mode="json"))
        assert self._workdir is not None
        written = self._workdir / answer["file"]
        vector = np.frombuffer(written.read_bytes(), dtype="<i8").copy()
        written.unlink()
        if vector.size != request.length:
            raise SecureComputationError(
                f"the vector sum revealed {vector.size} values, expected {request.length}", where="secure engine"
            )
        return vector, float(answer["seconds"])

    def close(self) -> None:
        """End the client (it exits when its request stream closes) and remove its folder."""
        client, workdir = self._client, self._workdir
        self._client, self._workdir = None, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.stdin.close()  # type: ignore[union-attr]
            try:
                client.wait(timeout=CLOSE_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                stop_processes([client], grace=2)
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run_client(self, kind: str, request: dict) -> dict:
        client, workdir = self._started()
        self._requests += 1
        name = f"request-{self._requests}.json"
        (workdir / name).write_text(json.dumps({"kind": kind, "request": request}))
        result = workdir / result_file(name)
        try:
            client.stdin.write(f"{name}\n".encode())  # type: ignore[union-attr]
            client.stdin.flush()  # type: ignore[union-attr]
        except OSError:
            pass  # it exited: the wait below says so
        problem = self._wait(client, result)
        if problem is not None:
            self.close()
            raise problem
        if result.exists():
            payload = json.loads(result.read_text())
            result.unlink()
            if "error" in payload:
                raise SecureComputationError(payload["error"], where="secure engine client")
            return payload
        code = client.returncode
        self.close()
        raise self._diagnosed() or SecureComputationError(
            f"secure computation client exited with code {code}",
            where="secure engine",
            fix=f"see {self.log_dir / CLIENT_LOG}",
        )

    def _started(self) -> tuple[subprocess.Popen, Path]:
        if self._client is not None and self._client.poll() is not None:
            self.close()  # it died with a computation: the next one gets a new client
        if self._client is None or self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="cleanroom-client-"))
            (self._workdir / CLUSTER_FILE).write_text(
                json.dumps({"cluster": self.internal, "sockets": str(SOCKETS_INSIDE)})
            )
            command = [sys.executable, "-m", "cleanroom.secure.client", CLUSTER_FILE]
            self._client = start_process(
                sandboxed(command, self._workdir, self.sockets), self.log_dir / CLIENT_LOG, stdin=subprocess.PIPE
            )
        return self._client, self._workdir

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

    def _wait(self, process: subprocess.Popen, result: Path) -> CleanroomError | None:
        """Until the result is written or the client exited; the watch's problem or a timeout if either
        comes first."""
        deadline = time.monotonic() + self.timeout
        watched = time.monotonic()
        while not result.exists() and process.poll() is None:
            if time.monotonic() - watched >= WATCH_SECONDS:  # each look is a query on the Prefect server
                watched = time.monotonic()
                problem = self.watch()
                if problem is not None:
                    return problem
            if time.monotonic() > deadline:
                return SecureComputationError(
                    f"the secure computation took longer than {self.timeout:.0f} s", where="secure engine"
                )
            time.sleep(0.1)
        return None


def _all_players(compute: list[str], providers: list[str]) -> list[str]:
    return compute + [p for p in providers if p not in compute]
