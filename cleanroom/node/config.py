"""A party node's own configuration (`node.yaml`), read on the retailer's host only.

    party: northwind
    workspace: .                  # the party's folder: exports, secrets, prepared data, runs (default: here)
    listen_host: 0.0.0.0          # where the player's TLS terminator accepts peers (port: the spec's endpoint)
    keys:                         # paths relative to this file
      age_identity: keys/party.age       # opens messages sealed to the party
      signing_key: keys/signing.pem      # signs the spec hashes it approves and its messages
      tls_certificate: keys/tls.crt      # issued by the consortium CA, pinned in the spec
      tls_key: keys/tls.key

The object store and the Prefect server come from the environment (CLEANROOM_S3_*, PREFECT_API_URL),
like the coordinator's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import Field, ValidationError

from cleanroom.crypto.keys import load_age_identity, load_signing_key
from cleanroom.crypto.sealed import Member
from cleanroom.errors import ConfigurationError
from cleanroom.network.tunnels import TlsMaterial
from cleanroom.settings import Settings
from cleanroom.spec.analyses import Name
from cleanroom.spec.base import Strict
from cleanroom.spec.loader import first_error
from cleanroom.storage.s3 import S3ObjectStore
from cleanroom.strict_yaml import read_yaml_file


class NodeKeys(Strict):
    age_identity: Path = Path("keys/party.age")
    signing_key: Path = Path("keys/signing.pem")
    tls_certificate: Path = Path("keys/tls.crt")
    tls_key: Path = Path("keys/tls.key")


class NodeTimeouts(Strict):
    message_seconds: float = Field(default=600, gt=0, description="wait for another member's message")
    coordinator_silence_seconds: float = Field(default=60, gt=0, description="a player stops after this silence")
    player_start_seconds: float = Field(default=180, gt=0)
    player_max_seconds: float = Field(default=4 * 3600, gt=0, description="a player never serves longer")


class NodeConfig(Strict):
    party: Name
    workspace: Path = Path(".")
    listen_host: str = "0.0.0.0"
    keys: NodeKeys = NodeKeys()
    timeouts: NodeTimeouts = NodeTimeouts()


def load_node_config(path: Path) -> NodeConfig:
    fix = "pass --config with the path of the node's node.yaml"
    raw = read_yaml_file(Path(path), "node config", fix_missing=fix)
    if not isinstance(raw, dict):
        raise ConfigurationError("the node config must be a YAML mapping", where=str(path), fix="see README")
    try:
        return NodeConfig.model_validate(raw)
    except ValidationError as exc:
        raise first_error(Path(path), exc) from exc


@dataclass(frozen=True)
class Node:
    """One party's node: its configuration, resolved against the folder of its config file."""

    config: NodeConfig
    config_path: Path
    settings: Settings

    @classmethod
    def load(cls, config_path: Path, settings: Settings | None = None) -> Node:
        path = Path(config_path).resolve()
        return cls(load_node_config(path), path, settings or Settings())

    @property
    def party(self) -> str:
        return self.config.party

    @property
    def workspace(self) -> Path:
        return (self.config_path.parent / self.config.workspace).resolve()

    def key_path(self, relative: Path) -> Path:
        return (self.config_path.parent / relative).resolve()

    @cached_property
    def member(self) -> Member:
        keys = self.config.keys
        return Member(
            name=self.party,
            signing_key=load_signing_key(self.key_path(keys.signing_key)),
            identity=load_age_identity(self.key_path(keys.age_identity)),
        )

    def tls(self, trusted: Path) -> TlsMaterial:
        keys = self.config.keys
        return TlsMaterial(self.key_path(keys.tls_certificate), self.key_path(keys.tls_key), trusted)

    @cached_property
    def store(self) -> S3ObjectStore:
        settings = self.settings
        if not settings.s3_endpoint_url:
            raise ConfigurationError(
                "no object store configured",
                where="CLEANROOM_S3_ENDPOINT_URL",
                fix="set it to the consortium's S3 endpoint (the one the coordinator uses)",
            )
        return S3ObjectStore(
            settings.s3_endpoint_url,
            settings.s3_region,
            settings.aws_access_key_id,
            settings.aws_secret_access_key,
        )
