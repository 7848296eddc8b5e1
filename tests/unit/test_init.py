"""`cleanroom init`: a new consortium's folder whose spec validates, with every key where its owner's
tools look for it, and every mistake in the arguments named at once with nothing written."""

from __future__ import annotations

import stat

import pytest
from typer.testing import CliRunner

from cleanroom.node.config import Node
from cleanroom.spec import pin_spec
from flows.cli import app
from tests.reliability import CLEAR, cli_outcome

runner = CliRunner()
ARGS = ["--collaboration", "baltic-grocers", "--compute", "riga", "--compute", "tallinn", "--compute", "vilnius"]


def test_init_scaffolds_a_consortium_that_checks_and_says_what_next(tmp_path) -> None:
    folder = tmp_path / "baltic"
    result = runner.invoke(
        app, ["init", str(folder), *ARGS, "--input", "kaunas", "--approver", "ana@riga", "--currency", "GBP"]
    )
    assert result.exit_code == 0, result.output
    assert "cleanroom inspect" in result.output and "cleanroom party check" in result.output
    pinned = pin_spec(folder / "consortium.yaml")
    spec = pinned.spec
    assert [p.name for p in spec.data_parties] == [
        "riga",
        "tallinn",
        "vilnius",
        "kaunas",
    ] and spec.currency == "GBP"
    for party in spec.data_parties:
        node = Node.load(folder / "parties" / party.name / "node.yaml")
        assert node.member.name == party.name  # its keys load and are the spec's
        key = folder / "parties" / party.name / "secrets" / "pseudonym.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    keys = {p.read_text() for p in folder.glob("parties/*/secrets/pseudonym.key")}
    assert len(keys) == 1 and not list(folder.glob("operator/**/pseudonym.key"))  # the parties' secret only
    assert (folder / "approvers" / "ana.age").is_file()
    assert (folder / "operator" / "keys" / "signing" / "report-signing.pem").is_file()

    check = runner.invoke(
        app,
        [
            "party",
            "check",
            "--spec",
            str(folder / "consortium.yaml"),
            "--config",
            str(folder / "parties/riga/node.yaml"),
        ],
    )
    assert check.exit_code == 2 and "3 problems" in check.output and "file not found" in check.output

    again = runner.invoke(app, ["init", str(folder), *ARGS, "--approver", "ana@riga"])
    assert again.exit_code == 2 and "never overwritten" in again.output


@pytest.mark.reliability
def test_init_names_every_mistake_at_once_and_writes_nothing(tmp_path) -> None:
    folder = tmp_path / "bad"
    result = runner.invoke(
        app,
        [
            "init",
            str(folder),
            "--collaboration",
            "Bad Name",
            "--compute",
            "riga",
            "--compute",
            "riga",
            "--approver",
            "bo@nowhere",
        ],
    )
    assert cli_outcome("init with four mistakes", result.exit_code, result.output) == CLEAR
    for words in ("not a name: Bad Name", "needs exactly 3", "distinct", "undeclared parties: bo@nowhere"):
        assert words in result.output
    assert not folder.exists() and not list(tmp_path.iterdir())
