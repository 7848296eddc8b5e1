"""A party's side of private set intersection, as a session on its stdin/stdout.

The party reads its own normalized join keys (prepared/join_keys.parquet, which never leave it),
draws an ephemeral scalar that exists only in this process's memory, and answers two requests: its
own blinded rows, and another party's rows blinded once more. Everything it writes is blinded.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

import polars as pl

from cleanroom.errors import DataContractError
from cleanroom.psi import wire
from cleanroom.psi.ecdh import blind_own, new_scalar, reblind

JOIN_KEYS_FILE = Path("prepared") / "join_keys.parquet"
KEY_COLUMNS = {"email": "email_key", "phone": "phone_key"}


def own_key_rows(workspace: Path, kinds: tuple[str, ...], party: str) -> list[tuple[str | None, ...]]:
    path = workspace / JOIN_KEYS_FILE
    if not path.exists():
        raise DataContractError(
            "no prepared join keys", where=f"party {party}: {JOIN_KEYS_FILE}", fix="run the preparation phase"
        )
    frame = pl.read_parquet(path, columns=[KEY_COLUMNS[k] for k in kinds])
    return list(frame.iter_rows())


def serve(
    rows: list[tuple[str | None, ...]], kinds: tuple[str, ...], requests: BinaryIO, replies: BinaryIO
) -> int:
    """Answer requests until END; returns how many requests were served."""
    scalar = new_scalar()
    served = 0
    while True:
        verb, array = wire.receive(requests)
        if verb == wire.END:
            return served
        if verb == wire.OWN:
            wire.send(replies, wire.RESULT, blind_own(rows, kinds, scalar))
        else:
            assert array is not None
            wire.send(replies, wire.RESULT, reblind(array, scalar))
        served += 1


def run(workspace: Path, party: str, kinds: tuple[str, ...]) -> int:
    rows = own_key_rows(workspace, kinds, party)
    return serve(rows, kinds, sys.stdin.buffer, sys.stdout.buffer)
