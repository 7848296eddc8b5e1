"""Sealed messages between consortium members: signed by the sender (Ed25519), encrypted to the
addressees (age). The signature covers the run, the message's name and the payload's hash, so a
message cannot be replayed into another run or passed off as another message."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyrage import x25519

from cleanroom.crypto.envelope import decrypt_with, encrypt_for
from cleanroom.crypto.keys import load_public_key_b64
from cleanroom.errors import CryptoError

MAGIC = b"CRX1"
CONTEXT = b"cleanroom-exchange-v1\n"
SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class Member:
    """One member's own keys: who it is, how it signs, how it opens what is addressed to it."""

    name: str
    signing_key: Ed25519PrivateKey
    identity: x25519.Identity


def seal(payload: bytes, *, run: str, name: str, sender: Member, recipients: list[str]) -> bytes:
    header = _header(run, name, sender.name, payload)
    signature = sender.signing_key.sign(CONTEXT + header)
    plaintext = MAGIC + struct.pack("<I", len(header)) + header + signature + payload
    return encrypt_for(plaintext, recipients)


def open_sealed(blob: bytes, *, run: str, name: str, sender: str, sender_key_b64: str, me: Member) -> bytes:
    """The payload, after checking it is `name` of `run` from `sender`, signed with its key."""
    where = f"message {name} of run {run}"
    plaintext = decrypt_with(blob, me.identity, where)
    if plaintext[:4] != MAGIC or len(plaintext) < 8:
        raise CryptoError("not a cleanroom message", where=where, fix="the exchange holds foreign data")
    (length,) = struct.unpack("<I", plaintext[4:8])
    header = plaintext[8 : 8 + length]
    signature = plaintext[8 + length : 8 + length + SIGNATURE_BYTES]
    payload = plaintext[8 + length + SIGNATURE_BYTES :]
    if header != _header(run, name, sender, payload):
        raise CryptoError(
            f"the message is not {name} of this run from {sender}", where=where, fix="do not use it; rerun"
        )
    try:
        load_public_key_b64(sender_key_b64).verify(signature, CONTEXT + header)
    except InvalidSignature as exc:
        raise CryptoError(
            f"signature does not verify with {sender}'s key in the spec", where=where, fix="do not use it; rerun"
        ) from exc
    return payload


def _header(run: str, name: str, sender: str, payload: bytes) -> bytes:
    fields = {"run": run, "name": name, "sender": sender, "sha256": hashlib.sha256(payload).hexdigest()}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
