"""Nothing a run starts outlives it: folders left by a killed process are removed by the next one."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from cleanroom.node import player


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
    assert not orphan.exists() and live.is_dir() and other.is_dir()
