"""Per-environment settings (pydantic-settings, prefix CLEANROOM_), read by the coordinator and by
every party node; per-run values are flow parameters."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cleanroom.errors import ConfigurationError

PREFIX = "CLEANROOM_"
# Read elsewhere, not settings: the node's config and process for its sessions (set by `cleanroom node
# start`), the interpreter for setup (infra/bootstrap.sh), keeping the end-to-end test hosts after a failure.
OTHER_VARIABLES = {"CLEANROOM_NODE_CONFIG", "CLEANROOM_NODE_PID", "CLEANROOM_PYTHON", "CLEANROOM_E2E_KEEP"}


class Settings(BaseSettings):
    """Everything an environment (local demo, CI, AWS) changes."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid")

    def __init__(self, **values: object) -> None:
        check_environment()
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise settings_error(exc) from None

    @field_validator("s3_endpoint_url")
    @classmethod
    def _endpoint_is_a_url(cls, value: str | None) -> str | None:
        if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname):
            raise ValueError("not an http(s) URL with a host, e.g. https://minio.example:9000")
        return value

    workspace: Path = Path("var")
    # The consortium's object store (reports and the exchange between nodes): moto on loopback in the
    # demo (started for it), MinIO or AWS by endpoint.
    s3_endpoint_url: str | None = None
    s3_region: str = "eu-central-1"
    aws_access_key_id: SecretStr = SecretStr("cleanroom-local")
    aws_secret_access_key: SecretStr = SecretStr("cleanroom-local-secret")
    signing_key_file: Path | None = None  # default: <workspace>/keys/signing/report-signing.pem
    # Development only: players and the secure client talk plaintext gRPC (same topology, no TLS); the
    # report says so on its first line. Every node and the coordinator must agree.
    dev_plaintext_players: bool = False
    listen_host: str = "0.0.0.0"  # where the secure client's TLS terminator accepts players (port: the spec's)
    player_start_timeout: float = 180.0
    step_timeout: float = 900.0  # a party step (or message) that takes longer fails the run, naming the party
    node_offline_after: float = 20.0  # a node whose worker sent no heartbeat for this long is offline

    @property
    def runs_root(self) -> Path:
        return self.workspace / "runs"

    @property
    def archive_root(self) -> Path:
        return self.workspace / "archive"

    @property
    def drafts_root(self) -> Path:
        """Draft reports awaiting (or refused) approval: never published from here."""
        return self.workspace / "drafts"

    @property
    def standing_approvals_root(self) -> Path:
        """Approvers' signed standing approvals (`cleanroom approve --standing`), one file each."""
        return self.workspace / "approvals"

    @property
    def history_file(self) -> Path:
        return self.workspace / "history" / "kpis.jsonl"

    @property
    def keys_root(self) -> Path:
        return self.workspace / "keys"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.keys_root / "signing" / "report-signing.pem"

    @property
    def coordinator_keys(self) -> Path:
        """The coordinator's age identity and TLS certificate and key."""
        return self.keys_root / "coordinator"

    @property
    def locks_root(self) -> Path:
        return self.workspace / "locks"


def settings_error(exc: ValidationError) -> ConfigurationError:
    """Every bad setting at once, by its variable name and the value it has (an empty or non-numeric
    timeout used to end in pydantic's traceback)."""
    problems = []
    for error in exc.errors():
        name = PREFIX + "_".join(str(part) for part in error["loc"]).upper()
        shown = "empty" if error.get("input") == "" else f"'{error.get('input')}'"
        if "secret" in name.lower() or "key" in name.lower():
            shown = "set"  # never echo a credential
        problems.append(f"{name} is {shown}: {error['msg'].removeprefix('Value error, ')}")
    return ConfigurationError(
        "; ".join(problems), where="environment", fix="correct or unset it (the README lists each setting)"
    )


def check_environment() -> None:
    """A mistyped setting must not be ignored (`CLEANROOM_S3_ENDPOINT` silently gave a throwaway
    store): every CLEANROOM_ variable is a setting or one of the few read elsewhere. Names all at once."""
    known = {PREFIX + name.upper() for name in Settings.model_fields} | OTHER_VARIABLES
    unknown = sorted(name for name in os.environ if name.startswith(PREFIX) and name not in known)
    if unknown:
        close = {name: difflib.get_close_matches(name, known, n=1) for name in unknown}
        guesses = [f"{name} (did you mean {close[name][0]}?)" if close[name] else name for name in unknown]
        raise ConfigurationError(
            f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(guesses)}",
            where="environment",
            fix=f"unset or correct it; the settings are {', '.join(sorted(known - OTHER_VARIABLES))}",
        )
