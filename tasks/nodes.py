"""The coordinator's view of the party nodes: each node deploys one session on its party's work pool
(`flows/party_steps.py`); the coordinator starts it with `run_deployment` (run id, spec hash, phase:
once per run to compute, and once more after approval to countersign and mirror the release), and reads
each step's task run inside it (named after the step) for that step's status.
A node whose worker stops sending heartbeats, or a step or session that fails or takes too long, ends
the wait at once with one line naming the party; sessions still running when the run closes are
cancelled."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterId,
    TaskRunFilter,
    TaskRunFilterFlowRunId,
    TaskRunFilterName,
)
from prefect.client.schemas.objects import FlowRun, StateType, TaskRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelling

from cleanroom.errors import CleanroomError, PartyUnavailableError
from cleanroom.spec.models import CollaborationSpec

Status = dict
FAILED = {StateType.FAILED, StateType.CRASHED, StateType.CANCELLED, StateType.CANCELLING}
POLL_SECONDS = 1.0
LIVENESS_SECONDS = 3.0  # how often worker heartbeats are read (each read is a query on the server)
Run = FlowRun | TaskRun  # a step's task run, or its session's flow run when the session ended first
SESSION_END_SECONDS = 10.0  # at close, how long sessions get to end by themselves before being cancelled
STEP_EVENT_LAG_SECONDS = 30.0  # how long a completed session's step may still look unfinished (events lag)


STEP_FAILED = "StepFailed"  # the exception a failed step raises (flows/party_steps.py), named in its state


def failure_reason(state_message: str) -> str:
    """The product's one line inside a failed step's Prefect state message ("... StepFailed: <line>")."""
    return state_message.split(f"{STEP_FAILED}: ", 1)[-1]


def pool_name(party: str) -> str:
    return f"cleanroom-{party}"


def deployment_name(party: str) -> str:
    """Each node deploys flow `party-session` (flows/party_steps.py) under its party's name."""
    return f"party-session/{party}"


