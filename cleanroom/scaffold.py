"""Keys, certificates and folders for a consortium's members, in the places each one's tools look:
shared by `make demo` (one machine, loopback endpoints) and `cleanroom init` (a new consortium).

    <operator>/keys/ca/                  the consortium CA (ca.key never leaves the operator)
    <operator>/keys/coordinator/         the coordinator's age identity, TLS certificate and key
    <operator>/keys/signing/             the report-signing key (Ed25519)
    <approvers>/<name>.age               each approver's age identity (handed to that person)
    <approvers>/<name>.signing.pem       each approver's Ed25519 key: signs their release decisions
    <nodes>/<party>/                     each retailer's node folder: node.yaml, keys/, secrets/, raw/
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from cleanroom.crypto.keys import new_age_identity, new_pseudonym_key, new_signing_key, write_private
from cleanroom.crypto.pki import CA_CERT, init_ca, issue_certificate
from cleanroom.network.topology import COORDINATOR
from cleanroom.node.config import NodeConfig, NodeKeys

NODE_CONFIG = "node.yaml"


def fill_member_keys(
    raw: dict,
    *,
    keys_root: Path,
    nodes_root: Path,
    approvers_root: Path,
    signing_key: Path,
    endpoint: Callable[[str], str],
    listen_host: str = "0.0.0.0",
) -> None:
    """Every member's keys into a spec's raw mapping (the private halves into their places): the CA,
    each party's node folder with its node.yaml, the coordinator's, each approver's, the report signing
    key. `endpoint(member)` gives the host:port each node (and the coordinator) serves at."""
    ca = keys_root / "ca"
    init_ca(ca, raw["collaboration"])
    raw["secure_computation"]["ca_certificate"] = (ca / CA_CERT).read_text()
    for party in raw["parties"]:
        home = nodes_root / party["name"]
        node_keys = NodeKeys()
        party["public_key"] = new_age_identity(home / node_keys.age_identity)
        if party["role"] == "observer":
            continue
        party["signing_key"] = new_signing_key(home / node_keys.signing_key)
        party["certificate"] = issue(ca, party["name"], home / node_keys.tls_certificate, home / node_keys.tls_key)
        party["endpoint"] = endpoint(party["name"])
        config = NodeConfig(party=party["name"], listen_host=listen_host)
        (home / NODE_CONFIG).write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    coordinator = keys_root / "coordinator"
    raw["coordinator"] = {
        "public_key": new_age_identity(coordinator / "coordinator.age"),
        "endpoint": endpoint(COORDINATOR),
        "certificate": issue(ca, COORDINATOR, coordinator / "tls.crt", coordinator / "tls.key"),
    }
    for approver in raw["approvers"]:
        approver["public_key"] = new_age_identity(approvers_root / f"{approver['name']}.age")
        approver["signing_key"] = new_signing_key(approvers_root / f"{approver['name']}.signing.pem")
    raw["reporting"]["signing_public_key"] = new_signing_key(signing_key)


def issue(ca: Path, member: str, certificate: Path, key: Path) -> str:
    issued, issued_key = issue_certificate(ca, member, certificate.parent / ".issuing")
    certificate.parent.mkdir(parents=True, exist_ok=True)
    issued.replace(certificate)
    issued_key.replace(key)
    (certificate.parent / ".issuing").rmdir()
    return certificate.read_text()


def share_pseudonym_key(homes: dict[str, Path], key_files: dict[str, str], master: Path) -> None:
    """Stand-in for the parties agreeing a key out of band: one key, copied into each party's folder
    (`key_files`: party -> its pseudonym_key_file in the spec)."""
    if not master.exists():
        new_pseudonym_key(master)
    for party, relative in key_files.items():
        target = homes[party] / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            write_private(target, master.read_text())
