"""Encrypt report files to approvers (age), sign a manifest of the ciphertexts (Ed25519), verify, open."""

from __future__ import annotations

import hashlib
import json

import pyrage
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyrage import x25519

from cleanroom.crypto.keys import load_public_key_b64
from cleanroom.errors import CryptoError


def encrypt_for(plaintext: bytes, recipients: list[str]) -> bytes:
    """One age file with a stanza per recipient: each approver opens it with their own identity."""
    return pyrage.encrypt(plaintext, [x25519.Recipient.from_str(r) for r in recipients])


def decrypt_with(ciphertext: bytes, identity: x25519.Identity, what: str) -> bytes:
    try:
        return pyrage.decrypt(ciphertext, [identity])
    except pyrage.DecryptError as exc:
        raise CryptoError(
            "this identity is not one of the recipients (or the file is damaged)",
            where=what,
            fix="use the age identity of an approver named in the spec",
        ) from exc


def manifest_for(objects: dict[str, bytes], metadata: dict) -> bytes:
    """Canonical JSON naming each ciphertext by SHA-256; it carries metadata, never report content."""
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in sorted(objects.items())}
    return json.dumps({**metadata, "objects": digests}, sort_keys=True, separators=(",", ":")).encode()


def sign(data: bytes, key: Ed25519PrivateKey) -> bytes:
    return key.sign(data)


def verify_manifest(manifest: bytes, signature: bytes, public_key_b64: str, objects: dict[str, bytes]) -> dict:
    """Check the signature, then that every object matches its digest; return the manifest."""
    try:
        load_public_key_b64(public_key_b64).verify(signature, manifest)
    except InvalidSignature as exc:
        raise CryptoError(
            "manifest signature does not verify with the spec's signing key",
            where="report manifest",
            fix="the report was altered or signed by someone else: do not trust it",
        ) from exc
    parsed = json.loads(manifest)
    for name, data in objects.items():
        if parsed["objects"].get(name) != hashlib.sha256(data).hexdigest():
            raise CryptoError(f"{name} does not match the signed manifest", where="report", fix="fetch it again")
    return parsed
