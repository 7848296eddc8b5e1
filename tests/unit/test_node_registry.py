"""A node serves only specs its party signed, with its own keys; the signatures verify for everyone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cleanroom.crypto.keys import new_signing_key
from cleanroom.errors import ConfigurationError
from cleanroom.node import registry
from cleanroom.node.config import Node
from cleanroom.spec import pin_spec
from cleanroom.spec.signatures import collect, publish, sign_spec_hash
from tests.conftest import home


@pytest.fixture()
def harbor_node(tmp_path: Path, small_workspace) -> Node:
    """A copy of Harbor's node folder (config and keys), with no spec signed yet."""
    folder = tmp_path / "harbor"
    shutil.copytree(home(small_workspace, "harbor") / "keys", folder / "keys")
    shutil.copy(home(small_workspace, "harbor") / "node.yaml", folder / "node.yaml")
    return Node.load(folder / "node.yaml", small_workspace)


def test_a_signed_spec_resolves_and_an_unsigned_one_is_refused(harbor_node: Node, small_spec) -> None:
    with pytest.raises(ConfigurationError) as refused:
        registry.resolve(harbor_node, small_spec.sha256)
    message = refused.value.one_line()
    assert (
        f"party harbor has not signed spec {small_spec.sha256[:16]}" in message
        and "cleanroom spec sign" in message
    )
    signature = registry.sign(harbor_node, small_spec.path)
    assert signature.spec_sha256 == small_spec.sha256 and signature.verifies(small_spec.spec)
    resolved = registry.resolve(harbor_node, small_spec.sha256)
    assert resolved.sha256 == small_spec.sha256 and resolved.spec == small_spec.spec
    assert registry.trusted_file(harbor_node, small_spec.sha256).read_text() == small_spec.spec.trust_bundle()


def test_an_altered_signed_copy_is_refused(harbor_node: Node, small_spec) -> None:
    registry.sign(harbor_node, small_spec.path)
    copy = harbor_node.workspace / registry.SPECS_DIR / small_spec.sha256 / registry.SPEC_FILE
    copy.write_text(copy.read_text().replace("min_group_size: 10", "min_group_size: 2"))
    with pytest.raises(ConfigurationError, match="no longer has that hash"):
        registry.resolve(harbor_node, small_spec.sha256)
    from flows.node_service import servable_specs

    said: list[str] = []
    assert servable_specs(harbor_node, said.append) == []  # the node starts, serving it no run
    assert len(said) == 1 and "not serving a signed spec" in said[0] and small_spec.sha256[:16] in said[0]


def test_a_node_refuses_to_sign_a_spec_that_does_not_name_its_keys(
    harbor_node: Node, small_spec, tmp_path
) -> None:
    raw = yaml.safe_load(small_spec.path.read_text())
    raw["parties"][1]["signing_key"] = new_signing_key(tmp_path / "someone-else.pem")
    other = tmp_path / "other" / "consortium.yaml"
    other.parent.mkdir()
    other.write_text(yaml.safe_dump(raw))
    shutil.copy(small_spec.path.parent / "catalogue.csv", other.parent / "catalogue.csv")
    with pytest.raises(ConfigurationError) as refused:
        registry.sign(harbor_node, other)
    assert "parties[harbor]: signing_key is not the public half of" in refused.value.one_line()
    assert not (harbor_node.workspace / registry.SPECS_DIR / pin_spec(other).sha256).exists()


def test_published_signatures_verify_and_forged_ones_do_not(
    harbor_node: Node, small_spec, object_store, tmp_path
) -> None:
    bucket = small_spec.spec.exchange_bucket
    publish(object_store, bucket, registry.sign(harbor_node, small_spec.path))
    forged = sign_spec_hash("alpine", small_spec.sha256, harbor_node.member.signing_key)  # not alpine's key
    publish(object_store, bucket, forged)
    found = collect(object_store, small_spec.spec, small_spec.sha256)
    assert found["harbor"] is not None and found["alpine"] is None
