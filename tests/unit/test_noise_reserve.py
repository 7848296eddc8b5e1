"""A compute party's noise drawn ahead of its runs: every draw goes to one run only, however the runs
interleave; a run takes what the reserve holds and draws the rest; the node's keeper and `cleanroom
node draw-noise` reserve what the next run of each signed spec may take, and a run then draws nothing."""

from __future__ import annotations

import itertools
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cleanroom.node import registry
from cleanroom.node.config import Node
from cleanroom.node.noise_keeper import missing, planned, reserve_of
from cleanroom.privacy import noise_reserve
from cleanroom.privacy.noise_reserve import NoiseReserve
from cleanroom.recommend.statistics_noise import run_needs
from flows.cli import app
from tests.conftest import home
from tests.unit.test_joint_epochs import scalable_spec

SCALE = 3.5


@pytest.fixture()
def numbered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Draws that are all different (0, 1, 2, ...), so a draw handed out twice would show."""
    counter = itertools.count()
    lock = threading.Lock()

    def draw(scale: float, count: int) -> np.ndarray:
        with lock:
            return np.array([next(counter) for _ in range(count)], dtype=np.int64)

    monkeypatch.setattr(noise_reserve, "draw", draw)


def test_a_run_takes_the_reserve_first_and_no_draw_twice(tmp_path: Path, numbered: None) -> None:
    reserve = NoiseReserve(tmp_path / "noise", chunk=1000)
    assert reserve.fill(SCALE, 2500) == 2500 and reserve.available(SCALE) == 2500
    first, ready = reserve.take(SCALE, 1200, tmp_path / "run-1")
    assert ready == 1200 and reserve.available(SCALE) == 1300  # the unused tail went back
    second, ready = reserve.take(SCALE, 2000, tmp_path / "run-2")
    assert ready == 1300 and reserve.available(SCALE) == 0  # the rest drawn in the run
    handed = np.concatenate([first, second])
    assert handed.size == 3200 and np.unique(handed).size == 3200
    assert np.isin(np.arange(2500), handed).all()  # the reserve's draws were all used
    assert not list((tmp_path / "run-1").iterdir()) and not list((tmp_path / "run-2").iterdir())
    assert reserve.available(2 * SCALE) == 0  # another scale has its own draws
    assert (tmp_path / "noise").stat().st_mode & 0o777 == 0o700  # no other user reads a party's noise


def test_runs_at_the_same_time_never_share_a_draw(tmp_path: Path, numbered: None) -> None:
    reserve = NoiseReserve(tmp_path / "noise", chunk=300)
    reserve.fill(SCALE, 6000)
    taken: dict[int, tuple[np.ndarray, int]] = {}

    def run(index: int) -> None:
        taken[index] = reserve.take(SCALE, 700, tmp_path / f"run-{index}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    handed = np.concatenate([values for values, _ in taken.values()])
    assert handed.size == 5600 and np.unique(handed).size == 5600
    rest = np.concatenate([np.fromfile(chunk, dtype="<i8") for chunk in reserve.chunks(SCALE)])
    assert not np.isin(rest, handed).any()
    ready = sum(ready for _, ready in taken.values())
    assert rest.size == 6000 - ready and ready >= 5000  # none lost; fresh draws only when it ran short
    assert np.isin(np.arange(6000), np.concatenate([handed, rest])).all()


def test_a_chunk_being_written_is_not_taken(tmp_path: Path, numbered: None) -> None:
    reserve = NoiseReserve(tmp_path / "noise", chunk=100)
    reserve.fill(SCALE, 100)
    (reserve.folder(SCALE) / ".half.partial").write_bytes(np.arange(50, dtype="<i8").tobytes())
    assert reserve.available(SCALE) == 100
    values, ready = reserve.take(SCALE, 150, tmp_path / "run")
    assert ready == 100 and values.size == 150
    assert (reserve.folder(SCALE) / ".half.partial").exists()


def test_the_real_sampler_fills_and_serves(tmp_path: Path) -> None:
    reserve = NoiseReserve(tmp_path / "noise", chunk=2000)
    reserve.fill(40.0, 5000)
    values, ready = reserve.take(40.0, 5000, tmp_path / "run")
    assert ready == 5000 and values.dtype == np.int64
    assert 30 < values.std() < 50 and abs(values.mean()) < 3  # a discrete Gaussian of scale 40


@pytest.fixture()
def noised_node(tmp_path: Path, small_workspace, small_spec) -> Node:
    """Harbor's node, having signed a copy of the demo spec whose scalable recommender is noised."""
    folder = tmp_path / "harbor"
    shutil.copytree(home(small_workspace, "harbor") / "keys", folder / "keys")
    shutil.copy(home(small_workspace, "harbor") / "node.yaml", folder / "node.yaml")
    spec = scalable_spec(small_spec.spec, factors=2, epochs=2, rho=0.5)
    specs = tmp_path / "spec"
    shutil.copytree(small_spec.path.parent, specs, ignore=shutil.ignore_patterns("*.yaml"))
    (specs / "noised.yaml").write_text(yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True)))
    node = Node.load(folder / "node.yaml", small_workspace)
    registry.sign(node, specs / "noised.yaml")
    registry.sign(node, small_spec.path)  # the demo's own recommender is not noised: nothing for it
    return node


def test_draw_noise_reserves_what_the_next_run_may_take(noised_node: Node, small_spec) -> None:
    spec = scalable_spec(small_spec.spec, factors=2, epochs=2, rho=0.5)
    items = len(_catalogue(small_spec))
    expected = run_needs(spec.joint_recommender, items)
    assert planned(noised_node) == expected and len(expected) == 3  # G, the S_i and the b_i
    assert planned(noised_node, runs=3) == {scale: 3 * count for scale, count in expected.items()}
    arguments = ["node", "draw-noise", "--party", "harbor", "--config", str(noised_node.config_path)]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert f"{sum(expected.values()):,} draws added" in result.output
    assert {s: reserve_of(noised_node).available(s) for s in expected} == expected and not missing(noised_node)
    again = CliRunner().invoke(app, arguments)
    assert again.exit_code == 0 and "already holds" in again.output
    wrong = CliRunner().invoke(app, ["node", "draw-noise", "--party", "alpine", "--config", arguments[-1]])
    assert wrong.exit_code != 0 and "node.yaml is for party 'harbor'" in wrong.output


def _catalogue(pinned) -> list:  # type: ignore[no-untyped-def]
    from cleanroom.spec.catalogue import load_catalogue

    return load_catalogue(pinned.path, pinned.spec)


def test_the_keeper_tops_the_reserve_up_after_a_run_took_from_it(noised_node: Node, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "cleanroom.node.noise_keeper", "--config", str(noised_node.config_path)]
    keeper = subprocess.Popen([*command, "--every", "0.2"], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while missing(noised_node):
            assert keeper.poll() is None, keeper.stderr.read() if keeper.stderr else ""
            assert time.monotonic() < deadline, "the keeper did not fill the reserve"
            time.sleep(0.2)
        scale, count = max(planned(noised_node).items(), key=lambda item: item[1])
        _, ready = reserve_of(noised_node).take(scale, count // 2, tmp_path / "run")  # a run took half
        assert ready == count // 2
        while reserve_of(noised_node).available(scale) < count:
            assert time.monotonic() < deadline, "the keeper did not top the reserve up"
            time.sleep(0.2)
        assert os_nice(keeper.pid) == 19  # it yields to runs
    finally:
        keeper.kill()
        keeper.wait()


def os_nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
