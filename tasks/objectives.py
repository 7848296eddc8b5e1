"""Phase 1: objectives and stakeholders — the collaboration spec, validated and hash-pinned."""

from pathlib import Path

from prefect import get_run_logger, task

from cleanroom.spec import PinnedSpec, pin_spec
from tasks import PRIVATE


@task(name="pin-collaboration-spec", **PRIVATE)
def pin_collaboration_spec(spec_path: Path) -> PinnedSpec:
    """Validate the spec (parties, roles, objectives, approved analyses, approvers, privacy policy)
    and pin it by the SHA-256 of its canonical form."""
    pinned = pin_spec(spec_path)
    spec = pinned.spec
    get_run_logger().info(
        "spec %s v%d pinned sha256=%s: %d parties, %d approvers, protocol %s, k=%d",
        spec.collaboration,
        spec.version,
        pinned.sha256[:16],
        len(spec.parties),
        len(spec.approvers),
        spec.secure_computation.protocol.value,
        spec.privacy.min_group_size,
    )
    return pinned
