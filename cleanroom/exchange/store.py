"""A run's exchange: the per-run prefix of the consortium bucket through which nodes and the
coordinator pass messages (store and forward). Every message is written once, signed by its sender and
encrypted to its addressees; the coordinator removes the prefix when the run ends, and a lifecycle
rule expires whatever a run could not remove."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from cleanroom.crypto.sealed import Member, open_sealed, seal
from cleanroom.errors import CleanroomError, PartyUnavailableError
from cleanroom.network.topology import COORDINATOR
from cleanroom.spec.models import CollaborationSpec
from cleanroom.storage.s3 import S3ObjectStore

CLOSED = "closed"  # the coordinator ended the run (done or failed): nodes stop waiting and serving


@dataclass(frozen=True)
class Directory:
    """Every member's public keys, from the spec: how to verify its messages and seal to it."""

    signing_keys: dict[str, str]  # member -> Ed25519 public key (base64)
    recipients: dict[str, str]  # member -> age recipient

    @classmethod
    def from_spec(cls, spec: CollaborationSpec) -> Directory:
        parties = spec.data_parties
        return cls(
            signing_keys={p.name: p.signing_key for p in parties if p.signing_key}
            | {COORDINATOR: spec.reporting.signing_public_key},
            recipients={p.name: p.public_key for p in parties} | {COORDINATOR: spec.coordinator.public_key},
        )


@dataclass
class RunExchange:
    store: S3ObjectStore
    bucket: str
    root: str  # "<exchange prefix>/<run id>"
    run_id: str
    me: Member
    directory: Directory
    poll_seconds: float = 2.0  # the longest pause between two looks (short waits look sooner)

    @classmethod
    def for_run(cls, store: S3ObjectStore, spec: CollaborationSpec, run_id: str, me: Member) -> RunExchange:
        return cls(
            store, spec.exchange_bucket, f"{spec.exchange.prefix}/{run_id}", run_id, me, Directory.from_spec(spec)
        )

    def key(self, name: str) -> str:
        return f"{self.root}/{name}"

    def send(self, name: str, payload: bytes, to: list[str]) -> None:
        recipients = [self.directory.recipients[member] for member in to]
        blob = seal(payload, run=self.run_id, name=name, sender=self.me, recipients=recipients)
        self.store.put_once(self.bucket, self.key(name), blob)

    def has(self, name: str) -> bool:
        return self.store.exists(self.bucket, self.key(name))

    def names(self, prefix: str) -> list[str]:
        return [key.removeprefix(self.root + "/") for key in self.store.keys(self.bucket, self.key(prefix))]

    def receive(
        self, name: str, sender: str, timeout: float, abort: Callable[[], CleanroomError | None] | None = None
    ) -> bytes:
        """Wait for `name` from `sender` and open it. Raises naming the sender when it does not come
        within `timeout` seconds, or what `abort` returns as soon as it returns an error."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            blob = self.store.get(self.bucket, self.key(name))
            if blob is not None:
                return open_sealed(
                    blob,
                    run=self.run_id,
                    name=name,
                    sender=sender,
                    sender_key_b64=self.directory.signing_keys[sender],
                    me=self.me,
                )
            problem = abort() if abort else None
            if problem is not None:
                raise problem
            if time.monotonic() > deadline:
                raise PartyUnavailableError(
                    f"no {name} within {timeout:.0f} s",
                    where=_where(sender),
                    fix="check that its node is running and reaches the object store, then run again",
                )
            time.sleep(delay)
            delay = min(delay * 1.5, self.poll_seconds)

    def closed(self) -> CleanroomError | None:
        """Why a node should stop waiting now: the coordinator closed the run (it failed elsewhere)."""
        if self.has(CLOSED):
            return PartyUnavailableError("the coordinator closed the run", where=f"run {self.run_id}")
        return None

    def close(self) -> None:
        if not self.has(CLOSED):
            self.send(CLOSED, b"", to=[p for p in self.directory.recipients if p != COORDINATOR])

    def remove(self) -> int:
        return self.store.delete_prefix(self.bucket, self.root + "/")


def _where(member: str) -> str:
    return "coordinator" if member == COORDINATOR else f"party {member}"
