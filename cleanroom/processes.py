"""Child processes that never outlive their owner: started in their own process group with a
parent-death signal, stopped by group (TERM, then KILL)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:  # runs in the child between fork and exec
    os.setpgid(0, 0)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed: it would never come
        os._exit(1)


def die_with_parent(ancestor: int | None = None) -> None:
    """Have the calling process killed when its parent dies (a flow run when its worker dies). The
    signal only covers a parent that dies after this call: a process that starts slowly (a flow run
    importing Prefect) and whose `ancestor` is already gone exits now instead of living on orphaned."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if ancestor is not None and not process_alive(ancestor):
        os._exit(1)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def start_process(
    args: list[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = None,
) -> subprocess.Popen:
    """Start `args` with its output appended to `log`; it is killed if this process dies. Start long-lived
    children from the main thread: the parent-death signal fires when the starting thread ends."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as handle:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdin=stdin,
            stdout=stdout if stdout is not None else handle,
            stderr=handle,
            preexec_fn=functools.partial(_die_with_parent, os.getpid()),
        )


def stop_processes(processes: list[subprocess.Popen], grace: float = 10.0) -> None:
    """TERM every process group, wait up to `grace` seconds, then KILL what is left."""
    for process in processes:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free right now (all probes held open at once, so none repeats)."""
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind((host, 0))
        return [int(probe.getsockname()[1]) for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def port_open(address: str, timeout: float = 0.2) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as probe:
        probe.settimeout(timeout)
        return probe.connect_ex((host, int(port))) == 0


def port_listening(port: int) -> bool:
    """Whether a TCP socket listens on `port` in this network namespace (read from /proc, so a TLS
    terminator is not probed with a plaintext connection)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                return True
    return False


def unix_socket_open(path: Path, timeout: float = 0.2) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(timeout)
        return probe.connect_ex(str(path)) == 0
