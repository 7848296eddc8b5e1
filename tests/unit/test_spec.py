"""The spec loads, pins by content, and every malformed spec fails with one line naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cleanroom.errors import ConfigurationError
from cleanroom.spec import canonical_hash, load_spec
from tests.conftest import write
from tests.reliability import CLEAR, input_outcome


@pytest.fixture()
def valid_raw(small_spec) -> dict:
    # A JSON round trip unshares YAML anchors, so breaking one party's table leaves the others intact.
    return json.loads(json.dumps(yaml.safe_load(small_spec.path.read_text()), default=str))


def test_demo_spec_is_valid(small_spec) -> None:
    spec = small_spec.spec
    assert [p.name for p in spec.compute_parties] == ["northwind", "harbor", "alpine"]
    assert spec.analyses[0].period_labels[0] == "2025-01" and spec.analyses[0].period_labels[-1] == "2025-12"


def test_hash_ignores_formatting_but_not_content(tmp_path: Path, valid_raw: dict) -> None:
    compact = write(tmp_path / "a.yaml", yaml.safe_dump(valid_raw, default_flow_style=True))
    spaced = write(tmp_path / "b.yaml", "# comment\n" + yaml.safe_dump(valid_raw, indent=4))
    assert canonical_hash(load_spec(compact)) == canonical_hash(load_spec(spaced))
    valid_raw["privacy"]["min_group_size"] += 1
    changed = write(tmp_path / "c.yaml", yaml.safe_dump(valid_raw))
    assert canonical_hash(load_spec(changed)) != canonical_hash(load_spec(compact))


def _break(raw: dict, how: str) -> None:
    if how == "missing party":
        raw["approvers"][0]["party"] = "ghost-retail"
    elif how == "unknown protocol":
        raw["secure_computation"]["protocol"] = "yao"
    elif how == "duplicate name":
        raw["parties"][1]["name"] = raw["parties"][0]["name"]
    elif how == "bad key":
        raw["approvers"][1]["public_key"] = "age1notakey"
    elif how == "bad signing key":
        raw["reporting"]["signing_public_key"] = "c2hvcnQ="
    elif how == "too few compute parties":
        raw["parties"][2]["role"] = "observer"
        del raw["parties"][2]["data"]
    elif how == "missing field":
        del raw["privacy"]
    elif how == "unknown field":
        raw["parties"][0]["colour"] = "blue"
    elif how == "absolute data location":
        raw["parties"][0]["data"]["tables"]["customers"]["location"] = "/etc/passwd"
    elif how == "no lawful basis":
        del raw["parties"][1]["data"]["tables"]["transactions"]["lawful_basis"]
    elif how == "unknown lawful basis":
        raw["parties"][1]["data"]["tables"]["transactions"]["lawful_basis"] = "because"
    elif how == "missing table":
        del raw["parties"][0]["data"]["tables"]["products"]
    elif how == "bad time zone in mapping":
        raw["parties"][2]["data"]["tables"]["transactions"]["columns"]["purchased_at"]["time_zone"] = "Mars/Base"
    elif how == "unknown join key":
        raw["analyses"][3]["join_keys"] = ["email", "loyalty_card"]
    elif how == "two overlap analyses":
        raw["analyses"].append(dict(raw["analyses"][3], id="overlap-again"))
    elif how == "regions finer than postcodes":
        raw["analyses"][4]["region_digits"] = 2
    elif how == "share in hundredths":
        raw["privacy"]["dominance"]["max_share_percent"] = 66.67
    elif how == "recommender without catalogue":
        del raw["analyses"][5]["catalogue"]
    elif how == "data party without data":
        del raw["parties"][0]["data"]
    elif how == "certificate from another CA":
        raw["parties"][1]["certificate"] = _foreign_certificate("harbor")
    elif how == "another party's certificate":
        raw["parties"][0]["certificate"] = raw["parties"][1]["certificate"]
    elif how == "shared endpoint":
        raw["parties"][1]["endpoint"] = raw["parties"][0]["endpoint"]
    elif how == "endpoint without port":
        raw["parties"][0]["endpoint"] = "northwind.example"
    elif how == "node without signing key":
        del raw["parties"][0]["signing_key"]
    elif how == "party named coordinator":
        raw["parties"][3]["name"] = "coordinator"
    elif how == "no coordinator":
        del raw["coordinator"]
    elif how == "week not from a Monday":
        raw["analyses"][0] |= {"grain": "week", "period_start": "2025-01-01", "periods": 52}
    elif how == "units without quantities":
        raw["parties"][1]["data"]["tables"]["transactions"]["absent"] = ["quantity"]
    elif how == "category file for transactions":
        raw["parties"][1]["data"]["tables"]["transactions"]["category_from"] = {
            "location": "raw/departments.csv",
            "key": "department_id",
            "category": "department",
        }
    elif how == "store-level party beside customer analyses":
        raw["parties"][3]["data"]["tables"] = {
            "store_sales": {
                "location": "raw/scanner.csv",
                "period": "week",
                "purpose": "market trend",
                "lawful_basis": "gdpr-legitimate-interests",
                "retention_days": 90,
            }
        }
    elif how == "unknown currency":
        raw["currency"] = "EURO"
    elif how == "needed column absent":
        raw["parties"][1]["data"]["tables"]["transactions"]["absent"] = ["purchased_at"]
    elif how == "absent column unknown":
        raw["parties"][1]["data"]["tables"]["customers"]["absent"] = ["shoe_size"]
    elif how == "GTIN on a transaction column":
        raw["parties"][1]["data"]["tables"]["transactions"]["columns"] = {
            "product_id": {"source": "gtin", "gtin": True}
        }


def _foreign_certificate(member: str) -> str:
    """A certificate for `member` from a CA that is not the consortium's."""
    import tempfile

    from cleanroom.crypto.pki import init_ca, issue_certificate

    folder = Path(tempfile.mkdtemp())
    init_ca(folder / "ca", "elsewhere")
    certificate, _ = issue_certificate(folder / "ca", member, folder / "issued")
    return certificate.read_text()


