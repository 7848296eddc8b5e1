"""The release ledger: one entry per release, hash-chained, signed by the coordinator and countersigned
by every data party's node. Kept in the consortium bucket (`ledger/<collaboration>/<index>.json`, each
written once) and mirrored by the coordinator and each node in their own workspaces, so a tampered,
reordered or truncated ledger is detected by anyone holding a mirror.

An entry names what was released and why it was allowed (figure ids and the rule, never a value),
the approvals, and the hashes of the draft and the released report."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ValidationError

from cleanroom.crypto.keys import signature_verifies
from cleanroom.errors import StorageError
from cleanroom.spec.models import CollaborationSpec
from cleanroom.storage.s3 import S3ObjectStore
from cleanroom.whole_files import write_whole_file

GENESIS = "0" * 64
CONTEXT = b"cleanroom-ledger-entry-v1\n"


class ReleasedFigures(BaseModel):
    """One analysis's released figures by id (its cell indices) and the rule that allowed them."""

    analysis: str
    released: list[int]
    withheld: int
    rule: str


class LedgerEntry(BaseModel):
    index: int
    previous_sha256: str
    collaboration: str
    run_id: str
    spec_sha256: str
    released_at: str
    draft_sha256: str
    report_manifest_sha256: str
    figures: list[ReleasedFigures]
    privacy_budget_spent: dict[str, float]  # rho per analysis id
    approvals: list[dict]
    # Per analysis id, the model settings a search chose (phase 5.2) and the validation score they won by.
    model_choices: dict[str, dict] = {}

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def canonical(self) -> bytes:
        # Left out while empty: entries written before the field existed keep their hashes.
        content = self.model_dump(mode="json", exclude=set() if self.model_choices else {"model_choices"})
        return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


class SignedEntry(BaseModel):
    entry: LedgerEntry
    coordinator_signature: str
    countersignatures: dict[str, str]  # party -> base64 Ed25519 over CONTEXT + entry sha256

    @property
    def index(self) -> int:
        return self.entry.index


def sign_entry(entry: LedgerEntry, key: Ed25519PrivateKey) -> str:
    return base64.b64encode(key.sign(CONTEXT + entry.sha256().encode())).decode()


def signed_by(public_key_b64: str | None, signature: str, entry: LedgerEntry) -> bool:
    return signature_verifies(public_key_b64, signature, CONTEXT + entry.sha256().encode())


def chain_problems(entries: list[SignedEntry], spec: CollaborationSpec, first_index: int = 0) -> list[str]:
    """Everything wrong with a ledger (or its part from `first_index`), entry by entry: gaps or
    reordering (indices), a broken hash chain (an entry altered or taken out), a missing or invalid
    signature of the coordinator or of a data party (keys of this spec)."""
    problems = []
    previous = GENESIS if first_index == 0 else None
    for position, signed in enumerate(entries, start=first_index):
        entry = signed.entry
        where = f"entry {entry.index} (run {entry.run_id})"
        if entry.index != position:
            problems.append(f"{where}: found at position {position} (reordered, or an entry is missing before it)")
        if previous is not None and entry.previous_sha256 != previous:
            problems.append(f"{where}: does not chain to the entry before it (that one was altered or removed)")
        if not signed_by(spec.reporting.signing_public_key, signed.coordinator_signature, entry):
            problems.append(f"{where}: the coordinator's signature does not verify (the entry was altered)")
        for party in spec.data_parties:
            signature = signed.countersignatures.get(party.name)
            if signature is None:
                problems.append(f"{where}: not countersigned by {party.name}")
            elif not signed_by(party.signing_key, signature, entry):
                problems.append(f"{where}: {party.name}'s countersignature does not verify")
        previous = entry.sha256()
    return problems


def against_mirror(entries: list[SignedEntry], mirror: list[LedgerEntry], holder: str) -> list[str]:
    """A ledger compared with a member's mirror: every entry the member holds must be there, unchanged
    (catches truncation and re-signed rewrites that a chain check alone cannot)."""
    problems = []
    if len(entries) < len(mirror):
        problems.append(f"{len(mirror) - len(entries)} entries missing at the end, which {holder}'s mirror holds")
    for held in mirror:
        if held.index < len(entries) and entries[held.index].entry.sha256() != held.sha256():
            problems.append(f"entry {held.index} differs from {holder}'s mirror")
    return problems


def ledger_mirror(workspace: Path, collaboration: str) -> Path:
    """Where a member (the coordinator or a node) keeps its mirror of the ledger."""
    return workspace / "ledger" / collaboration


def ledger_key(collaboration: str, index: int) -> str:
    return f"ledger/{collaboration}/{index:08d}.json"


def read_store(store: S3ObjectStore, bucket: str, collaboration: str) -> list[SignedEntry]:
    """The bucket's ledger in key order (the order the chain check then judges)."""
    entries = []
    for key in sorted(store.keys(bucket, f"ledger/{collaboration}/")):
        data = store.get(bucket, key)
        if data is not None:
            entries.append(_parse(data, f"s3://{bucket}/{key}"))
    return entries


def append_to_store(store: S3ObjectStore, bucket: str, signed: SignedEntry) -> None:
    store.ensure_bucket(bucket)
    store.put_once(bucket, ledger_key(signed.entry.collaboration, signed.index), signed.model_dump_json().encode())


def read_mirror(folder: Path) -> list[SignedEntry]:
    """A workspace's mirror (`<workspace>/ledger/<collaboration>/`), in index order."""
    return (
        [_parse(path.read_bytes(), str(path)) for path in sorted(folder.glob("*.json"))] if folder.is_dir() else []
    )


def write_mirror(folder: Path, signed: SignedEntry) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_whole_file(folder / f"{signed.index:08d}.json", signed.model_dump_json(indent=2))


def _parse(data: bytes, where: str) -> SignedEntry:
    try:
        return SignedEntry.model_validate_json(data)
    except ValidationError as exc:
        raise StorageError(
            "not a ledger entry", where=where, fix="the ledger was damaged: compare it with a member's mirror"
        ) from exc


def reconcile(store: S3ObjectStore, bucket: str, collaboration: str, mirror_dir: Path) -> list[SignedEntry]:
    """The committed ledger before an append, as the coordinator agrees with it: the bucket's, which
    must hold every entry of the coordinator's mirror unchanged; entries the bucket lost and the mirror
    holds (an object store that was reset) are written back from the mirror. Raises when they differ."""
    stored, mirrored = read_store(store, bucket, collaboration), read_mirror(mirror_dir)
    if len(stored) < len(mirrored) and all(s.entry.sha256() == m.entry.sha256() for s, m in zip(stored, mirrored)):
        for missing in mirrored[len(stored) :]:
            append_to_store(store, bucket, missing)
        return mirrored
    problems = against_mirror(stored, [m.entry for m in mirrored], "the coordinator")
    if problems:
        raise StorageError(
            f"the consortium's ledger differs from the coordinator's mirror: {'; '.join(problems)}",
            where=f"s3://{bucket}/ledger/{collaboration}/",
            fix="nothing is released until it is resolved: `cleanroom ledger verify` with every member's mirror",
        )
    return stored


def released_figures(shown_by_analysis: dict[str, list[bool]], rule: str) -> list[ReleasedFigures]:
    return [
        ReleasedFigures(
            analysis=analysis,
            released=[i for i, ok in enumerate(shown) if ok],
            withheld=sum(not ok for ok in shown),
            rule=rule,
        )
        for analysis, shown in shown_by_analysis.items()
    ]
