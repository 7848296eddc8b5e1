"""How the coordinator reads a party step's outcome from its node's session (tasks/nodes.py)."""

from __future__ import annotations

from uuid import uuid4

from prefect.client.schemas.objects import FlowRun, TaskRun
from prefect.states import Cancelled, Completed, Crashed, Failed, Running

from tasks.nodes import step_or_session


def _step(state) -> TaskRun:  # type: ignore[no-untyped-def]
    return TaskRun(name="verify", task_key="verify", dynamic_key="0", flow_run_id=uuid4(), state=state)


def _session(state) -> FlowRun:  # type: ignore[no-untyped-def]
    return FlowRun(flow_id=uuid4(), state=state)


def test_a_finished_step_speaks_for_itself_whatever_its_session() -> None:
    done, failed = _step(Completed(message='{"status": "verified"}')), _step(Failed(message="StepFailed: x"))
    assert step_or_session(done, _session(Running()), lagged_out=False) is done
    assert step_or_session(failed, _session(Crashed()), lagged_out=True) is failed


def test_a_session_that_ended_badly_answers_for_its_unfinished_step() -> None:
    running = _step(Running())
    for ended in (Crashed(), Cancelled(), Failed()):
        session = _session(ended)
        assert step_or_session(running, session, lagged_out=False) is session
        assert step_or_session(None, session, lagged_out=False) is session  # the step never started


def test_a_completed_session_waits_for_its_steps_late_state_then_answers() -> None:
    running, session = _step(Running()), _session(Completed())
    assert step_or_session(running, session, lagged_out=False) is running  # the event is on its way
    assert step_or_session(None, session, lagged_out=False) is None
    assert step_or_session(running, session, lagged_out=True) is session  # too long: it never ran


def test_a_running_session_leaves_the_step_pending() -> None:
    running = _step(Running())
    assert step_or_session(running, _session(Running()), lagged_out=False) is running
    assert step_or_session(None, _session(Running()), lagged_out=False) is None
