"""Property-based tests (Hypothesis): whatever a spec, a column mapping, an export or a key file holds,
the product either accepts it or says one CleanroomError line; never a stack trace, never a
half-written file."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cleanroom.crypto.keys import load_age_identity, load_signing_key
from cleanroom.errors import CleanroomError
from cleanroom.party.anonymization import load_pseudonym_key
from cleanroom.party.preparation import prepare_party
from cleanroom.party.versions import versions
from cleanroom.spec import pin_spec
from tests.conftest import home

# Examples are few and slow (each preparation reads a party's exports); the spec and keys are cheap.
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=2),
)


def one_line(error: CleanroomError) -> None:
    line = error.one_line()
    assert "\n" not in line and "Traceback" not in line and line.count("fix:") <= 1, line


def paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a YAML tree (mappings and lists)."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            found += paths(value, (*prefix, index))
    return found


def mutate(tree: Any, path: tuple, action: str, value: Any) -> Any:
    tree = copy.deepcopy(tree)
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    else:  # add an unknown sibling
        if isinstance(parent, dict):
            parent[f"unknown_{last}"] = value
        else:
            parent.append(value)
    return tree


@pytest.fixture(scope="module")
def spec_tree(small_spec) -> dict:
    return yaml.safe_load(small_spec.path.read_text())


@QUICK
@given(data=st.data())
def test_any_mutation_of_the_spec_is_accepted_or_one_line(data, spec_tree, small_spec, tmp_path) -> None:
    """Delete, retype or add any field anywhere (parties, analyses, the column mappings, the privacy
    policy): the spec pins or fails with one line naming the file."""
    mutations = data.draw(st.integers(min_value=1, max_value=3))
    tree = spec_tree
    for _ in range(mutations):
        every = paths(tree)
        if not every:
            break
        path = data.draw(st.sampled_from(every))
        action = data.draw(st.sampled_from(["delete", "replace", "add"]))
        tree = mutate(tree, path, action, data.draw(scalars))
    spec = small_spec.path.parent / f"mutated-{tmp_path.name}.yaml"
    spec.write_text(yaml.safe_dump(tree, allow_unicode=True))
    try:
        pin_spec(spec)
        event("pinned")
    except CleanroomError as error:
        event("refused")
        one_line(error)
        assert str(spec) in error.one_line()
    finally:
        spec.unlink()


@QUICK
@given(raw=st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_as_a_spec_file_are_one_line(raw: bytes, tmp_path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(raw)
    with pytest.raises(CleanroomError) as caught:
        pin_spec(spec)
    one_line(caught.value)


@QUICK
@given(
    raw=st.binary(max_size=300)
    | st.text(max_size=300).map(str.encode)
    | st.sampled_from(
        [b"AGE-SECRET-KEY-1", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"]
    ).flatmap(lambda start: st.binary(max_size=80).map(lambda tail: start + tail))
)
def test_any_bytes_as_a_key_file_are_a_key_or_one_line(raw: bytes, small_spec, tmp_path) -> None:
    """The signing key, an age identity and the pseudonym key, from whatever a file holds."""
    key = tmp_path / "key"
    key.write_bytes(raw)
    party = small_spec.spec.party("harbor")
    relative = Path("secrets") / "pseudonym.key"
    (tmp_path / relative).parent.mkdir(exist_ok=True)
    (tmp_path / relative).write_bytes(raw)
    data = party.data.model_copy(update={"pseudonym_key_file": str(relative)})
    for load in (lambda: load_signing_key(key), lambda: load_age_identity(key)):
        try:
            load()
        except CleanroomError as error:
            one_line(error)
            assert str(key) in error.one_line()
    try:
        load_pseudonym_key(data, tmp_path, "harbor")
    except CleanroomError as error:
        one_line(error)


cells = st.text(
    alphabet=st.sampled_from(list("0123456789-.,;\"' \tabcxyzÄé€\r\n")) | st.characters(codec="utf-8"), max_size=12
)


@SLOW
@given(
    rows=st.lists(st.tuples(st.integers(min_value=0, max_value=40), st.integers(0, 6), cells), max_size=6),
    table=st.sampled_from(["raw/transactions.csv", "raw/customers.csv", "raw/products.csv"]),
    raw_lines=st.lists(st.tuples(st.integers(min_value=1, max_value=30), st.binary(max_size=30)), max_size=2),
)
def test_any_edit_of_an_export_prepares_or_stops_with_one_line(
    rows, table, raw_lines, small_spec, small_workspace, tmp_path_factory
) -> None:
    """Cells rewritten with anything (quotes, separators, line breaks, other scripts) and raw bytes
    spliced into lines: the party prepares, or stops with one line naming it; nothing half-written."""
    party = tmp_path_factory.mktemp("harbor")
    for folder in ("raw", "secrets"):
        shutil.copytree(home(small_workspace, "harbor") / folder, party / folder)
    path = party / table
    frame = pl.read_csv(path, infer_schema=False)
    for row, column, value in rows:
        if row < frame.height:
            frame[row, column % frame.width] = value
    frame.write_csv(path)
    lines = path.read_bytes().split(b"\n")
    for number, spliced in raw_lines:
        if number < len(lines):
            lines[number] = (
                lines[number][: len(lines[number]) // 2] + spliced + lines[number][len(lines[number]) // 2 :]
            )
    path.write_bytes(b"\n".join(lines))
    try:
        event(f"prepared: {prepare_party(small_spec.spec, 'harbor', party).status}")
    except CleanroomError as error:
        event(f"stopped: {type(error).__name__}")
        one_line(error)
        assert error.one_line().startswith("party harbor"), error.one_line()
        assert not versions(party) and not list((party / "prepared").glob(".staging*"))
        assert not (party / "quarantine.staging").exists()
    finally:
        shutil.rmtree(party)
