"""The party-side steps as Prefect flows. Each node deploys them on its own work pool (`cleanroom node
start`), so they run only on that party's host, inside its workspace; the coordinator's lifecycle calls
them with `run_deployment` and two parameters, the run id and the spec hash.

Prefect keeps parameters, logs and states in plaintext, so a step answers with a status only (its
final state's message) and its errors are reduced to the product's one-line messages: a library error
that could quote data goes to the party's own log, never to the server.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.states import Completed, State

from cleanroom.errors import CleanroomError
from cleanroom.node.config import Node
from cleanroom.node.steps import STEPS, step_log
from cleanroom.processes import die_with_parent

NODE_CONFIG_ENV = "CLEANROOM_NODE_CONFIG"


class StepFailed(Exception):
    """A party step failed; the message is the product's one line, never a library's text."""


def run_step(step: str, run_id: str, spec_sha256: str) -> State:
    die_with_parent()  # a killed node takes its flow runs, and their players, with it
    node = Node.load(Path(os.environ[NODE_CONFIG_ENV]))
    handler = logging.FileHandler(_local_log(node.workspace))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    local = logging.getLogger("cleanroom")
    local.addHandler(handler)
    local.setLevel(logging.INFO)
    try:
        status = STEPS[step](node, run_id, spec_sha256)
    except CleanroomError as exc:
        local.exception("%s %s failed", step, run_id)
        raise StepFailed(exc.one_line()) from None  # no chained cause: it could carry data
    except Exception:
        local.exception("%s %s failed", step, run_id)
        raise StepFailed(
            f"party {node.party}: {step} failed inside its node; see {step_log(Path('.'))} in its workspace"
        ) from None
    finally:
        local.removeHandler(handler)
        handler.close()
    get_run_logger().info("%s: %s", step, status["status"])
    return Completed(message=json.dumps(status, sort_keys=True))


def _local_log(workspace: Path) -> Path:
    path = step_log(workspace)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


PRIVATE = {"persist_result": False, "log_prints": False, "retries": 0}


@flow(name="party-prepare", **PRIVATE)
def prepare(run_id: str, spec_sha256: str) -> State:
    """Inside the party: connect its exports, validate them (polars rules, Great Expectations),
    quarantine, pseudonymize, generalize, enforce k-anonymity and pre-aggregate, as an immutable
    prepared version pinned for this run. Answers with expectation names and statuses only."""
    return run_step("prepare", run_id, spec_sha256)


@flow(name="party-psi", **PRIVATE)
def psi(run_id: str, spec_sha256: str) -> State:
    """The party's side of private set intersection: its own join keys, blinded with a scalar that
    exists only in this flow run, exchanged as sealed batches through the consortium bucket."""
    return run_step("psi", run_id, spec_sha256)


@flow(name="party-player", **PRIVATE)
def player(run_id: str, spec_sha256: str) -> State:
    """Stage this run's player inputs, then serve the party's TF Encrypted player (sandboxed, behind
    mutual TLS on the spec's endpoint) until the coordinator releases it."""
    return run_step("player", run_id, spec_sha256)


@flow(name="party-recommend", **PRIVATE)
def recommend(run_id: str, spec_sha256: str) -> State:
    """Top-N recommendations for the party's customers and its own evaluation, kept in its workspace."""
    return run_step("recommend", run_id, spec_sha256)


@flow(name="party-verify", **PRIVATE)
def verify(run_id: str, spec_sha256: str) -> State:
    """Check the revealed market totals against the party's own data; its market share stays here."""
    return run_step("verify", run_id, spec_sha256)


STEP_FLOWS = {"prepare": prepare, "psi": psi, "player": player, "recommend": recommend, "verify": verify}
