"""One error hierarchy. A user mistake renders as one line naming where, what and the fix."""

from __future__ import annotations


class CleanroomError(Exception):
    """Base of every error this product raises on purpose."""

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.message = message
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [f"{self.where}: {self.message}" if self.where else self.message]
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return " — ".join(parts)


class ConfigurationError(CleanroomError):
    """The collaboration spec, settings or a key file is wrong."""


class DataContractError(CleanroomError):
    """A party's data does not meet the agreed contract."""


class PartyUnavailableError(CleanroomError):
    """A party's process (player, preparation worker) could not be reached or failed."""


class SecureComputationError(CleanroomError):
    """The secure computation could not run or refused to (e.g. no secure randomness)."""


class DisclosureError(CleanroomError):
    """Something asked to reveal an output that the spec does not approve."""


class StorageError(CleanroomError):
    """The object store or the local archive failed; `transient` when trying again may succeed (the
    store unreachable or overloaded, not a refusal)."""

    def __init__(
        self, message: str, *, where: str | None = None, fix: str | None = None, transient: bool = False
    ) -> None:
        super().__init__(message, where=where, fix=fix)
        self.transient = transient


class CryptoError(CleanroomError):
    """Encryption, decryption or signature verification failed."""
