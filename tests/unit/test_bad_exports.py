"""Every kind of bad export stops that party with one line naming party, file, column and fix, never
quoting a cell, and leaving nothing prepared behind."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from cleanroom.errors import DataContractError
from cleanroom.party.preparation import prepare_party
from cleanroom.party.versions import versions
from tests.reliability import CLEAR, cli_outcome, input_outcome
from tests.unit.test_preparation import edit_csv, harbor  # noqa: F401 - fixture

pytestmark = pytest.mark.reliability  # `make check-reliability` (tests/reliability.py)

SECRET = "cell-value-7781"

MISSING = "missing column(s) an approved analysis needs: "


def _drop_column(home: Path) -> None:
    pl.read_csv(home / "raw/transactions.csv", infer_schema=False).drop("quantity").write_csv(
        home / "raw/transactions.csv"
    )


def _extra_column(home: Path) -> None:
    edit_csv(home / "raw/customers.csv", pl.lit(SECRET).alias("loyalty_tier"))


def _wrong_type(home: Path) -> None:
    edit_csv(home / "raw/transactions.csv", (pl.lit("x-") + pl.col("quantity") + SECRET).alias("quantity"))


def _unparseable_dates(home: Path) -> None:  # day-first dates where ISO was agreed
    edit_csv(
        home / "raw/customers.csv",
        pl.col("birth_date").str.to_date().dt.strftime("%d/%m/%Y").alias("birth_date"),
    )


def _future_dates(home: Path) -> None:
    later = (datetime.now(timezone.utc) + timedelta(days=400)).isoformat(timespec="seconds")
    edit_csv(home / "raw/transactions.csv", pl.lit(later).alias("purchased_at"))


def _negative_prices(home: Path) -> None:
    edit_csv(home / "raw/transactions.csv", ("-" + pl.col("unit_price_cents")).alias("unit_price_cents"))


def _negative_quantities(home: Path) -> None:
    edit_csv(home / "raw/transactions.csv", ("-" + pl.col("quantity")).alias("quantity"))


def _duplicated_keys(home: Path) -> None:
    edit_csv(home / "raw/transactions.csv", pl.col("transaction_id").str.slice(0, 6).alias("transaction_id"))


def _orphan_foreign_keys(home: Path) -> None:
    edit_csv(home / "raw/products.csv", (pl.col("gtin").str.slice(0, 12) + "0").alias("gtin"))
    # and make the renamed GTINs valid-looking but unknown to the transactions


def _mixed_encodings(home: Path) -> None:
    path = home / "raw/customers.csv"
    lines = path.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b",", " Jos\xe9,".encode("latin-1"), 1)  # one Latin-1 line in UTF-8
    path.write_bytes(b"\n".join(lines))


def _edit_line(path: Path, number: int, edit: Callable[[bytes], bytes]) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = edit(lines[number - 1])
    path.write_bytes(b"\n".join(lines))


def _extra_field(home: Path) -> None:  # polars' ComputeError used to end the party's step
    _edit_line(home / "raw/transactions.csv", 7, lambda line: line + b"," + SECRET.encode())


def _unclosed_quote(home: Path) -> None:
    _edit_line(home / "raw/customers.csv", 9, lambda line: line.replace(b",", b',"' + SECRET.encode(), 1))


def _missing_file(home: Path) -> None:
    (home / "raw/products.csv").unlink()


def _empty_file(home: Path) -> None:
    (home / "raw/products.csv").write_text("")


CASES: dict[str, tuple[Callable[[Path], None], str, str | None, str]] = {
    # name: (break it, file, column, words in the message)
    "missing file": (_missing_file, "raw/products.csv", None, "file not found"),
    "empty file": (_empty_file, "raw/products.csv", None, "file is empty"),
    "missing column": (_drop_column, "raw/transactions.csv", None, MISSING + "quantity"),
    "extra column": (_extra_column, "raw/customers.csv", None, "unexpected column(s) loyalty_tier"),
    "wrong type": (_wrong_type, "raw/transactions.csv", "quantity", "does not parse"),
    "unparseable dates": (_unparseable_dates, "raw/customers.csv", "birth_date", "does not parse"),
    "future dates": (_future_dates, "raw/transactions.csv", "purchased_at", "be_between"),
    "negative prices": (_negative_prices, "raw/transactions.csv", "unit_price_cents", "be_between"),
    "negative quantities": (_negative_quantities, "raw/transactions.csv", "quantity", "be_between"),
    "duplicated primary keys": (_duplicated_keys, "raw/transactions.csv", "transaction_id", "be_unique"),
    "orphan foreign keys": (_orphan_foreign_keys, "raw/transactions.csv", "product_id", "be_in_set"),
    "mixed encodings": (_mixed_encodings, "raw/customers.csv", None, "line 6 is not valid UTF-8"),
    "extra field": (_extra_field, "raw/transactions.csv", None, "line 7 has 8 fields, the header 7"),
    "unclosed quote": (_unclosed_quote, "raw/customers.csv", None, "line 9: a quoted field is not closed"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_export_fails_with_one_clear_line(harbor: Path, small_spec, case: str) -> None:  # noqa: F811
    breaker, file, column, words = CASES[case]
    breaker(harbor)
    with pytest.raises(DataContractError) as caught:
        prepare_party(small_spec.spec, "harbor", harbor)
    half_written = len(versions(harbor)) + len(list((harbor / "prepared").glob(".staging*")))
    assert input_outcome(f"export: {case}", caught.value, half_written) == CLEAR
    message = caught.value.one_line()
    assert message.startswith("party harbor: ") and file in message
    if column:
        assert f"column {column}" in message
    assert words in message and "fix:" in message and "\n" not in message
    assert SECRET not in message and "HA0" not in message  # no cell value, no customer number
    assert not versions(harbor) and not list((harbor / "prepared").glob(".staging*"))  # nothing half-written


def test_an_extra_field_is_caught_where_columns_are_ignored(tmp_path: Path, small_workspace, small_spec) -> None:
    """Polars checks a row's field count only when it reads every column: with a column ignored, a row
    with an extra field was cut to the header's width silently."""
    from tests.conftest import home

    alpine = tmp_path / "alpine"
    for folder in ("raw", "secrets"):
        shutil.copytree(home(small_workspace, "alpine") / folder, alpine / folder)
    assert small_spec.spec.party("alpine").data.tables["customers"].ignore_columns == ["newsletter"]
    _edit_line(alpine / "raw/kunden.csv", 4, lambda line: line + b"," + SECRET.encode())
    with pytest.raises(DataContractError) as caught:
        prepare_party(small_spec.spec, "alpine", alpine)
    assert input_outcome("export: extra field beside an ignored column", caught.value) == CLEAR
    assert "party alpine: raw/kunden.csv: line 4 has" in caught.value.one_line()
    assert SECRET not in caught.value.one_line()


