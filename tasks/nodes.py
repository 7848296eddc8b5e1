"""The coordinator's view of the party nodes: each party step is a deployment on that party's work
pool, started with `run_deployment` (run id and spec hash only) and watched until it answers with a
status. A node whose worker stops sending heartbeats, or a step that fails or takes too long, ends the
wait at once with one line naming the party; the run's other steps are cancelled when it closes."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelling

from cleanroom.errors import CleanroomError, PartyUnavailableError
from cleanroom.spec.models import CollaborationSpec

Status = dict
FAILED = {StateType.FAILED, StateType.CRASHED, StateType.CANCELLED, StateType.CANCELLING}
POLL_SECONDS = 1.0
LIVENESS_SECONDS = 3.0  # how often worker heartbeats are read (each read is a query on the server)


def pool_name(party: str) -> str:
    return f"cleanroom-{party}"


def deployment_name(step: str, party: str) -> str:
    """Each node deploys flow `party-<step>` (flows/party_steps.py) under its party's name."""
    return f"party-{step}/{party}"


@dataclass
class PartyNodes:
    spec: CollaborationSpec
    spec_sha256: str
    run_id: str
    step_timeout: float
    offline_after: float
    started: dict[tuple[str, str], UUID] = field(default_factory=dict)  # (step, party) -> flow run
    _offline: tuple[float, list[str]] = (0.0, [])  # (when read, parties found offline)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, step: str, parties: list[str]) -> dict[str, Status]:
        """Run a step on every named party's node at once and return their statuses."""
        self.start(step, parties)
        return self.wait(step, parties)

    def start(self, step: str, parties: list[str]) -> None:
        """Start the step on these parties' nodes (once per run: a step started ahead is not repeated)."""
        parties = [party for party in parties if (step, party) not in self.started]
        self.check_online(parties)
        for party in parties:
            flow_run = run_deployment(
                deployment_name(step, party),
                parameters={"run_id": self.run_id, "spec_sha256": self.spec_sha256},
                timeout=0,
                flow_run_name=f"{self.spec.party(party).display_name} · {step} · {self.run_id}",
                tags=["cleanroom", f"party:{party}", f"run:{self.run_id}"],
            )
            self.started[step, party] = flow_run.id

    def start_ahead(self, *steps: str) -> None:
        """Start later steps now on every data party's node: each waits there for its inputs, so
        starting a flow run's process overlaps the phases before it."""
        parties = [p.name for p in self.spec.data_parties]
        for step in steps:
            self.start(step, parties)

    def wait(self, step: str, parties: list[str]) -> dict[str, Status]:
        """Every party's status once its step completed; raises at the first failure or offline node."""
        deadline = time.monotonic() + self.step_timeout
        statuses: dict[str, Status] = {}
        while True:
            for party, flow_run in self._runs(step, [p for p in parties if p not in statuses]).items():
                if flow_run.state_type is StateType.COMPLETED:
                    statuses[party] = json.loads(flow_run.state.message or "{}") if flow_run.state else {}
                elif flow_run.state_type in FAILED:
                    raise self._failure(step, party, flow_run)
            pending = [p for p in parties if p not in statuses]
            if not pending:
                return statuses
            offline = self.offline(pending)
            if offline:
                raise _offline_error(offline)
            if time.monotonic() > deadline:
                raise PartyUnavailableError(
                    f"{step} did not finish within {self.step_timeout:.0f} s",
                    where=f"party {', '.join(sorted(pending))}",
                    fix="check that node's host and logs; raise CLEANROOM_STEP_TIMEOUT for very large exports",
                )
            time.sleep(POLL_SECONDS)

    def problem(self, step: str, parties: list[str]) -> CleanroomError | None:
        """A failed step or an offline node among these parties, as the error to raise."""
        for party, flow_run in self._runs(step, parties).items():
            if flow_run.state_type in FAILED:
                return self._failure(step, party, flow_run)
        offline = self.offline(parties)
        return _offline_error(offline) if offline else None

    def check_online(self, parties: list[str]) -> None:
        offline = self.offline(parties, fresh=True)
        if offline:
            raise _offline_error(offline)

    def offline(self, parties: list[str], fresh: bool = False) -> list[str]:
        """Parties none of whose workers sent a heartbeat within `offline_after` seconds (read at most
        every few seconds: the answer changes at the workers' heartbeat pace)."""
        with self._lock:
            read_at, found = self._offline
            if fresh or time.monotonic() - read_at > LIVENESS_SECONDS:
                names = [p.name for p in self.spec.data_parties]
                found = [party for party in names if not live_workers(party, self.offline_after)]
                self._offline = (time.monotonic(), found)
        return [party for party in parties if party in found]

    def cancel_all(self) -> None:
        """Cancel every step of this run that has not finished (its node's worker stops it)."""
        with get_client(sync_client=True) as client:
            for flow_run_id in self.started.values():
                flow_run = client.read_flow_run(flow_run_id)
                if flow_run.state is not None and not flow_run.state.is_final():
                    client.set_flow_run_state(flow_run_id, Cancelling(message="the run ended"), force=True)

    def wait_finished(self, step: str, parties: list[str], timeout: float) -> None:
        """Wait (bounded) until these steps reached a final state, whatever it is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self._runs(step, [p for p in parties if (step, p) in self.started])
            if all(r.state is not None and r.state.is_final() for r in runs.values()):
                return
            time.sleep(POLL_SECONDS)

    def _runs(self, step: str, parties: list[str]) -> dict[str, FlowRun]:
        """The step's flow runs for these parties, in one query."""
        ids = {self.started[step, party]: party for party in parties}
        if not ids:
            return {}
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(ids))), limit=len(ids)
            )
        return {ids[run.id]: run for run in runs}

    def _failure(self, step: str, party: str, flow_run: FlowRun) -> CleanroomError:
        message = (flow_run.state.message if flow_run.state else "") or ""
        reason = message.split("StepFailed: ", 1)[1] if "StepFailed: " in message else message
        reason = reason.removeprefix(f"party {party}: ")
        outcome = flow_run.state_type.value.lower() if flow_run.state_type else "failed"
        return PartyUnavailableError(f"{step} {outcome}: {reason or 'no reason given'}", where=f"party {party}")


def live_workers(party: str, within: float) -> list[str]:
    """Names of the workers on the party's pool that sent a heartbeat within `within` seconds."""
    now = datetime.now(timezone.utc)
    with get_client(sync_client=True) as client:
        try:
            workers = client.read_workers_for_work_pool(pool_name(party), limit=50, offset=0)
        except (ObjectNotFound, PrefectHTTPStatusError):  # no pool yet: its node never started
            return []
    return [
        w.name
        for w in workers
        if w.last_heartbeat_time and (now - w.last_heartbeat_time).total_seconds() <= within
    ]


def _offline_error(parties: list[str]) -> PartyUnavailableError:
    return PartyUnavailableError(
        "node offline (no heartbeat from its worker on work pool "
        + ", ".join(pool_name(p) for p in parties)
        + ")",
        where=f"party {', '.join(parties)}",
        fix="start it with `cleanroom node start --party NAME --config node.yaml` on that party's host",
    )
