"""The party-side steps, as Prefect sees them. Each node deploys one flow, `party-session`, on its own
work pool (`cleanroom node start`); the coordinator's lifecycle starts it with `run_deployment` and
three parameters, the run id, the spec hash and the phase: once per run to compute, and once more after
the approvers approved, to countersign and mirror the release (so nothing on the node waits through the
approval window). The session runs its steps as tasks named after them, in one process on the party's
host, inside its workspace: prepare first, then PSI and the player, verify and recommend once their
inputs came. The coordinator reads each
step's task run in the session for its status. Measured on a busy 2-core host: a flow run per step cost
a process and about 3 CPU-s each (20 per lifecycle), a subflow per step up to 6 s to start, and a
tagged task up to 13 s (Prefect asks the server for tag concurrency slots first): the steps' task runs
carry no tags.

Prefect keeps parameters, logs and states in plaintext, so a step answers with a status only (its
final state's message) and its errors are reduced to the product's one-line messages: a library error
that could quote data goes to the party's own log, never to the server.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed, State

from cleanroom.errors import CleanroomError, file_system_error
from cleanroom.node.config import Node
from cleanroom.node.registry import resolve
from cleanroom.node.steps import RELEASE_STEPS, STARTS_AFTER, STEPS, await_start, later_steps, step_log
from cleanroom.processes import die_with_parent
from tasks.nodes import failure_reason

NODE_CONFIG_ENV = "CLEANROOM_NODE_CONFIG"
NODE_PID_ENV = "CLEANROOM_NODE_PID"  # the node process: a session starting after it died exits
log = logging.getLogger("cleanroom.node")


class StepFailed(Exception):  # its name is tasks.nodes.STEP_FAILED: the one line follows it in the state
    """A party step failed; the message is the product's one line, never a library's text."""


def _node() -> Node:
    return Node.load(Path(os.environ[NODE_CONFIG_ENV]))


def run_step(step: str, run_id: str, spec_sha256: str) -> State:
    node = _node()
    log.info("%s %s: started", step, run_id)
    try:
        status = STEPS[step](node, run_id, spec_sha256)
    except CleanroomError as exc:
        log.exception("%s %s failed", step, run_id)
        raise StepFailed(exc.one_line()) from None  # no chained cause: it could carry data
    except OSError as exc:
        log.exception("%s %s failed", step, run_id)
        known = file_system_error(exc)
        reason = f"party {node.party}: {step}: {known.one_line()}" if known else _inside(node.party, step)
        raise StepFailed(reason) from None
    except Exception:
        log.exception("%s %s failed", step, run_id)
        raise StepFailed(_inside(node.party, step)) from None
    get_run_logger().info("%s: %s", step, status["status"])
    return Completed(message=json.dumps(status, sort_keys=True))


def _inside(party: str, step: str) -> str:
    return f"party {party}: {step} failed inside its node; see {step_log(Path('.'))} in its workspace"


PRIVATE = {"persist_result": False, "log_prints": False, "retries": 0}
STEP = PRIVATE | {"cache_policy": NO_CACHE}


@flow(name="party-session", **PRIVATE)
def session(run_id: str, spec_sha256: str, phase: str = "compute") -> State:
    """The party-side steps of one run on this node. Phase compute: prepare, then the others at once
    (PSI and the player at once, verify when the revealed totals came, recommend when the item factors
    came and the player stopped, having handed over this party's user factors). Phase release, started
    once the approvers approved: countersign the ledger entry, then mirror it. Fails if any step failed;
    each step's own task run says which and why."""
    # A killed node takes its session, and its player, with it (also one killed while this started).
    die_with_parent(ancestor=int(os.environ.get(NODE_PID_ENV, "0")) or None)
    node = _node()
    with _local_log(node.workspace):
        if phase == "release":  # countersign checks again that this party signed the spec
            failed = _run_steps(node, RELEASE_STEPS, run_id, spec_sha256)
        else:
            failed = _run_steps(node, ["prepare"], run_id, spec_sha256)
            if not failed:  # prepare checked that this party signed the spec
                failed = _run_steps(node, later_steps(resolve(node, spec_sha256).spec), run_id, spec_sha256)
    if failed:
        raise StepFailed("; ".join(failed))
    return Completed(message="steps completed")


def _run_steps(node: Node, steps: list[str], run_id: str, spec_sha256: str) -> list[str]:
    """Run the steps as tasks at once, each in its own thread with the session's Prefect context,
    each once the step it follows ended and its starting message came. Returns one line per step that
    failed or never started (each failure's detail is in its own task run and the node's log)."""
    ended = {step: threading.Event() for step in steps}
    failures: dict[str, str] = {}

    def one(step: str) -> None:
        try:
            if step in STARTS_AFTER:
                ended[STARTS_AFTER[step]].wait()
            await_start(node, run_id, spec_sha256, step)
        except CleanroomError as exc:
            log.warning("%s %s not started: %s", step, run_id, exc.one_line())
            failures[step] = f"{step} not started: {exc.one_line()}"
            return
        except Exception:  # a library's text could quote data: it stays in the node's own log
            log.exception("%s %s not started", step, run_id)
            failures[step] = f"{step} not started; see {step_log(Path('.'))} in the party's workspace"
            return
        state = STEP_TASKS[step](run_id, spec_sha256, return_state=True)
        if not state.is_completed():
            failures[step] = f"{step}: {failure_reason(state.message or 'failed')}"

    def ending(step: str) -> None:
        try:
            one(step)
        finally:
            ended[step].set()

    with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="step") as pool:
        for future in [pool.submit(contextvars.copy_context().run, ending, step) for step in steps]:
            future.result()
    return [failures[step] for step in steps if step in failures]


