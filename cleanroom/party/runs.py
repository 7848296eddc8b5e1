"""What one run leaves in a party's workspace, all under `runs/<run id>/`, so runs at the same time
never share a file:

    runs/<run>/prepared.json   the prepared version the run uses (immutable, see `versions`)
    runs/<run>/player/         its player's working directory: this run's inputs only (grids, ratings,
                               overlap values and shares); removed when the player stops
    runs/<run>/outputs/        what the player handed back to this party (its user factors)
    runs/<run>/recommender/    the interactions its evaluation needs
    runs/<run>/reports/        what the party keeps: recommendations, evaluation, market share
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cleanroom.errors import CleanroomError, ConfigurationError, DataContractError
from cleanroom.party.versions import is_complete, version_dir

RUN_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{4,32}$"
RUNS_DIR = Path("runs")
PIN_FILE = "prepared.json"


def check_run_id(run_id: str) -> str:
    """Run ids come from the coordinator and become folder names: only the product's own format."""
    if not re.match(RUN_ID_PATTERN, run_id):
        raise ConfigurationError(
            f"'{run_id[:40]}' is not a run id", where="run_id", fix="use the id the lifecycle generated"
        )
    return run_id


@dataclass(frozen=True)
class PartyRun:
    workspace: Path
    run_id: str

    def __post_init__(self) -> None:
        check_run_id(self.run_id)

    @property
    def root(self) -> Path:
        return self.workspace / RUNS_DIR / self.run_id

    @property
    def player_dir(self) -> Path:
        return self.root / "player"

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    @property
    def evaluation_dir(self) -> Path:
        return self.root / "recommender"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def create(self, player: bool = True) -> PartyRun:
        """The run's folders; without `player` for steps after the player stopped (its folder is gone
        with the run's inputs and stays gone)."""
        for folder in (*([self.player_dir] if player else []), self.outputs_dir, self.reports_dir):
            folder.mkdir(parents=True, exist_ok=True)
        return self

    def pin(self, fingerprint: str) -> None:
        self.create()
        (self.root / PIN_FILE).write_text(json.dumps({"prepared": fingerprint}))

    def wait_prepared(self, timeout: float, abort: Callable[[], CleanroomError | None]) -> Path:
        """The prepared version, once this node's preparation for the run has pinned it (a step that
        starts with it waits here)."""
        deadline = time.monotonic() + timeout
        while not (self.root / PIN_FILE).exists():
            problem = abort()
            if problem is not None:
                raise problem
            if time.monotonic() > deadline:
                raise DataContractError(
                    f"no prepared data within {timeout:.0f} s",
                    where=f"run {self.run_id}",
                    fix="see the prepare step",
                )
            time.sleep(0.2)
        return self.prepared()

    def prepared(self) -> Path:
        """The prepared version this run pinned; its steps read nothing else."""
        try:
            fingerprint = json.loads((self.root / PIN_FILE).read_text())["prepared"]
        except (OSError, ValueError, KeyError) as exc:
            raise DataContractError(
                "this run has no prepared data", where=f"run {self.run_id}", fix="run the lifecycle from the start"
            ) from exc
        version = version_dir(self.workspace, fingerprint)
        if not is_complete(version):
            raise DataContractError(
                f"prepared version {fingerprint[:12]} is gone (removed by retention?)",
                where=f"run {self.run_id}",
                fix="run the lifecycle again",
            )
        self.root.touch()  # a run in progress keeps its version from being cleaned up
        return version


def pinned_versions(workspace: Path) -> Iterator[tuple[Path, str]]:
    for pin in (workspace / RUNS_DIR).glob(f"*/{PIN_FILE}"):
        try:
            yield pin.parent, json.loads(pin.read_text())["prepared"]
        except (OSError, ValueError, KeyError):
            continue
