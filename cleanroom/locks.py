"""Exclusive file locks (flock): released by the kernel when their holder dies, so a killed process
never leaves a stale lock."""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from cleanroom.errors import CleanroomError


@contextmanager
def exclusive(
    path: Path,
    timeout: float,
    busy: Callable[[float], CleanroomError],
    abort: Callable[[], str | None] | None = None,
) -> Iterator[None]:
    """Hold `path` exclusively; wait up to `timeout` seconds for another holder, then raise `busy(timeout)`.
    `abort` may end the wait early by returning a reason."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                reason = abort() if abort else None
                if reason or time.monotonic() > deadline:
                    raise busy(timeout) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
