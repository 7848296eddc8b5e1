"""A run's draft report: sealed to the approvers only, kept by the coordinator and put where approvers
fetch it, then the outcome of their review recorded beside it. Nothing here is published."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from cleanroom.crypto.envelope import verify_manifest
from cleanroom.errors import CryptoError, StorageError
from cleanroom.report.publish import MANIFEST, SIGNATURE, Destination, SealedReport, publish
from cleanroom.spec.models import CollaborationSpec
from cleanroom.storage.s3 import S3ObjectStore
from cleanroom.whole_files import write_whole_file, write_whole_folder

OUTCOME = "outcome.json"


@dataclass(frozen=True)
class Draft:
    """The sealed draft and the hash approvers sign: sha256 of its signed manifest, which names both
    ciphertexts and both plaintexts by their hashes."""

    sealed: SealedReport

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sealed.manifest).hexdigest()

    @property
    def manifest(self) -> dict:
        return json.loads(self.sealed.manifest)


def draft_destination(spec: CollaborationSpec) -> Destination:
    """Drafts sit beside the reports, under their own prefix: the outbox never publishes them."""
    reporting = spec.reporting
    return Destination(reporting.bucket, f"{reporting.prefix}-drafts", reporting.signing_public_key)


def keep_draft(draft: Draft, drafts_root: Path) -> Path:
    """The coordinator's copy, written whole or not at all."""
    return write_whole_folder(drafts_root / draft.sealed.run_id, draft.sealed.files(), "the draft")


def offer_draft(draft: Draft, store: S3ObjectStore, spec: CollaborationSpec) -> dict[str, str]:
    """Upload the sealed draft for the approvers (read back and verified like a report)."""
    return publish(draft.sealed.run_id, draft.sealed.files(), store, draft_destination(spec))


def record_outcome(drafts_root: Path, run_id: str, outcome: dict) -> None:
    run_dir = drafts_root / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    write_whole_file(run_dir / OUTCOME, json.dumps(outcome, indent=2, sort_keys=True))


def fetch_draft(
    run_id: str, spec: CollaborationSpec, spec_sha256: str, drafts_root: Path, store: S3ObjectStore | None
) -> tuple[dict[str, bytes], Draft]:
    """A draft as an approver finds it (the coordinator's folder, else the store), with its manifest
    verified under the spec's report-signing key and for this spec."""
    local = drafts_root / run_id
    names = ("report.html.age", "report.json.age", MANIFEST, SIGNATURE)
    found: dict[str, bytes | None] = {}
    if all((local / n).is_file() for n in names):
        found = {n: (local / n).read_bytes() for n in names}
    elif store is not None:
        destination = draft_destination(spec)
        found = {n: store.get(destination.bucket, destination.key(run_id, n)) for n in names}
    files = {n: data for n, data in found.items() if data is not None}
    if len(files) < len(names):
        raise StorageError(
            f"no draft of run {run_id}",
            where=str(local) if store is None else f"{local} and s3://{spec.reporting.bucket}",
            fix="check --run (the run's log names it), or set CLEANROOM_S3_ENDPOINT_URL to the consortium's store",
        )
    objects = {n: files[n] for n in names[:2]}
    manifest = verify_manifest(files[MANIFEST], files[SIGNATURE], spec.reporting.signing_public_key, objects)
    if manifest.get("spec_sha256") != spec_sha256 or manifest.get("run_id") != run_id:
        raise CryptoError(
            "the draft was made for another run or another spec",
            where=f"run {run_id}",
            fix="give the spec version the run used (spec_sha256 in its manifest)",
        )
    sealed = SealedReport(run_id, objects, files[MANIFEST], files[SIGNATURE])
    return files, Draft(sealed)