@dataclass
class PartyNodes:
    spec: CollaborationSpec
    spec_sha256: str
    run_id: str
    step_timeout: float
    offline_after: float
    sessions: dict[str, UUID] = field(default_factory=dict)  # party -> its current session's flow run
    phases: dict[str, str] = field(default_factory=dict)  # party -> the phase of its current session
    _started: list[UUID] = field(default_factory=list)  # every session of the run, to close them all
    _completed_at: dict[str, float] = field(default_factory=dict)  # party -> when its session was seen completed
    _offline: tuple[float, list[str]] = (0.0, [])  # (when read, parties found offline)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, step: str, parties: list[str], phase: str = "compute") -> dict[str, Status]:
        """Every named party's status for the step, once done (starting their sessions if needed)."""
        self.start(parties, phase)
        return self.wait(step, parties)

    def start(self, parties: list[str], phase: str = "compute") -> None:
        """Start this run's session of the phase on these parties' nodes (once per run and phase)."""
        parties = [party for party in parties if self.phases.get(party) != phase]
        self.check_online(parties)
        for party in parties:
            flow_run = run_deployment(
                deployment_name(party),
                parameters={"run_id": self.run_id, "spec_sha256": self.spec_sha256, "phase": phase},
                timeout=0,
                flow_run_name=f"{self.spec.party(party).display_name} · {phase} · {self.run_id}",
                tags=["cleanroom", f"party:{party}", f"run:{self.run_id}"],
            )
            self.sessions[party], self.phases[party] = flow_run.id, phase
            self._started.append(flow_run.id)
            self._completed_at.pop(party, None)  # the event lag counts from this session's end

    def wait(self, step: str, parties: list[str]) -> dict[str, Status]:
        """Every party's status once its step completed; raises at the first failure or offline node."""
        deadline = time.monotonic() + self.step_timeout
        statuses: dict[str, Status] = {}
        while True:
            for party, run in self._step_runs(step, [p for p in parties if p not in statuses]).items():
                # A task run's state reaches the server as an event: its type can show a moment before
                # the message that carries the status. Without the message, look again.
                if run.id not in self.sessions.values() and run.state and run.state.is_completed():
                    if run.state.message:
                        statuses[party] = json.loads(run.state.message)
                elif run.state is not None and run.state.is_final():
                    raise self._failure(step, party, run)
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
        """A failed step or session, or an offline node among these parties, as the error to raise."""
        for party, run in self._step_runs(step, parties).items():
            if run.state and run.state.type in FAILED:
                return self._failure(step, party, run)
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
        """Sessions end by themselves once the run closed (their steps see it); any still running after
        a short wait is cancelled (its node's worker stops it)."""
        deadline = time.monotonic() + SESSION_END_SECONDS
        running = self._unfinished_sessions()
        while running and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            running = self._unfinished_sessions()
        with get_client(sync_client=True) as client:
            for flow_run_id in running:
                client.set_flow_run_state(flow_run_id, Cancelling(message="the run ended"), force=True)

    def wait_finished(self, step: str, parties: list[str], timeout: float) -> None:
        """Wait (bounded) until these parties' step (or their session) reached a final state."""
        deadline = time.monotonic() + timeout
        parties = [p for p in parties if p in self.sessions]
        while time.monotonic() < deadline:
            runs = self._step_runs(step, parties)
            if len(runs) == len(parties) and all(r.state and r.state.is_final() for r in runs.values()):
                return
            time.sleep(POLL_SECONDS)

    def _session_runs(self) -> dict[UUID, FlowRun]:
        with get_client(sync_client=True) as client:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=list(self._started))),
                limit=len(self._started),
            )
        return {run.id: run for run in runs}

    def _unfinished_sessions(self) -> list[UUID]:
        if not self._started:
            return []
        return [i for i, r in self._session_runs().items() if not (r.state and r.state.is_final())]

    def _step_runs(self, step: str, parties: list[str]) -> dict[str, Run]:
        """Each party's task run for the step; its session's flow run instead when the session ended
        without the step finishing (a crash, a cancellation, a failure before the step). Parties whose
        step has not started yet are missing."""
        parties = [p for p in parties if p in self.sessions]
        if not parties:
            return {}
        ids = [self.sessions[p] for p in parties]
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                task_run_filter=TaskRunFilter(
                    flow_run_id=TaskRunFilterFlowRunId(any_=ids), name=TaskRunFilterName(any_=[step])
                ),
                limit=2 * len(ids),
            )
        sessions = self._session_runs()
        found: dict[str, Run] = {}
        for party in parties:
            step_run = next((r for r in runs if r.flow_run_id == self.sessions[party]), None)
            session = sessions.get(self.sessions[party])
            completed = session is not None and session.state is not None and session.state.is_completed()
            chosen = step_or_session(step_run, session, completed and self._lagged_too_long(party))
            if chosen is not None:
                found[party] = chosen
        return found

    def _lagged_too_long(self, party: str) -> bool:
        """A session completes only when all its steps did, but a task run's final state reaches the
        server as an event, after the session's own: a completed session's step is waited for a while."""
        first_seen = self._completed_at.setdefault(party, time.monotonic())
        return time.monotonic() - first_seen > STEP_EVENT_LAG_SECONDS

    def _failure(self, step: str, party: str, run: Run) -> CleanroomError:
        message = (run.state.message if run.state else "") or ""
        reason = failure_reason(message)
        reason = reason.removeprefix(f"party {party}: ")
        outcome = run.state.type.value.lower() if run.state else "failed"
        if run.id in self.sessions.values() and outcome == "completed":
            outcome, reason = "failed", f"its node's session ended without running {step}"
        return PartyUnavailableError(f"{step} {outcome}: {reason or 'no reason given'}", where=f"party {party}")


def step_or_session(step: TaskRun | None, session: FlowRun | None, lagged_out: bool) -> Run | None:
    """What says how a party's step went: its task run once final; its session's flow run when the
    session failed, crashed or was cancelled first, or completed and the step still looks unfinished
    after the events' lag (`lagged_out`); else the task run if it exists (still running)."""
    if step is not None and step.state is not None and step.state.is_final():
        return step
    ended = session is not None and session.state is not None and session.state.is_final()
    if ended and (lagged_out or not session.state.is_completed()):  # type: ignore[union-attr]
        return session
    return step


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