def test_one_run_reports_every_problem_of_every_table(harbor: Path, small_spec) -> None:  # noqa: F811
    """It took up to four failed runs to learn a party's problems one at a time. Three tables broken at
    once: one error lists them all (no figures: it reaches the coordinator); the party's own report has
    every rule with its bound and failing rows, and quarantine/ is written although the party stopped."""
    import json

    from cleanroom.party.export_check import PROBLEMS_FILE

    _drop_column(harbor)  # transactions: cannot be checked at all
    _unparseable_dates(harbor)  # customers: most rows quarantined
    edit_csv(harbor / "raw/products.csv", (pl.col("gtin") + "x").alias("gtin"))  # products: no valid GTIN
    with pytest.raises(DataContractError) as caught:
        prepare_party(small_spec.spec, "harbor", harbor)
    message = caught.value.one_line()
    assert input_outcome("three tables broken at once", caught.value) == CLEAR
    assert message.startswith("party harbor: 3 problems in its exports: ") and message.count("— fix:") == 1
    for words in ("raw/products.csv", "raw/customers.csv, column birth_date", MISSING + "quantity"):
        assert words in message
    assert not any(ch.isdigit() for ch in message.split("problems in its exports:")[1].replace("1.0%", ""))
    report = json.loads((harbor / PROBLEMS_FILE).read_text())
    assert len(report["problems"]) == 3
    birth = next(r for r in report["rules"] if r["rule"].startswith("birth_date") or "birth_date" in r["rule"])
    assert birth["failing_rows"] > 0 and birth["rows"] > 0 and birth["bound"]
    assert sorted(p.name for p in (harbor / "quarantine").iterdir()) == ["customers.parquet", "products.parquet"]
    assert not versions(harbor)


def test_party_check_lists_every_problem_with_bounds_and_writes_nothing(
    small_workspace, small_spec, tmp_path, monkeypatch
) -> None:
    """`cleanroom party check`: the data engineer's dry run on its own node."""
    from typer.testing import CliRunner

    from flows import cli
    from flows.cli import app

    monkeypatch.setattr(cli.console, "width", 200)  # the table's rows on one line each
    from tests.conftest import home

    node = tmp_path / "harbor"
    shutil.copytree(home(small_workspace, "harbor"), node, ignore=shutil.ignore_patterns("prepared", "gx"))
    command = ["party", "check", "--spec", str(small_spec.path), "--config", str(node / "node.yaml")]
    good = CliRunner().invoke(app, command)
    assert good.exit_code == 0 and "no rule fails on any row" in good.output and "ready 3 exports" in good.output
    _negative_quantities(node)
    _drop_column_from(node / "raw/products.csv", "category")
    before = sorted(p.relative_to(node) for p in node.rglob("*"))
    bad = CliRunner().invoke(app, command)
    assert cli_outcome("party check of two broken exports", bad.exit_code, bad.output) == CLEAR
    assert "2 problems in its exports" in bad.output and MISSING + "category" in bad.output
    assert "transactions.quantity:expect_column_values_to_be_between" in bad.output and "1 to" in bad.output
    assert sorted(p.relative_to(node) for p in node.rglob("*")) == before  # nothing written


def _drop_column_from(path: Path, column: str) -> None:
    pl.read_csv(path, infer_schema=False).drop(column).write_csv(path)
