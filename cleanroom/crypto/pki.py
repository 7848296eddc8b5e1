"""The consortium's TLS certificates: one CA, one certificate per party node and one for the coordinator.

The spec pins the CA certificate and every member's certificate (PEM), so a node accepts exactly the
certificates the parties signed off on; a certificate the CA issued later but the spec does not name
is refused as well. ECDSA P-256 keys: every TLS stack (stunnel on OpenSSL 3 here) speaks them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cleanroom.crypto.keys import write_private
from cleanroom.errors import ConfigurationError

CA_CERT, CA_KEY = "ca.pem", "ca.key"
CA_YEARS, MEMBER_DAYS = 5, 825


def init_ca(directory: Path, consortium: str) -> Path:
    """Create the consortium CA (key readable by its owner only); refuse to replace an existing one."""
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() or key_path.exists():
        raise ConfigurationError(
            "a CA already exists here", where=str(directory), fix="choose another --out; CAs are never replaced"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{consortium} consortium CA")])
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _key_pem(key))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path


def issue_certificate(ca_dir: Path, member: str, out_dir: Path) -> tuple[Path, Path]:
    """A certificate for one member (party name or `coordinator`), usable as TLS server and client;
    its name is both the common name and a DNS subject alternative name (what peers check)."""
    ca_cert = load_certificate((ca_dir / CA_CERT).read_text(), str(ca_dir / CA_CERT))
    try:
        ca_key = serialization.load_pem_private_key((ca_dir / CA_KEY).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            "cannot read the CA key", where=str(ca_dir / CA_KEY), fix="run `cleanroom keys init-ca` first"
        ) from exc
    cert_path, key_path = out_dir / f"{member}.crt", out_dir / f"{member}.key"
    if cert_path.exists() or key_path.exists():
        raise ConfigurationError(
            f"a certificate for {member} already exists", where=str(out_dir), fix="choose another --out"
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=MEMBER_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(member)]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    write_private(key_path, _key_pem(key))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def load_certificate(pem: str, where: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise ConfigurationError(
            "not a PEM certificate", where=where, fix="paste the certificate printed by `cleanroom keys issue`"
        ) from exc


def certificate_problem(pem: str, ca_pem: str, member: str) -> str | None:
    """Why `pem` is not a valid certificate of `member` under the CA, or None when it is."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
        ca = x509.load_pem_x509_certificate(ca_pem.encode())
    except ValueError:
        return "not a PEM certificate"
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return "not issued by the consortium CA (secure_computation.ca_certificate)"
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names or names[0].value != member:
        return f"issued to '{names[0].value if names else '?'}', not to '{member}'"
    now = _now()
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        valid = f"{certificate.not_valid_before_utc:%Y-%m-%d} to {certificate.not_valid_after_utc:%Y-%m-%d}"
        return f"not valid now (valid {valid})"
    return None


def fingerprint(pem: str) -> str:
    """SHA-256 of the certificate's DER form, as `openssl x509 -fingerprint -sha256` shows it (no colons)."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not cert_sign,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
