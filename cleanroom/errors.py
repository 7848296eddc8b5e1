"""One error hierarchy. A user mistake renders as one line naming where, what and the fix."""

from __future__ import annotations

import errno


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
        return printable(" — ".join(parts))


def printable(text: str) -> str:
    """Control characters escaped: a line break in a spec key must not break the one line, and an
    escape sequence in a file must not reach the operator's terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


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


class ReleaseRefused(CleanroomError):
    """The approvers rejected the draft, or did not decide in time: nothing was released."""


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


# A full or read-only disk is the machine's state, not a bug: one line naming the path and the fix.
FILE_SYSTEM_FIXES = {
    errno.ENOSPC: "free space there (or point CLEANROOM_WORKSPACE / the node's workspace at a larger disk)",
    errno.EDQUOT: "raise this user's quota or free space there",
    errno.EROFS: "mount it writable",
    errno.EACCES: "let this user write there",
}


def file_system_error(exc: OSError) -> StorageError | None:
    """The one line for a file-system condition (disk full, quota, read-only, permission); None for
    anything else."""
    fix = FILE_SYSTEM_FIXES.get(exc.errno or 0)
    if fix is None:
        return None
    return StorageError(exc.strerror or str(exc), where=str(exc.filename or "workspace"), fix=fix)
