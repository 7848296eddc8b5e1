"""Every flow imports, every deployment builds, and the library never imports Prefect."""

from __future__ import annotations

import ast
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
