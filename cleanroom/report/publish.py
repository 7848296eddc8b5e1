"""Seal a report for the approvers, archive it locally (first, atomically), publish it to the store
(a step of its own, retried, and repeated by `cleanroom publish`), and open it again."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyrage import x25519

from cleanroom.crypto.envelope import decrypt_with, encrypt_for, manifest_for, sign, verify_manifest
from cleanroom.errors import CryptoError, StorageError
from cleanroom.locks import exclusive
from cleanroom.report.content import Report
from cleanroom.report.html import render_html, render_json
from cleanroom.spec.models import CollaborationSpec
from cleanroom.storage.s3 import S3ObjectStore
from cleanroom.whole_files import write_whole_file, write_whole_folder

MANIFEST, SIGNATURE = "manifest.json", "manifest.sig"
HTML_OBJECT, JSON_OBJECT = "report.html.age", "report.json.age"
# Beside the archived files, never uploaded: where the run is to be published, and (once it was) where.
DESTINATION, PUBLISHED, PUBLISH_LOCK = "destination.json", "published.json", ".publishing.lock"
RETRY_BACKOFF_SECONDS = 2.0


@dataclass(frozen=True)
class SealedReport:
    run_id: str
    objects: dict[str, bytes]  # ciphertexts by name
    manifest: bytes
    signature: bytes

    def files(self) -> dict[str, bytes]:
        return {**self.objects, MANIFEST: self.manifest, SIGNATURE: self.signature}


def seal_report(
    report: Report,
    spec: CollaborationSpec,
    signing_key: Ed25519PrivateKey,
    recipients: dict[str, str] | None = None,
    metadata: dict | None = None,
) -> SealedReport:
    """Encrypt HTML and JSON to each recipient (age; by default the approvers) and sign a manifest of
    the ciphertexts, carrying the plaintexts' hashes so a draft and its release can be matched."""
    recipients = recipients or {a.name: a.public_key for a in spec.approvers}
    html, json_report = render_html(report), render_json(report)
    objects = {
        HTML_OBJECT: encrypt_for(html, list(recipients.values())),
        JSON_OBJECT: encrypt_for(json_report, list(recipients.values())),
    }
    content = {"html": hashlib.sha256(html).hexdigest(), "json": hashlib.sha256(json_report).hexdigest()}
    manifest_metadata = {
        "collaboration": report.collaboration,
        "run_id": report.run_id,
        "spec_sha256": report.spec_sha256,
        "created_at": report.created_at,
        "recipients": list(recipients),
        "content_sha256": content,
        "format": "age-v1 (X25519), one stanza per recipient",
        **(metadata or {}),
    }
    manifest = manifest_for(objects, manifest_metadata)
    return SealedReport(report.run_id, objects, manifest, sign(manifest, signing_key))


@dataclass(frozen=True)
class Destination:
    """Where a run's report is published: the spec's bucket and prefix, and the key its manifest must
    verify under. Kept with the archived run, so a later `cleanroom publish` needs no spec."""

    bucket: str
    prefix: str
    signing_public_key: str

    @classmethod
    def of(cls, spec: CollaborationSpec) -> Destination:
        return cls(spec.reporting.bucket, spec.reporting.prefix, spec.reporting.signing_public_key)

    def key(self, run_id: str, name: str) -> str:
        return f"{self.prefix}/{run_id}/{name}"


def archive(sealed: SealedReport, archive_root: Path, destination: Destination) -> Path:
    """The run's first durable copy: ciphertexts, signed manifest and where they are to be published,
    written into a hidden folder and renamed into place, so the archive holds a run whole or not at
    all. A run without PUBLISHED in its folder waits for upload (`unpublished_runs`)."""
    files = {**sealed.files(), DESTINATION: json.dumps(asdict(destination)).encode()}
    return write_whole_folder(archive_root / sealed.run_id, files, "the local archive")


