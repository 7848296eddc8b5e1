"""Shared fixtures: a small generated consortium and settings pointing at a temporary workspace."""

from __future__ import annotations

import os
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
    """The small workspace after every party ran its own preparation worker."""
    from cleanroom.party.host import LocalPartyHost

    host = LocalPartyHost(small_workspace.parties_root)
    for party in small_spec.spec.data_parties:
        summary = host.run_worker(party.name, "prepare", small_spec.path)
        assert summary["status"] in ("ok", "unchanged"), summary
    return small_workspace


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
