"""Prepared data as immutable versions, one folder per content fingerprint.

`prepared/<fingerprint>/` is written once (staged, then renamed into place) and never changed, so a
run that pinned a version reads the same bytes however many runs prepare after it; `prepared/current`
points at the latest. Preparations of one party take turns (a lock file), which also keeps Great
Expectations' file context to one writer.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from cleanroom.errors import DataContractError
from cleanroom.locks import exclusive

PREPARED_DIR = Path("prepared")
CURRENT = "current"
MANIFEST = "manifest.json"
IN_USE_SECONDS = 24 * 3600  # a version a run touched this recently is kept for it


def version_dir(workspace: Path, fingerprint: str) -> Path:
    return workspace / PREPARED_DIR / fingerprint


def versions(workspace: Path) -> list[Path]:
    root = workspace / PREPARED_DIR
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith("."))


def is_complete(version: Path) -> bool:
    return (version / MANIFEST).is_file()


def commit_version(workspace: Path, staging: Path, fingerprint: str) -> Path:
    """Rename a staged version into place (its manifest written last) and make it current."""
    final = version_dir(workspace, fingerprint)
    if is_complete(final):
        shutil.rmtree(staging, ignore_errors=True)  # the same content is there already
    else:
        shutil.rmtree(final, ignore_errors=True)  # an interrupted earlier attempt
        staging.rename(final)
    make_current(workspace, fingerprint)
    return final


def make_current(workspace: Path, fingerprint: str) -> None:
    link = workspace / PREPARED_DIR / f".{CURRENT}.tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(fingerprint)
    link.replace(workspace / PREPARED_DIR / CURRENT)


def current_version(workspace: Path) -> Path | None:
    link = workspace / PREPARED_DIR / CURRENT
    if not link.is_symlink():
        return None
    target = version_dir(workspace, os.readlink(link))
    return target if is_complete(target) else None


def remove_unused_versions(workspace: Path, in_use: set[str]) -> list[str]:
    """Delete versions that are neither current nor pinned by a recent run; return their names."""
    current = current_version(workspace)
    removed = []
    for version in versions(workspace):
        if version == current or version.name in in_use:
            continue
        shutil.rmtree(version, ignore_errors=True)
        removed.append(version.name)
    return removed


def recently_pinned(workspace: Path, pins: Iterator[tuple[Path, str]]) -> set[str]:
    """Fingerprints pinned by run folders touched within IN_USE_SECONDS."""
    now = time.time()
    return {fingerprint for pin, fingerprint in pins if now - pin.stat().st_mtime < IN_USE_SECONDS}


def preparation_lock(workspace: Path, party: str, timeout: float = 3600) -> AbstractContextManager[None]:
    """One preparation of this party at a time; a second one waits, then finds its version ready."""
    lock = workspace / PREPARED_DIR / ".lock"
    return exclusive(
        lock,
        timeout,
        lambda waited: DataContractError(
            f"another preparation has held the lock for {waited:.0f} s",
            where=f"party {party}: {lock}",
            fix="wait for it to finish, or stop it, then run again",
        ),
    )
