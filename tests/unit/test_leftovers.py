"""Nothing a run starts outlives it: folders left by a killed process are removed by the next one."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from cleanroom.node import player
from tests.reliability import fault

pytestmark = pytest.mark.reliability  # `make check-reliability` (tests/reliability.py)


def test_socket_folders_of_killed_processes_are_removed_by_the_next(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(player, "SOCKETS_ROOT", tmp_path)
    killed = subprocess.Popen(["sleep", "60"])
    killed.kill()
    killed.wait()
    orphan = Path(tempfile.mkdtemp(prefix=f"cr-harbor-{killed.pid}-", dir=tmp_path))
    (orphan / "in.sock").write_text("")
    live = Path(tempfile.mkdtemp(prefix=f"cr-alpine-{os.getppid()}-", dir=tmp_path))  # pytest's parent lives
    other = tmp_path / "cr-not-ours"
    other.mkdir()
    made = player.socket_dir("coordinator")
    assert made.name.startswith(f"cr-coordinator-{os.getpid()}-") and made.is_dir()
    assert fault("socket folder of a killed process", not orphan.exists())
    assert not orphan.exists() and live.is_dir() and other.is_dir()


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _command(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGTERM"])
def test_a_killed_coordinator_leaves_no_process_behind(signal_name, tmp_path) -> None:
    """`cleanroom demo` killed while its players compute: the Prefect server, the object store, every
    node, worker, session, player, terminator and bridge it started end with it."""
    import signal
    import sys
    import time

    environment = {k: v for k, v in os.environ.items() if not k.startswith(("CLEANROOM_", "PREFECT_"))}
    environment |= {"CLEANROOM_WORKSPACE": str(tmp_path), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    demo = subprocess.Popen(
        [str(Path(sys.executable).parent / "cleanroom"), "demo", "--scale", "0.15"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not any("cleanroom.secure.player" in _command(p) for p in _descendants(demo.pid)):
            assert demo.poll() is None and time.monotonic() < deadline, "the demo never started its players"
            time.sleep(0.5)
        started = _descendants(demo.pid)
        demo.send_signal(getattr(signal, signal_name))
        demo.wait(timeout=120)
        deadline = time.monotonic() + 30
        while alive := [p for p in started if _command(p)]:
            if time.monotonic() > deadline:
                fault(f"coordinator {signal_name} while players start", False)
                raise AssertionError([_command(p)[:120] for p in alive])
            time.sleep(0.5)
        fault(f"coordinator {signal_name} while players start", True)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
