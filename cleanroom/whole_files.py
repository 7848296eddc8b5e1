"""Files that appear whole or not at all: written beside their place as `.<name>.partial`, then renamed
over it (atomic within one file system), so a reader, a crash or a full disk never meets half of one,
and a failed write leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

from cleanroom.errors import StorageError


def write_whole_file(path: Path, data: bytes | str) -> Path:
    partial = path.with_name(f".{path.name}.partial")
    try:
        if isinstance(data, str):
            partial.write_text(data)
        else:
            partial.write_bytes(data)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def write_whole_folder(final: Path, files: dict[str, bytes], what: str) -> Path:
    """A folder of files written beside its place and renamed into it: whole or not at all (a full
    disk leaves nothing half-written; one line names the folder and the fix)."""
    partial = final.parent / f".{final.name}.partial"
    try:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name, data in files.items():
            (partial / name).write_bytes(data)
        if final.exists():
            shutil.rmtree(final)
        partial.rename(final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise StorageError(
            f"{what} could not be written ({exc.strerror or type(exc).__name__})",
            where=str(final),
            fix="free space or fix the permissions there",
        ) from exc
    return final
