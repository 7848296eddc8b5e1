"""Key files: age X25519 identities (readable by the `age` tool) and Ed25519 signing keys."""

from __future__ import annotations

import base64
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pyrage import x25519

from cleanroom.errors import ConfigurationError
from cleanroom.text_files import read_text_file


def write_private(path: Path, text: str) -> None:
    """Create a key file readable by its owner only, whole or not at all (an empty key file left by a
    full disk would be read as a broken key later); never overwrite an existing key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def new_age_identity(path: Path) -> str:
    """Write a new age identity file in the age tool's format; return its public recipient."""
    identity = x25519.Identity.generate()
    recipient = str(identity.to_public())
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    write_private(path, f"# created: {created}\n# public key: {recipient}\n{identity}\n")
    return recipient


def new_pseudonym_key(path: Path) -> None:
    """Write a new 256-bit collaboration pseudonym key (hex). The parties share it among themselves,
    out of band; it never goes into the spec or to the coordinator."""
    write_private(path, secrets.token_hex(32) + "\n")


def load_age_identity(path: Path) -> x25519.Identity:
    lines = read_text_file(path, "identity file", fix_missing="pass the path of your age key").splitlines()
    keys = [line.strip() for line in lines if line.strip().startswith("AGE-SECRET-KEY-")]
    if len(keys) != 1:
        raise ConfigurationError(
            "not an age identity file (expected one AGE-SECRET-KEY-1... line)",
            where=str(path),
            fix="use the file written by `cleanroom keygen` or `age-keygen`",
        )
    try:
        return x25519.Identity.from_str(keys[0])
    except Exception as exc:  # pyrage raises its own error types for malformed keys
        raise ConfigurationError("malformed age secret key", where=str(path), fix="regenerate the key") from exc


def new_signing_key(path: Path) -> str:
    """Write a new Ed25519 private key (PKCS#8 PEM); return the public key as base64."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(path, pem.decode())
    return public_key_b64(key.public_key())


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    pem = read_text_file(path, "signing key", fix_missing="run `make demo` or `cleanroom keygen`")
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:  # TypeError: an encrypted key (we take none)
        raise ConfigurationError(
            "not a PEM private key", where=str(path), fix="use an Ed25519 PKCS#8 PEM key"
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError("not an Ed25519 key", where=str(path), fix="use an Ed25519 PKCS#8 PEM key")
    return key


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key_b64(value: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(value))


def signature_verifies(public_key_b64: str | None, signature_b64: str, message: bytes) -> bool:
    """Whether an Ed25519 signature (base64) over `message` verifies under a public key (base64);
    a malformed key or signature is simply not valid."""
    if not public_key_b64:
        return False
    try:
        load_public_key_b64(public_key_b64).verify(base64.b64decode(signature_b64), message)
    except (InvalidSignature, ValueError):
        return False
    return True
