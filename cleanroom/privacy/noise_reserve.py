"""A compute party's reserve of discrete Gaussian noise, drawn ahead of its runs.

The scalable recommender's statistics need one draw per entry per epoch (11.2 M at retail scale, over two
minutes of OpenDP's sampler on one core): drawing them in the run would dominate each epoch. Noise does
not depend on the data, so a node draws it while idle (`cleanroom node draw-noise`, or the keeper `node
start` runs at the lowest CPU priority) and a run takes it ready.

Every draw is used once. A run claims whole chunk files by renaming them into a folder of its own
(atomic: two runs never claim the same chunk), reads them and deletes them; the unused tail of its last
chunk goes back as a new chunk (nobody else saw it). What the reserve lacks is drawn in the run. The
reserve lives in the party's workspace and is as secret as its data: whoever knew a party's noise could
take it back out of a released sum.

    noise/scale-<scale>/<random>.i64   int64 little-endian draws at one discrete Gaussian scale
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cleanroom.privacy.calibration import draw
from cleanroom.whole_files import write_whole_file

NOISE_DIR = Path("noise")
CHUNK = 1_000_000  # draws per file: 8 MB, about 12 s of sampling
SUFFIX = ".i64"


@dataclass(frozen=True)
class NoiseReserve:
    root: Path
    chunk: int = CHUNK

    def folder(self, scale: float) -> Path:
        return self.root / f"scale-{scale!r}"  # repr round-trips: the run and the keeper name it alike

    def chunks(self, scale: float) -> list[Path]:
        return sorted(self.folder(scale).glob(f"*{SUFFIX}"))

    def available(self, scale: float) -> int:
        return sum(_size(chunk) for chunk in self.chunks(scale))

    def fill(self, scale: float, count: int, progress: Callable[[int], object] | None = None) -> int:
        """Draw until the reserve holds at least `count` draws at `scale`; returns how many were drawn."""
        drawn = 0
        while (missing := count - self.available(scale)) > 0:
            batch = min(self.chunk, missing)
            self._put(scale, draw(scale, batch))
            drawn += batch
            if progress is not None:
                progress(batch)
        return drawn

    def take(self, scale: float, count: int, claims: Path) -> tuple[np.ndarray, int]:
        """`count` draws at `scale`, never handed out before, and how many of them came ready from the
        reserve (the rest were drawn now). `claims` is the caller's own folder (its run's)."""
        claims.mkdir(parents=True, exist_ok=True)
        parts: list[np.ndarray] = []
        held = 0
        while held < count and (claimed := self._claim(scale, claims)) is not None:
            parts.append(claimed)
            held += claimed.size
        ready = min(held, count)
        if held > count:  # the tail was never used: back to the reserve
            whole = np.concatenate(parts)
            self._put(scale, whole[count:])
            parts = [whole[:count]]
        if held < count:
            parts.append(draw(scale, count - held))
        return (np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)), ready

    def _claim(self, scale: float, claims: Path) -> np.ndarray | None:
        """One whole chunk, renamed into `claims` first (another run's rename of it fails), or None
        when none is left."""
        for chunk in self.chunks(scale):
            claimed = claims / f"{secrets.token_hex(8)}{SUFFIX}"
            try:
                chunk.rename(claimed)
            except FileNotFoundError:  # another run claimed it first
                continue
            values = np.fromfile(claimed, dtype="<i8")
            claimed.unlink()
            return values
        return None

    def _put(self, scale: float, values: np.ndarray) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)  # the party's own user only
        folder = self.folder(scale)
        folder.mkdir(exist_ok=True)
        write_whole_file(folder / f"{secrets.token_hex(8)}{SUFFIX}", values.astype("<i8").tobytes())

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _size(chunk: Path) -> int:
    try:
        return chunk.stat().st_size // 8
    except FileNotFoundError:  # claimed meanwhile
        return 0
