"""The secure engine's one interface, with an in-process and a multi-process implementation."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol as TypingProtocol

from cleanroom.errors import SecureComputationError
from cleanroom.secure.client import RESULT_PREFIX
from cleanroom.secure.factorization import FactorizationRequest, TrainedFactors
from cleanroom.secure.network import PlayerNetwork
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
class PlayerProcessEngine:
    """Players as separate processes over TF's gRPC runtime; the client runs in a child process."""

    network: PlayerNetwork
    timeout: float = 600.0

    def secure_totals(self, request: AggregateRequest) -> RevealedTotals:
        return RevealedTotals.model_validate(self._run_client("totals", request.model_dump(mode="json")))

    def train_factorization(self, request: FactorizationRequest) -> TrainedFactors:
        return TrainedFactors.model_validate(self._run_client("factorization", request.model_dump(mode="json")))

    def shared_sales(self, request: SharedSalesRequest) -> RevealedSharedSales:
        return RevealedSharedSales.model_validate(
            self._run_client("shared_sales", request.model_dump(mode="json"))
        )

    def _run_client(self, kind: str, request: dict) -> dict:
        message = json.dumps({"kind": kind, "request": request, "hostmap": self.network.hostmap})
        process = subprocess.run(
            [sys.executable, "-m", "cleanroom.secure.client"],
            input=message,
            capture_output=True,
            text=True,
            cwd=self.network.run_dir,
            env=self.network.host.command_env(),
            timeout=self.timeout,
            check=False,
        )
        for line in process.stdout.splitlines():
            if line.startswith(RESULT_PREFIX):
                payload = json.loads(line.removeprefix(RESULT_PREFIX))
                if "error" in payload:
                    raise SecureComputationError(payload["error"], where="secure engine client")
                return payload
        (self.network.run_dir / "client.stderr").write_text(process.stderr)
        down = [name for name, up in self.network.alive().items() if not up]
        raise SecureComputationError(
            f"secure computation client exited with code {process.returncode}"
            + (f"; player(s) down: {', '.join(down)}" if down else ""),
            where="secure engine",
            fix=f"see {Path(self.network.run_dir) / 'client.stderr'}",
        )


def _all_players(compute: list[str], providers: list[str]) -> list[str]:
    return compute + [p for p in providers if p not in compute]
