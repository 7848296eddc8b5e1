"""Party-side preparation: correct pre-aggregates, identifiers dropped, bad data stopped clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cleanroom.errors import DataContractError
from cleanroom.party.preparation import CATEGORY_MONTH_FILE, load_table, prepare_party
from cleanroom.spec import AnalysisKind
from tests.plaintext_oracle import plaintext_grid


def test_aggregates_match_independent_plaintext(prepared_workspace, small_spec) -> None:
    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    cells = len(analysis.categories) * analysis.months
    for party in small_spec.spec.data_parties:
        home = prepared_workspace.parties_root / party.name
        grid = np.frombuffer((home / CATEGORY_MONTH_FILE).read_bytes(), "<i8").reshape(2, cells)
        sales, customers = plaintext_grid([home / "raw"], analysis)
        assert grid[0].tolist() == sales
        assert grid[1].tolist() == customers


def test_prepared_files_hold_no_identifier(prepared_workspace, small_spec) -> None:
    home = prepared_workspace.parties_root / "harbor"
    raw = pl.read_csv(home / "raw" / "customers.csv")
    prepared = pl.read_parquet(home / "prepared" / "customers.parquet")
    assert set(prepared.columns) == {"customer_id", "age_band", "postcode_prefix", "signup_date"}
    blob = b"".join(p.read_bytes() for p in (home / "prepared").iterdir())
    for value in raw["email"].head(50).to_list() + raw["full_name"].head(50).to_list():
        assert value.encode() not in blob


@pytest.fixture()
def party_copy(tmp_path: Path, small_workspace) -> Path:
    home = tmp_path / "harbor"
    shutil.copytree(small_workspace.parties_root / "harbor" / "raw", home / "raw")
    return home


def test_missing_column_names_party_file_and_column(party_copy: Path, small_spec) -> None:
    path = party_copy / "raw" / "transactions.csv"
    pl.read_csv(path).drop("quantity").write_csv(path)
    with pytest.raises(DataContractError) as caught:
        load_table(small_spec.spec.party("harbor"), "transactions", party_copy)
    message = caught.value.one_line()
    assert "party harbor: raw/transactions.csv" in message and "quantity" in message and "fix:" in message


def test_missing_and_empty_files(party_copy: Path, small_spec) -> None:
    (party_copy / "raw" / "products.csv").unlink()
    with pytest.raises(DataContractError, match=r"products\.csv: file not found"):
        load_table(small_spec.spec.party("harbor"), "products", party_copy)
    (party_copy / "raw" / "products.csv").write_text("")
    with pytest.raises(DataContractError, match="file is empty"):
        load_table(small_spec.spec.party("harbor"), "products", party_copy)


def test_unparseable_value_is_named_without_quoting_it(party_copy: Path, small_spec) -> None:
    path = party_copy / "raw" / "transactions.csv"
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("secret-42x")).otherwise("quantity").alias("quantity")
    )
    frame.write_csv(path)
    with pytest.raises(DataContractError) as caught:
        load_table(small_spec.spec.party("harbor"), "transactions", party_copy)
    assert "secret-42x" not in caught.value.one_line()


def test_negative_price_blocks_the_party_and_reports_no_values(party_copy: Path, small_spec) -> None:
    path = party_copy / "raw" / "transactions.csv"
    frame = pl.read_csv(path)
    frame.with_columns(
        pl.when(pl.int_range(pl.len()) < 5)
        .then(-pl.col("unit_price_cents"))
        .otherwise("unit_price_cents")
        .alias("unit_price_cents")
    ).write_csv(path)
    summary = prepare_party(small_spec.spec, "harbor", party_copy)
    assert summary.status == "failed"
    assert "transactions.unit_price_cents:expect_column_values_to_be_between" in summary.failed_blocking
    assert not (party_copy / CATEGORY_MONTH_FILE).exists()
    # The summary goes to the coordinator: it holds expectation names only.
    assert str(frame["unit_price_cents"][0]) not in summary.to_json()
    assert "HA0" not in summary.to_json()
