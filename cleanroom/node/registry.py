"""The specs a party has signed, kept by its node: `specs/<sha256>/` holds the spec as signed, the
files it pins (the recommender's catalogue), the party's signature and the TLS trust bundle derived
from it. A run names its spec by hash only; a hash the party has not signed is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

from cleanroom.crypto import pki
from cleanroom.crypto.keys import public_key_b64
from cleanroom.errors import ConfigurationError
from cleanroom.node.config import Node
from cleanroom.spec import PinnedSpec, pin_spec
from cleanroom.spec.signatures import SpecSignature, sign_spec_hash

SPECS_DIR = Path("specs")
SPEC_FILE = "consortium.yaml"
SIGNATURE_FILE = "signature.json"
TRUSTED_FILE = "trusted.pem"


def sign(node: Node, spec_path: Path) -> SpecSignature:
    """The party approves a spec: it is checked against this node's keys, kept with the files it pins,
    and signed. Signing the same spec again is harmless."""
    pinned = pin_spec(spec_path)
    check_node_matches(node, pinned)
    folder = node.workspace / SPECS_DIR / pinned.sha256
    staging = folder.with_name(f".{pinned.sha256}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    shutil.copyfile(spec_path, staging / SPEC_FILE)
    recommender = pinned.spec.joint_recommender
    if recommender is not None:
        shutil.copyfile(
            Path(spec_path).parent / recommender.catalogue.location, staging / recommender.catalogue.location
        )
    signature = sign_spec_hash(node.party, pinned.sha256, node.member.signing_key)
    (staging / SIGNATURE_FILE).write_text(signature.model_dump_json(indent=2))
    (staging / TRUSTED_FILE).write_text(pinned.spec.trust_bundle())
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return signature


def resolve(node: Node, spec_sha256: str) -> PinnedSpec:
    """The spec a run names, if and only if this party signed it (and it is still what was signed)."""
    folder = node.workspace / SPECS_DIR / spec_sha256
    if len(spec_sha256) != 64 or not (folder / SIGNATURE_FILE).is_file():
        raise ConfigurationError(
            f"party {node.party} has not signed spec {spec_sha256[:16]}",
            where=f"party {node.party}",
            fix=f"review the spec, then run `cleanroom spec sign --party {node.party} --spec FILE "
            f"--config {node.config_path}` on its node",
        )
    pinned = pin_spec(folder / SPEC_FILE)
    signature = SpecSignature.model_validate_json((folder / SIGNATURE_FILE).read_text())
    if pinned.sha256 != spec_sha256 or signature.spec_sha256 != spec_sha256 or not signature.verifies(pinned.spec):
        raise ConfigurationError(
            f"the signed copy of spec {spec_sha256[:16]} no longer has that hash (altered, or signed under a "
            "version of cleanroom whose specs had fewer settings)",
            where=str(folder),
            fix=f"sign the agreed spec again (cleanroom spec sign --party {node.party})",
        )
    return pinned


def signatures(node: Node) -> list[SpecSignature]:
    folder = node.workspace / SPECS_DIR
    return [SpecSignature.model_validate_json(p.read_text()) for p in sorted(folder.glob(f"*/{SIGNATURE_FILE}"))]


def signature_of(node: Node, spec_sha256: str) -> SpecSignature:
    path = node.workspace / SPECS_DIR / spec_sha256 / SIGNATURE_FILE
    return SpecSignature.model_validate_json(path.read_text())


def trusted_file(node: Node, spec_sha256: str) -> Path:
    return node.workspace / SPECS_DIR / spec_sha256 / TRUSTED_FILE


def check_node_matches(node: Node, pinned: PinnedSpec) -> None:
    """This node's keys are the ones the spec declares for its party."""
    where = f"{pinned.path}: parties[{node.party}]"
    try:
        party = pinned.spec.party(node.party)
    except KeyError:
        raise ConfigurationError(
            f"the spec has no party '{node.party}'", where=str(pinned.path), fix="check node.yaml's party"
        ) from None
    if party.data is None:
        raise ConfigurationError("an observer runs no node", where=where, fix="check node.yaml's party")
    keys = node.config.keys
    if party.signing_key != public_key_b64(node.member.signing_key.public_key()):
        raise ConfigurationError(
            f"signing_key is not the public half of {node.key_path(keys.signing_key)}",
            where=where,
            fix="put this node's signing public key in the spec, or point node.yaml at the right key",
        )
    if party.public_key != str(node.member.identity.to_public()):
        raise ConfigurationError(
            f"public_key is not the recipient of {node.key_path(keys.age_identity)}",
            where=where,
            fix="put this node's age recipient in the spec, or point node.yaml at the right identity",
        )
    certificate = node.key_path(keys.tls_certificate)
    try:
        own = pki.fingerprint(certificate.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            "cannot read the TLS certificate", where=str(certificate), fix="see node.yaml"
        ) from exc
    if party.certificate is None or own != pki.fingerprint(party.certificate):
        raise ConfigurationError(
            f"certificate is not {certificate}",
            where=where,
            fix="pin this node's certificate in the spec (cleanroom keys issue printed it)",
        )
