"""Shared fixtures: a small generated consortium and settings pointing at a temporary workspace."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

from cleanroom.demo_setup import ensure_demo_workspace
from cleanroom.settings import Settings
from cleanroom.spec import PinnedSpec, pin_spec

SMALL_SCALE = 0.15  # about 200-270 customers per retailer: seconds to prepare, still suppresses cells


@pytest.fixture(scope="session")
def small_workspace(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A demo workspace with keys, spec and raw exports for three small retailers (not yet prepared)."""
    settings = Settings(workspace=tmp_path_factory.mktemp("workspace"))
    ensure_demo_workspace(settings, scale=SMALL_SCALE, seed=11)
    return settings


@pytest.fixture(scope="session")
def small_spec(small_workspace: Settings) -> PinnedSpec:
    from cleanroom.demo_setup import demo_spec_path

    return pin_spec(demo_spec_path(small_workspace))


@pytest.fixture(scope="session")
def prepared_workspace(small_workspace: Settings, small_spec: PinnedSpec) -> Settings:
    """The small workspace after every party prepared its data in its own folder."""
    from cleanroom.party.preparation import prepare_party

    for party in small_spec.spec.data_parties:
        summary = prepare_party(small_spec.spec, party.name, home(small_workspace, party.name))
        assert summary.status in ("ok", "unchanged"), summary
    return small_workspace


def home(settings: Settings, party: str) -> Path:
    """A demo retailer's node folder (its workspace)."""
    from cleanroom.demo_setup import demo_nodes_root

    return demo_nodes_root(settings) / party


def prepared(settings: Settings, party: str) -> Path:
    """The retailer's current prepared version."""
    from cleanroom.party.versions import current_version

    version = current_version(home(settings, party))
    assert version is not None, f"{party} has no prepared version"
    return version


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory):
    """moto's S3 server, shared by the tests that pass messages through an exchange."""
    from cleanroom.storage.moto_server import MotoServer
    from cleanroom.storage.s3 import S3ObjectStore

    with MotoServer(tmp_path_factory.mktemp("moto")) as server:
        settings = Settings()
        yield S3ObjectStore(
            server.endpoint_url, "eu-central-1", settings.aws_access_key_id, settings.aws_secret_access_key
        )


def node(settings: Settings, party: str, store) -> object:
    """A demo retailer's node, pointed at the test's object store."""
    from cleanroom.demo_setup import node_config_path
    from cleanroom.node.config import Node

    return Node.load(
        node_config_path(settings, party), settings.model_copy(update={"s3_endpoint_url": store.endpoint_url})
    )


def coordinator(settings: Settings):
    from tasks.context import coordinator_member

    return coordinator_member(settings)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """The reliability figures of this session (see tests/reliability.py)."""
    from tests.reliability import OBSERVED, figures

    if not OBSERVED:
        return
    terminalreporter.section("reliability")
    for name, count in figures().items():
        terminalreporter.write_line(f"{name:>20}: {count}")


# Hypothesis: the same examples on every run by default (CI stays reproducible: a red run is a bug, not
# luck); HYPOTHESIS_PROFILE=explore draws new examples on each run to look for the next one.
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("default", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@contextmanager
def small_disk(path: Path, kib: int) -> Iterator[Path]:
    """A real tmpfs of `kib` KiB at `path` for the block: a disk that fills up (the machines are root)."""
    import subprocess

    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)
