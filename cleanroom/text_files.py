"""Reading a small text file someone gave us (a spec, node.yaml, a key): every way it can be unreadable
is one ConfigurationError naming the file (and, for a bad byte, its line)."""

from __future__ import annotations

from pathlib import Path

from cleanroom.errors import ConfigurationError


def read_text_file(path: Path, what: str, fix_missing: str, where: str | None = None) -> str:
    """The file's text; `where` names it in errors (default: its path)."""
    where = where or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"{what} not found", where=where, fix=fix_missing) from None
    except IsADirectoryError:
        raise ConfigurationError(f"{what} is a folder", where=where, fix=fix_missing) from None
    except PermissionError:
        raise ConfigurationError(
            f"{what} is not readable by this user", where=where, fix="give this user read access to it"
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigurationError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})", where=f"{where}:{line}", fix="save the file as UTF-8"
        ) from None
