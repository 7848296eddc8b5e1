"""Plain data passed to and from the secure engine (no TF types, so callers need not import TF)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from cleanroom.spec.models import Protocol

# Relative to each player's working directory, which is its party's workspace.
PLAYER_INPUT_PATH = "prepared/category_month.i64"


class AggregateRequest(BaseModel):
    """Secure sum of every party's [sales, customers] grid with the minimum-group-size rule."""

    model_config = ConfigDict(frozen=True)

    protocol: Protocol
    players: list[str]  # compute parties, in protocol order (for Pond the third is the dealer)
    cells: int
    min_group_size: int
    allow_insecure_randomness: bool = False
    # Where each player reads its own input. Player processes use the relative PLAYER_INPUT_PATH;
    # only the in-process engine (tests) maps names to absolute paths.
    input_paths: dict[str, str] = {}

    def input_path(self, party: str) -> str:
        return self.input_paths.get(party, PLAYER_INPUT_PATH)


class RevealedTotals(BaseModel):
    """What the secure computation reveals: masked market totals and which cells are shown."""

    model_config = ConfigDict(frozen=True)

    sales_cents: list[int | None]  # None where the cell was suppressed
    shown: list[bool]
    contribution_consistent: dict[str, bool]  # each party: its shares reconstruct to its own input
    protocol: Protocol
    secure_randomness: bool
    seconds: float
