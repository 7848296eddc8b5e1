"""A bubblewrap sandbox for secure-computation processes (players, the coordinator's client).

Inside: the Python runtime and the `cleanroom` package read-only, one working folder (a run's player
inputs, or nothing for the client), a folder of Unix sockets to the outside, and a network namespace
with loopback only. So a TF server, which listens on every interface whatever its cluster spec says,
is reachable only through the sockets its node's TLS terminator connects to, and a graph it runs can
read nothing but the files of its run: no raw export, prepared table, join key or secret is in view.
Works without root where unprivileged user namespaces are enabled (Debian's default).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import cleanroom
from cleanroom.errors import ConfigurationError

WORKDIR_INSIDE = Path("/sandbox/work")
SOCKETS_INSIDE = Path("/sandbox/sockets")
SYSTEM_DIRS = ("/usr", "/etc")
MERGED_USR_LINKS = ("/bin", "/lib", "/lib64", "/sbin")
PASSED_ENVIRONMENT = ("TF_CPP_MIN_LOG_LEVEL", "CLEANROOM_ALLOW_INSECURE_RANDOMNESS")


def require_tools(*tools: str) -> None:
    """Fail with one line naming every missing Debian tool (bubblewrap, stunnel4, socat)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        packages = {"bwrap": "bubblewrap", "stunnel": "stunnel4"}
        names = " ".join(packages.get(t, t) for t in missing)
        raise ConfigurationError(
            f"missing tools: {', '.join(missing)}",
            where="this host",
            fix=f"apt-get install {names} (make setup does it on the machine it runs on)",
        )


def sandboxed(command: list[str], workdir: Path, sockets: Path) -> list[str]:
    """`command` wrapped in bwrap: runs in `workdir` (seen as /sandbox/work) with `sockets` at /sandbox/sockets."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    for directory in SYSTEM_DIRS:
        args += ["--ro-bind", directory, directory]
    for link in MERGED_USR_LINKS:
        target = Path(link)
        if target.is_symlink():
            args += ["--symlink", os.readlink(target), link]
        elif target.is_dir():
            args += ["--ro-bind", link, link]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for runtime in _runtime_dirs():  # after /tmp's tmpfs, which would hide a runtime living under /tmp
        args += ["--ro-bind", str(runtime), str(runtime)]
    args += ["--bind", str(workdir.resolve()), str(WORKDIR_INSIDE)]
    args += ["--bind", str(sockets.resolve()), str(SOCKETS_INSIDE), "--chdir", str(WORKDIR_INSIDE)]
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    environment |= {name: os.environ[name] for name in PASSED_ENVIRONMENT if name in os.environ}
    for name, value in environment.items():
        args += ["--setenv", name, value]
    return [*args, "--", *command]


def _runtime_dirs() -> list[Path]:
    """The interpreter, the virtual environment and the `cleanroom` package (an editable install
    lives in the source tree, whose other folders, such as a demo workspace, must stay out of view)."""
    dirs = {Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve(), Path(cleanroom.__file__).parent.resolve()}
    return sorted(d for d in dirs if not any(d != o and d.is_relative_to(o) for o in dirs))