def publish(
    run_id: str, files: dict[str, bytes], store: S3ObjectStore, destination: Destination, attempts: int = 3
) -> dict[str, str]:
    """Upload a sealed report and read it back through presigned URLs; idempotent (same keys, same
    bytes), retried with backoff while the store's errors are transient. The manifest goes last, so a
    reader never finds a manifest without everything it lists; what a failed attempt uploaded is
    removed again (best effort: the manifest is what readers look for). Returns name -> s3 URI."""
    for attempt in range(1, attempts + 1):
        try:
            uris = _upload(run_id, files, store, destination)
            _verify_delivery(run_id, files, store, destination)
            return uris
        except StorageError as exc:
            _remove_upload(run_id, files, store, destination)
            if not exc.transient or attempt == attempts:
                raise
            time.sleep(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _upload(
    run_id: str, files: dict[str, bytes], store: S3ObjectStore, destination: Destination
) -> dict[str, str]:
    store.ensure_bucket(destination.bucket)
    order = [n for n in files if n not in (MANIFEST, SIGNATURE)] + [SIGNATURE, MANIFEST]
    return {name: store.put(destination.bucket, destination.key(run_id, name), files[name]) for name in order}


def _verify_delivery(run_id: str, files: dict[str, bytes], store: S3ObjectStore, destination: Destination) -> None:
    """Fetch every uploaded file back through a presigned URL: the same bytes, and a manifest that
    verifies under the spec's signing key."""
    fetched = {
        name: store.fetch_presigned(store.presigned_get_url(destination.bucket, destination.key(run_id, name)))
        for name in files
    }
    if fetched != files:
        raise StorageError(
            "the store returned different bytes than were uploaded",
            where=f"s3://{destination.bucket}/{destination.key(run_id, '')}",
            fix="check the store; the archived copy is intact and `cleanroom publish` uploads it again",
            transient=True,
        )
    objects = {name: data for name, data in fetched.items() if name not in (MANIFEST, SIGNATURE)}
    verify_manifest(fetched[MANIFEST], fetched[SIGNATURE], destination.signing_public_key, objects)


def _remove_upload(run_id: str, files: dict[str, bytes], store: S3ObjectStore, destination: Destination) -> None:
    for name in [MANIFEST, SIGNATURE, *files]:  # the manifest first: readers look for it
        # When the store is gone, nothing readable was left without its manifest either.
        with contextlib.suppress(StorageError):
            store.delete(destination.bucket, destination.key(run_id, name))


def mark_published(run_dir: Path, uris: dict[str, str]) -> None:
    write_whole_file(run_dir / PUBLISHED, json.dumps(uris, indent=2))


def destination_of(run_dir: Path) -> Destination:
    try:
        return Destination(**json.loads((run_dir / DESTINATION).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise StorageError(
            "the archived run does not say where it is to be published",
            where=str(run_dir / DESTINATION),
            fix="it was archived before publishing was a step of its own: it was published by its run",
        ) from exc


def publish_archived(
    run_dir: Path, store: S3ObjectStore, wait: float = 0.0, again: bool = False
) -> dict[str, str]:
    """Upload an archived run and mark it published. One publisher per run at a time (a run, the next
    run's outbox pass, `cleanroom publish`): a failed attempt removes what it uploaded, which must not
    be another publisher's finished upload. Already published: its URIs, unless `again`."""

    def busy(timeout: float) -> StorageError:
        return StorageError(
            "another process is publishing this run", where=str(run_dir), fix="wait for it, then check again"
        )

    with exclusive(run_dir / PUBLISH_LOCK, wait, busy):
        if (run_dir / PUBLISHED).is_file() and not again:
            return json.loads((run_dir / PUBLISHED).read_text())
        uris = publish(run_dir.name, read_archive(run_dir), store, destination_of(run_dir))
        mark_published(run_dir, uris)
        return uris


def unpublished_runs(archive_root: Path) -> list[Path]:
    """Archived runs whose upload has not succeeded yet: the outbox."""
    return sorted(
        run.parent
        for run in archive_root.glob(f"*/{DESTINATION}")
        if not run.parent.name.startswith(".") and not (run.parent / PUBLISHED).exists()
    )


def find_archive(given: Path | None, workspace_archive: Path, spec_path: Path) -> Path:
    """The archive to read: the one given, the workspace's, or the nearest `archive/` in a folder above
    the spec (the demo's spec is var/demo/consortium.yaml, its archive var/archive)."""
    if given is not None:
        if not given.is_dir():
            raise StorageError(
                "no such archive folder", where=str(given), fix="give the folder `cleanroom run` printed"
            )
        return given
    if workspace_archive.is_dir():
        return workspace_archive
    for folder in spec_path.resolve().parents:
        if (folder / "archive").is_dir():
            return folder / "archive"
    raise StorageError(
        "no archive found",
        where=f"{workspace_archive.resolve()} and the folders above {spec_path}",
        fix="give --archive (the folder `cleanroom run` printed), or set CLEANROOM_WORKSPACE",
    )


def archived_run(archive_root: Path, run_id: str | None) -> Path:
    """The folder of an archived run, or the latest one; an unknown id names the ones there are."""
    if run_id is None:
        return latest_run(archive_root)
    run_dir = archive_root / run_id
    if run_dir.is_dir() and not run_id.startswith("."):
        return run_dir
    runs = _runs(archive_root)
    known = f"the latest are {', '.join(r.name for r in runs[-3:])}" if runs else "there is no archived run yet"
    raise StorageError(f"no archived run '{run_id}'", where=str(archive_root), fix=f"check --run ({known})")


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
    if (
        manifest.get("content_sha256", {}).get("json", hashlib.sha256(plaintext).hexdigest())
        != hashlib.sha256(plaintext).hexdigest()
    ):
        raise CryptoError(
            "the decrypted report does not match the hash in its signed manifest",
            where=f"run {manifest['run_id']}: {JSON_OBJECT}",
            fix="do not trust it; fetch it again",
        )
    return Report.model_validate(json.loads(plaintext))


def open_html(files: dict[str, bytes], identity: x25519.Identity) -> bytes:
    """The HTML report (call after `open_report` verified the manifest)."""
    return decrypt_with(files[HTML_OBJECT], identity, HTML_OBJECT)


def read_archive(run_dir: Path) -> dict[str, bytes]:
    names = (HTML_OBJECT, JSON_OBJECT, MANIFEST, SIGNATURE)
    if not run_dir.is_dir():
        archived_run(run_dir.parent, run_dir.name)  # says there is no such run, naming the latest
    missing = [n for n in names if not (run_dir / n).is_file()]
    if missing:
        raise StorageError(
            f"archive is incomplete (missing {', '.join(missing)})",
            where=str(run_dir),
            fix="run the lifecycle again",
        )
    return {name: (run_dir / name).read_bytes() for name in names}


def _runs(archive_root: Path) -> list[Path]:
    return sorted(p for p in archive_root.glob("*") if p.is_dir() and not p.name.startswith("."))


def latest_run(archive_root: Path) -> Path:
    runs = _runs(archive_root)
    if not runs:
        raise StorageError("no archived report yet", where=str(archive_root), fix="run `make demo` first")
    return runs[-1]
