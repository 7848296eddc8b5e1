"""Each party's signature over the hash of a spec it approves: its node serves no run of a spec its
party has not signed, and the report lists the signatures. Published in the consortium bucket (they
reveal nothing but who approved which spec)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ValidationError

from cleanroom.crypto.keys import signature_verifies
from cleanroom.spec.models import CollaborationSpec
from cleanroom.storage.s3 import S3ObjectStore

CONTEXT = b"cleanroom-spec-v1\n"
PREFIX = "spec-signatures"


class SpecSignature(BaseModel):
    party: str
    spec_sha256: str
    signed_at: str
    signature: str  # base64 Ed25519 over CONTEXT + spec_sha256

    def verifies(self, spec: CollaborationSpec) -> bool:
        """Signed by the key the spec declares for this party (spec_sha256 is checked by the caller)."""
        party = next((p for p in spec.data_parties if p.name == self.party), None)
        if party is None:
            return False
        return signature_verifies(party.signing_key, self.signature, CONTEXT + self.spec_sha256.encode())


def sign_spec_hash(party: str, spec_sha256: str, key: Ed25519PrivateKey) -> SpecSignature:
    return SpecSignature(
        party=party,
        spec_sha256=spec_sha256,
        signed_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        signature=base64.b64encode(key.sign(CONTEXT + spec_sha256.encode())).decode(),
    )


def signature_key(spec_sha256: str, party: str) -> str:
    return f"{PREFIX}/{spec_sha256}/{party}.json"


def publish(store: S3ObjectStore, bucket: str, signature: SpecSignature) -> None:
    store.ensure_bucket(bucket)
    store.put(bucket, signature_key(signature.spec_sha256, signature.party), signature.model_dump_json().encode())


def collect(store: S3ObjectStore, spec: CollaborationSpec, spec_sha256: str) -> dict[str, SpecSignature | None]:
    """Every data party's valid signature of this spec, or None where it is missing or does not verify."""
    store.ensure_bucket(spec.exchange_bucket)
    found: dict[str, SpecSignature | None] = {}
    for party in spec.data_parties:
        raw = store.get(spec.exchange_bucket, signature_key(spec_sha256, party.name))
        try:
            signature = SpecSignature.model_validate(json.loads(raw)) if raw else None
        except (ValueError, ValidationError):
            signature = None
        valid = signature is not None and signature.spec_sha256 == spec_sha256 and signature.verifies(spec)
        found[party.name] = signature if valid else None
    return found
