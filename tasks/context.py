"""The coordinator's composition root and the context of one run.

Everything the coordinator talks to is built here from one Settings object: the consortium's object
store, the party nodes (deployments on their work pools), the coordinator's own keys. The coordinator
never has a path into a party's workspace: it knows parties by name, their nodes through Prefect and
their messages through the run's exchange.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from cleanroom.crypto.keys import load_age_identity, load_signing_key
from cleanroom.crypto.sealed import Member
from cleanroom.errors import ConfigurationError, StorageError
from cleanroom.exchange.store import RunExchange
from cleanroom.locks import exclusive
from cleanroom.network.topology import COORDINATOR
from cleanroom.network.tunnels import TlsMaterial
from cleanroom.privacy.budget import budget_folder
from cleanroom.release.rerun import Rerun
from cleanroom.settings import Settings
from cleanroom.spec import PinnedSpec
from cleanroom.storage.s3 import S3ObjectStore
from tasks.nodes import PartyNodes

AGE_IDENTITY, TLS_CERTIFICATE, TLS_KEY = "coordinator.age", "tls.crt", "tls.key"


@dataclass(frozen=True)
class RunContext:
    """One run of the lifecycle, as the coordinator holds it (nothing in it is party data)."""

    run_id: str
    pinned: PinnedSpec
    settings: Settings
    store: S3ObjectStore
    me: Member
    exchange: RunExchange
    nodes: PartyNodes
    rerun: Rerun | None = None  # this run repeats another, stricter (its spec copy has the adjustments)

    @property
    def run_dir(self) -> Path:
        """The coordinator's own folder for this run: logs and the TLS trust bundle, no party data."""
        return self.settings.runs_root / self.run_id

    @property
    def parties(self) -> list[str]:
        return [p.name for p in self.pinned.spec.data_parties]

    @property
    def budget_folder(self) -> Path:
        return budget_folder(self.settings.workspace, self.pinned.spec.collaboration)

    def ledger_lock(self) -> AbstractContextManager[None]:
        """Held while the ledger or the privacy budget is read and written: one run at a time."""
        busy = lambda timeout: StorageError(  # noqa: E731
            "another run is using the ledger", where="ledger", fix="wait for it and run again"
        )
        lock = self.settings.locks_root / f"ledger-{self.pinned.spec.collaboration}.lock"
        return exclusive(lock, self.settings.step_timeout, busy)

    def tls(self) -> TlsMaterial | None:
        if self.settings.dev_plaintext_players:
            return None
        trusted = self.run_dir / "trusted.pem"
        trusted.parent.mkdir(parents=True, exist_ok=True)
        trusted.write_text(self.pinned.spec.trust_bundle())
        keys = self.settings.coordinator_keys
        return TlsMaterial(keys / TLS_CERTIFICATE, keys / TLS_KEY, trusted)


def object_store(settings: Settings) -> S3ObjectStore:
    if not settings.s3_endpoint_url:
        raise ConfigurationError(
            "no object store configured: the party nodes and the coordinator exchange messages through it",
            where="CLEANROOM_S3_ENDPOINT_URL",
            fix="set it to the consortium's S3 endpoint (MinIO or AWS); `make demo` starts one on loopback",
        )
    return S3ObjectStore(
        settings.s3_endpoint_url, settings.s3_region, settings.aws_access_key_id, settings.aws_secret_access_key
    )


def coordinator_member(settings: Settings) -> Member:
    """The coordinator's keys: it signs with the report-signing key and opens what is sealed to it."""
    return Member(
        COORDINATOR,
        load_signing_key(settings.signing_key_path),
        load_age_identity(settings.coordinator_keys / AGE_IDENTITY),
    )


def open_run(
    pinned: PinnedSpec, run_id: str, settings: Settings | None = None, rerun: Rerun | None = None
) -> RunContext:
    settings = settings or Settings()
    store, me = object_store(settings), coordinator_member(settings)
    return RunContext(
        run_id=run_id,
        pinned=pinned,
        settings=settings,
        store=store,
        me=me,
        exchange=RunExchange.for_run(store, pinned.spec, run_id, me),
        nodes=PartyNodes(pinned.spec, pinned.sha256, run_id, settings.step_timeout, settings.node_offline_after),
        rerun=rerun,
    )