@contextmanager
def _local_log(workspace: Path) -> Iterator[None]:
    """The node's own log gets the full detail of a failure; Prefect gets one line."""
    path = step_log(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s %(message)s"))
    local = logging.getLogger("cleanroom")
    local.addHandler(handler)
    local.setLevel(logging.INFO)
    try:
        yield
    finally:
        local.removeHandler(handler)
        handler.close()


@task(name="prepare", task_run_name="prepare", **STEP)
def prepare(run_id: str, spec_sha256: str) -> State:
    """Inside the party: connect its exports, validate them (polars rules, Great Expectations),
    quarantine, pseudonymize, generalize, enforce k-anonymity and pre-aggregate, as an immutable
    prepared version pinned for this run. Answers with expectation names and statuses only."""
    return run_step("prepare", run_id, spec_sha256)


@task(name="psi", task_run_name="psi", **STEP)
def psi(run_id: str, spec_sha256: str) -> State:
    """The party's side of private set intersection: its own join keys, blinded with a scalar that
    exists only in this step, exchanged as sealed batches through the consortium bucket."""
    return run_step("psi", run_id, spec_sha256)


@task(name="player", task_run_name="player", **STEP)
def player(run_id: str, spec_sha256: str) -> State:
    """Stage this run's player inputs, then serve the party's TF Encrypted player (sandboxed, behind
    mutual TLS on the spec's endpoint) until the coordinator releases it."""
    return run_step("player", run_id, spec_sha256)


@task(name="recommend", task_run_name="recommend", **STEP)
def recommend(run_id: str, spec_sha256: str) -> State:
    """Top-N recommendations for the party's customers and its own evaluation, kept in its workspace."""
    return run_step("recommend", run_id, spec_sha256)


@task(name="verify", task_run_name="verify", **STEP)
def verify(run_id: str, spec_sha256: str) -> State:
    """Check the revealed market totals against the party's own data; its market share stays here."""
    return run_step("verify", run_id, spec_sha256)


@task(name="countersign", task_run_name="countersign", **STEP)
def countersign(run_id: str, spec_sha256: str) -> State:
    """Once the approvers released the report: check the ledger entry (this run, the spec the party
    signed, the chain, the approvals) and the consortium's ledger against the node's mirror; sign it."""
    return run_step("countersign", run_id, spec_sha256)


@task(name="mirror", task_run_name="mirror", **STEP)
def mirror(run_id: str, spec_sha256: str) -> State:
    """Keep the committed ledger entry in the node's own mirror of the ledger."""
    return run_step("mirror", run_id, spec_sha256)


STEP_TASKS = {
    "prepare": prepare,
    "psi": psi,
    "player": player,
    "recommend": recommend,
    "verify": verify,
    "countersign": countersign,
    "mirror": mirror,
}
