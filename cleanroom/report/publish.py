"""Seal a report for the approvers, archive it locally, upload it, and open it again."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyrage import x25519

from cleanroom.crypto.envelope import decrypt_with, encrypt_for, manifest_for, sign, verify_manifest
from cleanroom.errors import CryptoError, StorageError
from cleanroom.report.content import Report
from cleanroom.report.html import render_html, render_json
from cleanroom.spec.models import CollaborationSpec
from cleanroom.storage.s3 import S3ObjectStore

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
HTML_OBJECT, JSON_OBJECT = "report.html.age", "report.json.age"


@dataclass(frozen=True)
class SealedReport:
    run_id: str
    objects: dict[str, bytes]  # ciphertexts by name
    manifest: bytes
    signature: bytes

    def files(self) -> dict[str, bytes]:
        return {**self.objects, MANIFEST: self.manifest, SIGNATURE: self.signature}


def seal_report(report: Report, spec: CollaborationSpec, signing_key: Ed25519PrivateKey) -> SealedReport:
    """Encrypt HTML and JSON to every approver (age) and sign a manifest of the ciphertexts."""
    recipients = [a.public_key for a in spec.approvers]
    objects = {
        HTML_OBJECT: encrypt_for(render_html(report), recipients),
        JSON_OBJECT: encrypt_for(render_json(report), recipients),
    }
    metadata = {
        "collaboration": report.collaboration,
        "run_id": report.run_id,
        "spec_sha256": report.spec_sha256,
        "created_at": report.created_at,
        "recipients": [a.name for a in spec.approvers],
        "format": "age-v1 (X25519), one stanza per approver",
    }
    manifest = manifest_for(objects, metadata)
    return SealedReport(report.run_id, objects, manifest, sign(manifest, signing_key))


def archive(sealed: SealedReport, archive_root: Path) -> Path:
    """Keep the ciphertexts and signed manifest locally; written beside, then renamed into place."""
    final = archive_root / sealed.run_id
    partial = archive_root / f".{sealed.run_id}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, data in sealed.files().items():
        (partial / name).write_bytes(data)
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return final


def upload(sealed: SealedReport, store: S3ObjectStore, bucket: str, prefix: str) -> dict[str, str]:
    """Put every file under prefix/run_id/; return name -> s3 URI."""
    store.ensure_bucket(bucket)
    return {
        name: store.put(bucket, f"{prefix}/{sealed.run_id}/{name}", data) for name, data in sealed.files().items()
    }


def verify_delivery(sealed: SealedReport, store: S3ObjectStore, spec: CollaborationSpec) -> SealedReport:
    """Fetch every uploaded file back through a presigned URL and check the signed manifest."""
    bucket, prefix = spec.reporting.bucket, spec.reporting.prefix
    fetched = {
        name: store.fetch_presigned(store.presigned_get_url(bucket, f"{prefix}/{sealed.run_id}/{name}"))
        for name in sealed.files()
    }
    objects = {name: fetched[name] for name in sealed.objects}
    verify_manifest(fetched[MANIFEST], fetched[SIGNATURE], spec.reporting.signing_public_key, objects)
    return SealedReport(sealed.run_id, objects, fetched[MANIFEST], fetched[SIGNATURE])


def open_report(
    files: dict[str, bytes], spec: CollaborationSpec, spec_sha256: str, identity: x25519.Identity
) -> Report:
    """Verify the manifest against the spec's signing key and hash, then decrypt the JSON report."""
    objects = {name: data for name, data in files.items() if name.endswith(".age")}
    manifest = verify_manifest(files[MANIFEST], files[SIGNATURE], spec.reporting.signing_public_key, objects)
    if manifest["spec_sha256"] != spec_sha256:
        raise CryptoError(
            "the report was produced under a different spec",
            where=f"run {manifest['run_id']}",
            fix="open it with the spec version it names (spec_sha256 in manifest.json)",
        )
    plaintext = decrypt_with(files[JSON_OBJECT], identity, f"run {manifest['run_id']}: {JSON_OBJECT}")
    return Report.model_validate(json.loads(plaintext))


def read_archive(run_dir: Path) -> dict[str, bytes]:
    names = (HTML_OBJECT, JSON_OBJECT, MANIFEST, SIGNATURE)
    missing = [n for n in names if not (run_dir / n).is_file()]
    if missing:
        raise StorageError(
            f"archive is incomplete (missing {', '.join(missing)})",
            where=str(run_dir),
            fix="run the lifecycle again",
        )
    return {name: (run_dir / name).read_bytes() for name in names}


def latest_run(archive_root: Path) -> Path:
    runs = sorted(p for p in archive_root.glob("*") if p.is_dir() and not p.name.startswith("."))
    if not runs:
        raise StorageError("no archived report yet", where=str(archive_root), fix="run `make demo` first")
    return runs[-1]
