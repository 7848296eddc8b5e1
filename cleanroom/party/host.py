"""Where each party's processes run. The demo hosts every party on this machine, each process with
its own party workspace as working directory; the coordinator asks by party name only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cleanroom.errors import PartyUnavailableError

RESULT_PREFIX = "CLEANROOM-RESULT "


@dataclass(frozen=True)
class LocalPartyHost:
    """Runs a party's worker and player processes on this machine, inside `root/<party>`."""

    root: Path

    def workspace(self, party: str) -> Path:
        path = self.root / party
        path.mkdir(parents=True, exist_ok=True)
        return path

    def command_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        env["GX_ANALYTICS_ENABLED"] = "False"
        return env

    def run_worker(
        self,
        party: str,
        command: str,
        spec_path: Path,
        stdin: str = "",
        timeout: float = 600,
        args: tuple[str, ...] = (),
    ) -> dict:
        """Run `python -m cleanroom.party COMMAND` for one party; return its one JSON result line."""
        process = subprocess.run(
            self._worker_command(party, command, spec_path, *args),
            cwd=self.workspace(party),
            input=stdin,
            capture_output=True,
            text=True,
            env=self.command_env(),
            timeout=timeout,
            check=False,
        )
        for line in process.stdout.splitlines():
            if line.startswith(RESULT_PREFIX):
                return json.loads(line.removeprefix(RESULT_PREFIX))
        # No result line: the worker crashed. Its stderr stays in the party's own hands (it may quote
        # data); the coordinator only learns the exit code.
        (self.workspace(party) / "logs").mkdir(exist_ok=True)
        (self.workspace(party) / "logs" / f"{command}.stderr").write_text(process.stderr)
        raise PartyUnavailableError(
            f"{command} worker exited with code {process.returncode} and no result",
            where=f"party {party}",
            fix=f"see that party's logs/{command}.stderr",
        )

    def start_session(self, party: str, command: str, spec_path: Path, *extra: str) -> subprocess.Popen:
        """Start a worker that converses over binary stdin/stdout pipes (the PSI session)."""
        log_dir = self.workspace(party) / "logs"
        log_dir.mkdir(exist_ok=True)
        log = open(log_dir / f"{command}.stderr", "ab")  # noqa: SIM115 - handed to the child
        return subprocess.Popen(
            self._worker_command(party, command, spec_path, *extra),
            cwd=self.workspace(party),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=self.command_env(),
            start_new_session=True,
        )

    @staticmethod
    def _worker_command(party: str, command: str, spec_path: Path, *extra: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "cleanroom.party",
            command,
            "--party",
            party,
            "--spec",
            str(spec_path.resolve()),
            *extra,
        ]

    def start_process(self, party: str, args: list[str], log_name: str) -> subprocess.Popen:
        """Start a long-running process (a secure-computation player) for one party."""
        log_dir = self.workspace(party) / "logs"
        log_dir.mkdir(exist_ok=True)
        log = open(log_dir / log_name, "ab")  # noqa: SIM115 - handed to the child, closed on stop
        return subprocess.Popen(
            [sys.executable, *args],
            cwd=self.workspace(party),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.command_env(),
            start_new_session=True,
        )
