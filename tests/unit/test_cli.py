"""The command line: user mistakes print one line and exit 2; nothing starts for a bad spec."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from tests.conftest import small_disk, write
from tests.reliability import CLEAR, cli_outcome

runner = CliRunner()


def test_malformed_spec_fails_before_any_process(tmp_path, small_spec, monkeypatch) -> None:
    raw = yaml.safe_load(small_spec.path.read_text())
    raw["secure_computation"]["protocol"] = "spdz"
    bad = write(tmp_path / "bad.yaml", yaml.safe_dump(raw))

    def no_process(*args, **kwargs):
        raise AssertionError("a process was started for a malformed spec")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    result = runner.invoke(app, ["run", "--spec", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "secure_computation.protocol" in lines[0] and "Traceback" not in result.output


def test_check_spec_prints_hash(small_spec) -> None:
    result = runner.invoke(app, ["check-spec", str(small_spec.path)])
    assert result.exit_code == 0 and small_spec.sha256 in result.output


def test_decrypt_without_archive_is_one_line(tmp_path, monkeypatch, small_workspace) -> None:
    monkeypatch.setenv("CLEANROOM_WORKSPACE", str(tmp_path))
    result = runner.invoke(
        app, ["decrypt", "--identity", str(small_workspace.keys_root / "approvers" / "ana-lopez.age")]
    )
    assert result.exit_code == 2 and "no archive found" in result.output


def test_keygen_refuses_to_overwrite(tmp_path) -> None:
    result = runner.invoke(app, ["keygen", "age", "--out", str(tmp_path / "k.age")])
    assert result.exit_code == 0 and result.output.startswith("age1")
    again = runner.invoke(app, ["keygen", "age", "--out", str(tmp_path / "k.age")])
    assert again.exit_code == 2 and "never overwritten" in again.output


@pytest.mark.reliability
def test_a_mistyped_setting_stops_every_command_naming_it(small_spec, monkeypatch) -> None:
    """`CLEANROOM_S3_ENDPOINT` (for ..._URL) was ignored and the run used a throwaway store."""
    monkeypatch.setenv("CLEANROOM_S3_ENDPOINT", "http://store.example:9000")
    monkeypatch.setenv("CLEANROOM_WORKSPACES", "elsewhere")
    for command in (["check-spec", str(small_spec.path)], ["run", "--spec", str(small_spec.path)]):
        result = runner.invoke(app, command)
        assert cli_outcome("mistyped settings", result.exit_code, result.output) == CLEAR, result.output
        assert "CLEANROOM_S3_ENDPOINT (did you mean CLEANROOM_S3_ENDPOINT_URL?)" in result.output
        assert "CLEANROOM_WORKSPACES (did you mean CLEANROOM_WORKSPACE?)" in result.output
    monkeypatch.delenv("CLEANROOM_S3_ENDPOINT")
    monkeypatch.delenv("CLEANROOM_WORKSPACES")
    assert runner.invoke(app, ["check-spec", str(small_spec.path)]).exit_code == 0


@pytest.mark.reliability
def test_there_is_no_switch_for_insecure_randomness(small_spec, monkeypatch) -> None:
    """The development flag was read two ways and its runs failed anyway: it is gone, and setting it is
    refused like any unknown setting rather than silently ignored."""
    monkeypatch.setenv("CLEANROOM_ALLOW_INSECURE_RANDOMNESS", "1")
    result = runner.invoke(app, ["check-spec", str(small_spec.path)])
    assert cli_outcome("the removed insecure-randomness flag", result.exit_code, result.output) == CLEAR
    assert "unknown setting CLEANROOM_ALLOW_INSECURE_RANDOMNESS" in result.output


@pytest.mark.reliability
def test_a_failing_run_prints_one_line_and_no_traceback(small_spec, small_workspace, tmp_path) -> None:
    """`cleanroom run` printed Prefect's traceback (twice) and repeated "fix:" before its own line. Real
    runs in their own process: without a Prefect server, then against one with the store on a closed port."""
    import shutil
    import sys

    from cleanroom.processes import free_port
    from flows.consortium import PrefectServer

    shutil.copytree(small_workspace.keys_root, tmp_path / "keys")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLEANROOM_", "PREFECT_"))},
        "CLEANROOM_WORKSPACE": str(tmp_path),
        "CLEANROOM_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    command = [str(Path(sys.executable).parent / "cleanroom"), "run", "--spec", str(small_spec.path)]
    serverless = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=60)
    output = serverless.stdout + serverless.stderr
    assert cli_outcome("run without a Prefect server", serverless.returncode, output) == CLEAR
    assert serverless.returncode == 2 and output.startswith("error: PREFECT_API_URL: no Prefect server"), output
    server = PrefectServer(tmp_path / "server").start()
    try:
        environment["PREFECT_API_URL"] = server.api_url
        closed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    finally:
        server.stop()
    output = closed.stdout + closed.stderr
    assert cli_outcome("run with the store on a closed port", closed.returncode, output) == CLEAR, output
    assert output.count("fix:") == 1 and "error: s3://" in output and "could not be reached" in output


@pytest.mark.reliability
def test_a_full_disk_is_one_line_for_any_command(tmp_path) -> None:
    disk = tmp_path / "full"
    with small_disk(disk, 8):
        with open(disk / "filler", "wb") as filler, contextlib.suppress(OSError):
            filler.write(b"x" * 65536)
        result = runner.invoke(app, ["keygen", "signing", "--out", str(disk / "signing.pem")])
        half_written = int((disk / "signing.pem").exists())
        assert cli_outcome("keygen on a full disk", result.exit_code, result.output, half_written) == CLEAR
        assert "No space left on device — fix: free space there" in result.output
        assert not (disk / "signing.pem").exists()  # no empty key file left behind
