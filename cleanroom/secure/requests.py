"""Plain data passed to and from the secure engine (no TF types, so callers need not import TF)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cleanroom.analyses.category_month_sales import GRID_FILE as PLAYER_INPUT_PATH  # the market trend's grid
from cleanroom.spec.models import Protocol

CENTS_PER_UNIT = 100.0


class GridPart(BaseModel):
    """One analysis's grid file (relative to each player's party folder) and its number of cells."""

    model_config = ConfigDict(frozen=True)

    file: str
    cells: int
    # Differential privacy: this compute party's noise for the part (int64, `cells` long), drawn on its
    # node for this run; None: the part is released without noise.
    noise_file: str | None = None


class AggregateRequest(BaseModel):
    """Secure sum of every party's [sales, customers] grid with disclosure control: the minimum group
    size and the competitor-dominance rule, both evaluated inside MPC."""

    model_config = ConfigDict(frozen=True)

    protocol: Protocol
    players: list[str]  # compute parties, in protocol order (for Pond the third is the dealer)
    # Parties whose grids are summed, when more retailers than compute parties take part: the extra
    # ones run a player that only provides its input as shares. Empty: the compute parties.
    input_parties: list[str] = []
    cells: int
    min_group_size: int
    min_contributors: int = 1  # dominance rule: retailers with sales in the cell
    max_share_percent: float = 100.0  # dominance rule: no retailer above this share of the cell
    # Where each player reads its own input. Player processes use the relative PLAYER_INPUT_PATH;
    # only the in-process engine (tests) maps names to absolute paths.
    input_paths: dict[str, str] = {}
    noise_paths: dict[str, str] = {}  # in-process tests only: compute party -> its noise for every cell
    input_file: str = PLAYER_INPUT_PATH  # which pre-aggregated grid the players read
    # Several analyses in one computation (one graph, one secure comparison): their grids, in order,
    # concatenated on each player; `cells` is then their total. Empty: `input_file` alone.
    parts: list[GridPart] = []
    # Per cell, what one unit of the dominance comparison is in the grid's integers: 100 for cents
    # (compared in euros), 1 for counts. Empty: every cell is cents.
    value_units: list[float] = []
    # False: only which cells pass is revealed, not their sums (the recommender's item support check).
    reveal_sums: bool = True

    def units(self) -> list[float]:
        return self.value_units or [CENTS_PER_UNIT] * self.cells

    def providers(self) -> list[str]:
        return self.input_parties or self.players

    def grid_files(self, party: str) -> list[GridPart]:
        if party in self.input_paths:
            return [
                GridPart(file=self.input_paths[party], cells=self.cells, noise_file=self.noise_paths.get(party))
            ]
        return self.parts or [GridPart(file=self.input_file, cells=self.cells)]

    def noised(self) -> bool:
        return bool(self.noise_paths) or any(part.noise_file for part in self.parts)


class RevealedTotals(BaseModel):
    """What the secure computation reveals: masked market totals and which cells are shown."""

    model_config = ConfigDict(frozen=True)

    sales_cents: list[int | None]  # None where the cell was suppressed
    shown: list[bool]
    contribution_consistent: dict[str, bool]  # each party: its shares reconstruct to its own input
    protocol: Protocol
    seconds: float