CASES = {
    "missing party": "approvers[0].party",
    "unknown protocol": "secure_computation.protocol",
    "duplicate name": "parties[1]",
    "bad key": "approvers[1].public_key",
    "bad signing key": "reporting.signing_public_key",
    "too few compute parties": "secure_computation.protocol",
    "missing field": "privacy",
    "unknown field": "parties[0].colour",
    "absolute data location": "parties[0].data.tables.customers.location",
    "no lawful basis": "parties[1].data.tables.transactions.lawful_basis",
    "unknown lawful basis": "parties[1].data.tables.transactions.lawful_basis",
    "missing table": "parties[0].data",
    "bad time zone in mapping": "parties[2].data.tables.transactions.columns.purchased_at",
    "data party without data": "parties[0]",
    "unknown join key": "analyses[3].customer_overlap.join_keys[1]",
    "two overlap analyses": "analyses[6].kind",
    "regions finer than postcodes": "analyses[4].region_digits",
    "share in hundredths": "privacy.dominance.max_share_percent",
    "recommender without catalogue": "analyses[5].joint_recommender.catalogue",
    "certificate from another CA": "parties[1].certificate: not issued by the consortium CA",
    "another party's certificate": "parties[0].certificate: issued to 'harbor', not to 'northwind'",
    "shared endpoint": "parties[1].endpoint",
    "endpoint without port": "parties[0].endpoint",
    "node without signing key": "parties[0]: signing_key",
    "party named coordinator": "parties[3]: name",
    "no coordinator": "coordinator",
    "week not from a Monday": "period_start: weeks start on a Monday",
    "unknown currency": "currency",
    "store-level party beside customer analyses": "needs customer-level data; party fjord exports store-level",
    "category file for transactions": "tables.transactions.category_from: only products take categories",
    "units without quantities": "(category_month_sales) needs transactions.quantity, which party harbor",
    "needed column absent": "analyses: analyses[0] (category_month_sales) needs transactions.purchased_at",
    "absent column unknown": "tables.customers.absent: 'shoe_size' is not a column",
    "GTIN on a transaction column": "only products.product_id can be GTINs",
}


