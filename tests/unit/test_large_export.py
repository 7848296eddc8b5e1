"""A 2 GB transactions export is prepared by streaming: the preparing process never holds the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from bench.memory import run_sampled
from bench.prepare_party import PREPARE, generate_exports
from cleanroom.analyses.category_month_sales import GRID_FILE as CATEGORY_MONTH_FILE
from cleanroom.party.versions import current_version
from tests.unit.test_preparation import harbor  # noqa: F401 - fixture

pytestmark = pytest.mark.slow
COPIES = 10  # of a ~210 MB chunk with distinct transaction ids


def write_two_gigabytes(raw: Path) -> tuple[int, int]:
    """Harbor's exports with a ~2.1 GB transactions.csv; returns (bytes, expected total sales)."""
    generate_exports(raw, rows=2_500_000, customers=50_000)
    chunk = (raw / "transactions.csv").read_bytes()
    header, body = chunk.split(b"\n", 1)
    # The spec's months are Berlin months of 2025: lines late on 31 December UTC fall outside.
    in_period = (
        pl.col("purchased_at").str.to_datetime(time_zone="UTC").dt.convert_time_zone("Europe/Berlin").dt.year()
        == 2025
    )
    lines = pl.read_csv(raw / "transactions.csv").filter(in_period)
    expected = int((lines["quantity"] * lines["unit_price_cents"]).sum()) * COPIES
    with (raw / "transactions.csv").open("wb") as out:
        out.write(header + b"\n")
        for copy in range(COPIES):
            out.write(body.replace(b"HAT", f"HA{copy}".encode()))  # HAT000000001 -> HA0000000001
    return (raw / "transactions.csv").stat().st_size, expected


def test_two_gigabyte_export_streams(harbor: Path, small_spec) -> None:  # noqa: F811
    size, expected_sales = write_two_gigabytes(harbor / "raw")
    assert size > 2_000_000_000
    command = [sys.executable, *PREPARE, str(small_spec.path), "harbor", str(harbor)]
    code, peak, _ = run_sampled(command, cwd=harbor, stdout=subprocess.DEVNULL)
    assert code == 0
    version = current_version(harbor)
    assert version is not None
    grid = np.frombuffer((version / CATEGORY_MONTH_FILE).read_bytes(), "<i8").reshape(2, -1)
    sales = grid[0][: small_spec.spec.category_month_sales.grid_cells]  # units sold follow the sales
    assert int(sales.sum()) == expected_sales  # every line counted once
    # Loading the file whole takes about 1.6x its size in polars; the worker holds under 0.8x.
    assert peak.anonymous < 0.8 * size, f"peak anonymous memory {peak.anonymous / 2**30:.2f} GiB"
