"""Every flow imports, every deployment builds, and the library never imports Prefect."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_flows_import_and_deployments_build(small_spec) -> None:
    from deployments.lifecycle import DATA_ARRIVED_EVENT, MONTHLY_CRON, build_deployments
    from flows.lifecycle import collaboration_lifecycle

    assert collaboration_lifecycle.name == "collaboration-lifecycle"
    deployments = build_deployments(small_spec.path)
    assert [d.name for d in deployments] == ["on-demand", "monthly", "on-new-data"]
    assert all(d.parameters == {"spec_path": str(small_spec.path)} for d in deployments)
    assert deployments[1].schedules[0].schedule.cron == MONTHLY_CRON
    assert DATA_ARRIVED_EVENT in deployments[2].triggers[0].expect


def test_party_session_builds_as_a_deployment_on_its_party_pool() -> None:
    """What `cleanroom node start` registers: the session by module path (the node's installed code) on
    the party's own work pool; its steps are tasks it runs, with the run id and the spec hash."""
    from prefect.deployments.runner import EntrypointType

    from flows.party_steps import STEP_TASKS, StepFailed, session
    from tasks.nodes import STEP_FAILED, deployment_name, failure_reason, pool_name

    deployment = session.to_deployment(
        name="harbor", entrypoint_type=EntrypointType.MODULE_PATH, work_pool_name=pool_name("harbor")
    )
    assert f"{session.name}/{deployment.name}" == deployment_name("harbor")
    assert deployment.entrypoint == "flows.party_steps.session" and deployment.work_pool_name == "cleanroom-harbor"
    assert sorted(STEP_TASKS) == ["countersign", "mirror", "player", "prepare", "psi", "recommend", "verify"]
    assert set(session.parameters.properties) == {"run_id", "spec_sha256", "phase"}  # nothing else reaches a node
    message = f"Task run encountered an exception {StepFailed.__name__}: party harbor: no prepared data"
    assert StepFailed.__name__ == STEP_FAILED and failure_reason(message) == "party harbor: no prepared data"
    for step_task in STEP_TASKS.values():
        assert list(inspect.signature(step_task.fn).parameters) == ["run_id", "spec_sha256"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_library_is_prefect_free_and_tf_is_quarantined() -> None:
    for path in (ROOT / "cleanroom").rglob("*.py"):
        imported = _imports(path)
        assert "prefect" not in imported, path
        if "secure" not in path.parts:
            assert not imported & {"tensorflow", "tf_encrypted"}, path