@pytest.mark.reliability
@pytest.mark.parametrize("how", list(CASES))
def test_malformed_spec_names_file_and_field(tmp_path: Path, valid_raw: dict, how: str) -> None:
    _break(valid_raw, how)
    path = write(tmp_path / "broken.yaml", yaml.safe_dump(valid_raw))
    with pytest.raises(ConfigurationError) as caught:
        load_spec(path)
    assert input_outcome(f"spec: {how}", caught.value) == CLEAR
    message = caught.value.one_line()
    assert str(path) in message
    assert CASES[how] in message
    assert "fix:" in message
    assert "\n" not in message


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="spec file not found"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(ConfigurationError, match=r"bad\.yaml:\d+: not valid YAML"):
        load_spec(write(tmp_path / "bad.yaml", "a: 1\nb: [unclosed\n"))


def test_a_repeated_key_is_an_error_not_a_silent_override(tmp_path: Path, small_spec) -> None:
    """`min_group_size: 10` then `min_group_size: 2` would make k = 2 without a word."""
    text = small_spec.path.read_text()
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("min_group_size:"))
    indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
    lines.insert(at + 1, f"{indent}min_group_size: 2")
    path = write(tmp_path / "twice.yaml", "\n".join(lines) + "\n")
    with pytest.raises(ConfigurationError) as caught:
        load_spec(path)
    message = caught.value.one_line()
    assert f"twice.yaml:{at + 2}" in message and "duplicate key 'min_group_size'" in message
    assert f"first on line {at + 1}" in message and "fix:" in message and "\n" not in message
    assert load_spec(write(tmp_path / "once.yaml", text)).privacy.min_group_size != 2  # the original loads


@pytest.mark.reliability
def test_a_spec_that_cannot_be_read_is_one_line(tmp_path: Path, small_spec) -> None:
    latin = small_spec.path.read_text().replace("display_name:", "# Café\n  display_name:", 1).encode("latin-1")
    (tmp_path / "latin.yaml").write_bytes(latin)
    cases = {
        tmp_path / "latin.yaml": r"latin\.yaml:\d+: not UTF-8 text \(byte 0xe9\)",
        tmp_path: "spec file is a folder",
        tmp_path / "nope.yaml": "spec file not found",
    }
    for path, expected in cases.items():
        with pytest.raises(ConfigurationError, match=expected) as caught:
            load_spec(path)
        assert input_outcome(f"spec file: {expected}", caught.value) == CLEAR
        assert "fix:" in caught.value.one_line() and caught.value.__cause__ is None


@pytest.mark.reliability
def test_a_key_with_a_line_break_or_escape_stays_one_line(tmp_path: Path, valid_raw: dict) -> None:
    """Found by Hypothesis: a mapping key holding a line break broke the one line (and an escape
    sequence would reach the operator's terminal)."""
    valid_raw["parties"][2]["data"]["tables"]["customers"]["columns"]["\n\x1b[2J"] = 0
    path = write(tmp_path / "odd-key.yaml", yaml.safe_dump(valid_raw))
    with pytest.raises(ConfigurationError) as caught:
        load_spec(path)
    assert input_outcome("spec: key with a line break and an escape", caught.value) == CLEAR
    assert "columns.\\n\\x1b[2J" in caught.value.one_line() and "\x1b" not in caught.value.one_line()


def test_an_oblivious_recommender_too_large_to_train_is_refused_with_the_estimate(
    tmp_path: Path, valid_raw: dict, small_spec
) -> None:
    import shutil

    from cleanroom.spec import pin_spec
    from cleanroom.spec.analyses import SCALABLE_ONLY

    shutil.copy(small_spec.path.parent / "catalogue.csv", tmp_path / "catalogue.csv")
    index = next(i for i, a in enumerate(valid_raw["analyses"]) if a["kind"] == "joint_recommender")
    scalable = valid_raw["analyses"][index]
    oblivious = {k: v for k, v in scalable.items() if k not in SCALABLE_ONLY} | {"mode": "oblivious"}
    valid_raw["analyses"][index] = oblivious
    assert pin_spec(write(tmp_path / "demo.yaml", yaml.safe_dump(valid_raw))).spec.joint_recommender
    valid_raw["analyses"][index] |= {"users_per_party": 5000, "epochs": 1000, "factors": 32}
    with pytest.raises(ConfigurationError) as refused:
        pin_spec(write(tmp_path / "big.yaml", yaml.safe_dump(valid_raw)))
    message = refused.value.one_line()
    assert f"big.yaml: analyses[{index}]: training under MPC would take about" in message
    assert "x 5000 customers x 360 products x 32 factors x 1000 epochs" in message and "fix: lower" in message
