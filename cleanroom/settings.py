"""Per-environment settings (pydantic-settings, prefix CLEANROOM_) and the one composition root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from cleanroom.party.host import LocalPartyHost


class Settings(BaseSettings):
    """Everything an environment (local demo, CI, AWS) changes; per-run values are flow parameters."""

    model_config = SettingsConfigDict(env_prefix="CLEANROOM_", extra="forbid")

    workspace: Path = Path("var")
    # Empty endpoint: start moto's S3 server on loopback. Set it for MinIO or AWS.
    s3_endpoint_url: str | None = None
    s3_region: str = "eu-central-1"
    aws_access_key_id: SecretStr = SecretStr("cleanroom-local")
    aws_secret_access_key: SecretStr = SecretStr("cleanroom-local-secret")
    signing_key_file: Path | None = None  # default: <workspace>/keys/signing/report-signing.pem
    allow_insecure_randomness: bool = False  # development only; the report says so on its first line
    player_start_timeout: float = 180.0

    @property
    def parties_root(self) -> Path:
        return self.workspace / "parties"

    @property
    def runs_root(self) -> Path:
        return self.workspace / "runs"

    @property
    def archive_root(self) -> Path:
        return self.workspace / "archive"

    @property
    def history_file(self) -> Path:
        return self.workspace / "history" / "kpis.jsonl"

    @property
    def keys_root(self) -> Path:
        return self.workspace / "keys"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.keys_root / "signing" / "report-signing.pem"


@dataclass(frozen=True)
class Adapters:
    settings: Settings
    party_host: LocalPartyHost


def build_adapters(settings: Settings | None = None) -> Adapters:
    """The composition root: every adapter is built here from one Settings object."""
    settings = settings or Settings()
    return Adapters(settings=settings, party_host=LocalPartyHost(settings.parties_root))
