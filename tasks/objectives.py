"""Phase 1: objectives and stakeholders — the collaboration spec, validated and hash-pinned, and a
consortium ready to run it: every data party signed that hash and its node is online."""

from datetime import datetime, timezone
from pathlib import Path

from prefect import get_run_logger, task

from cleanroom.crypto import pki
from cleanroom.crypto.keys import public_key_b64
from cleanroom.errors import ConfigurationError, StorageError
from cleanroom.privacy.budget import BudgetStatus, reserve
from cleanroom.privacy.noise_shares import rho_per_analysis
from cleanroom.release.ledger import ledger_mirror, reconcile
from cleanroom.spec import PinnedSpec, pin_spec
from cleanroom.spec.signatures import SpecSignature, collect
from tasks import PRIVATE
from tasks.context import TLS_CERTIFICATE, RunContext


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


@task(name="check-consortium", **PRIVATE)
def check_consortium(context: RunContext) -> dict[str, SpecSignature]:
    """Before anything runs: the coordinator's keys are the ones the spec pins, every data party has
    signed this spec's hash, and every node is online. Returns the signatures for the report."""
    pinned = context.pinned
    spec = pinned.spec
    _check_coordinator_keys(context)
    found = collect(context.store, spec, pinned.sha256)
    unsigned = [party for party, signature in found.items() if signature is None]
    if unsigned:
        raise ConfigurationError(
            f"not signed by {', '.join(unsigned)} (spec sha256 {pinned.sha256[:16]})",
            where=str(pinned.path),
            fix="each of them reviews this spec and runs `cleanroom spec sign` on its node",
        )
    context.nodes.check_online(context.parties)
    _check_release_path(context)
    context.store.expire_prefix(spec.exchange_bucket, spec.exchange.prefix + "/", spec.exchange.expire_days)
    get_run_logger().info(
        "consortium ready: %d nodes online, every one signed spec %s", len(found), pinned.sha256[:16]
    )
    return {party: signature for party, signature in found.items() if signature is not None}


@task(name="reserve-privacy-budget", **PRIVATE)
def reserve_privacy_budget(context: RunContext) -> BudgetStatus | None:
    """Before anything is computed: the run's rho fits the consortium's budget (per period and over its
    lifetime, counting every release in the ledger and every run in flight), and is reserved for it."""
    spec = context.pinned.spec
    rho = sum(rho_per_analysis(spec).values())
    if not rho or spec.privacy.budget is None:
        return None
    with context.ledger_lock():
        mirror = ledger_mirror(context.settings.workspace, spec.collaboration)
        committed = reconcile(context.store, spec.exchange_bucket, spec.collaboration, mirror)
        now = datetime.now(timezone.utc)
        after = reserve(
            context.budget_folder, [s.entry for s in committed], spec.privacy.budget, context.run_id, rho, now
        )
    get_run_logger().info("privacy budget: this run reserves rho %.4g; %s", rho, after.line())
    return after


def _check_release_path(context: RunContext) -> None:
    """What the end of the run needs, checked before it computes anything (a closed store port or a
    read-only archive used to discard a finished run): the archive takes files, the store takes and
    gives back an object where the report goes. The signing key was loaded and matched above."""
    archive_root = context.settings.archive_root
    probe = archive_root / f".write-check-{context.run_id}"
    try:
        archive_root.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(
            f"the report archive is not writable ({exc.strerror or type(exc).__name__})",
            where=str(archive_root),
            fix="make it writable for the coordinator, or set CLEANROOM_WORKSPACE",
        ) from exc
    reporting = context.pinned.spec.reporting
    context.store.check_writable(reporting.bucket, reporting.prefix, context.run_id)


def _check_coordinator_keys(context: RunContext) -> None:
    spec, me, settings = context.pinned.spec, context.me, context.settings
    problems = []
    if public_key_b64(me.signing_key.public_key()) != spec.reporting.signing_public_key:
        problems.append(f"{settings.signing_key_path} is not reporting.signing_public_key")
    if str(me.identity.to_public()) != spec.coordinator.public_key:
        problems.append("the coordinator's age identity is not coordinator.public_key")
    certificate = settings.coordinator_keys / TLS_CERTIFICATE
    try:
        if pki.fingerprint(certificate.read_text()) != pki.fingerprint(spec.coordinator.certificate):
            problems.append(f"{certificate} is not coordinator.certificate")
    except (OSError, ValueError):
        problems.append(f"{certificate} cannot be read")
    if problems:
        raise ConfigurationError(
            "; ".join(problems), where=str(context.pinned.path), fix="pin the coordinator's own keys in the spec"
        )
