"""`cleanroom init`: a new consortium's folder with a spec skeleton that validates and every key in its
place, so the first thing a new member does is look at its own data, not at key formats.

    <dir>/consortium.yaml      the spec: parties, approvers and keys filled in; exports, analyses and
                               privacy policy at sensible defaults for the members to agree on
    <dir>/operator/            the coordinator's workspace (CLEANROOM_WORKSPACE): keys/ca, keys/coordinator,
                               keys/signing
    <dir>/approvers/<n>.age    each approver's age identity and <n>.signing.pem (signs their release
                               decisions): hand both to that person
    <dir>/parties/<party>/     each retailer's node folder (node.yaml, keys/, secrets/pseudonym.key, raw/):
                               hand it to that retailer; it holds that retailer's private keys

Nothing is written unless all of it is: the folder is built beside its target and renamed at the end.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from cleanroom.errors import ConfigurationError
from cleanroom.network.topology import COORDINATOR
from cleanroom.processes import free_ports
from cleanroom.scaffold import fill_member_keys, share_pseudonym_key
from cleanroom.spec.analyses import NAME_PATTERN

HEADER = """\
# The spec of consortium {name}, scaffolded by `cleanroom init` on {today}. Every key is filled in;
# what the members agree on is theirs to edit: objectives, analyses, privacy policy, and each party's
# data section (`cleanroom inspect raw/<file>` on the party's own host proposes one per export).
# Check it with `cleanroom check-spec consortium.yaml`; every party signs the version it agrees to.
"""
TABLE_PURPOSES = {
    "customers": "link loyalty customers to sales for market statistics",
    "products": "map products to the agreed categories",
    "transactions": "market totals and insights of the approved objectives",
}


@dataclass(frozen=True)
class Approver:
    name: str
    party: str
    email: str

    @classmethod
    def parse(cls, text: str) -> Approver:
        """`name@party` or `name@party:email`."""
        match = re.fullmatch(r"([^@:]+)@([^@:]+)(?::(.+))?", text)
        if not match:
            raise ConfigurationError(
                f"'{text}' is not name@party", where="--approver", fix="write --approver ana-lopez@northwind"
            )
        name, party, email = match.groups()
        return cls(name, party, email or f"{name}@{party}.example")


@dataclass(frozen=True)
class Scaffolded:
    folder: Path
    spec: Path
    parties: list[str]
    approvers: list[str]


def init_consortium(
    target: Path,
    collaboration: str,
    compute: list[str],
    inputs: list[str],
    approvers: list[Approver],
    *,
    currency: str = "EUR",
    loopback: bool = False,
) -> Scaffolded:
    """Write the consortium folder (see the module docstring); every problem with the arguments at once."""
    _check(target, collaboration, compute, inputs, approvers)
    raw = _skeleton(collaboration, compute, inputs, approvers, currency)
    partial = target.with_name(f".{target.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        operator_keys = partial / "operator" / "keys"
        ports = iter(free_ports(len(compute) + len(inputs) + 1)) if loopback else None
        fill_member_keys(
            raw,
            keys_root=operator_keys,
            nodes_root=partial / "parties",
            approvers_root=partial / "approvers",
            signing_key=operator_keys / "signing" / "report-signing.pem",
            endpoint=lambda member: (
                f"127.0.0.1:{next(ports)}" if ports else f"{_host(member, collaboration)}:7100"
            ),
            listen_host="127.0.0.1" if loopback else "0.0.0.0",
        )
        homes = {p: partial / "parties" / p for p in [*compute, *inputs]}
        share_pseudonym_key(homes, {p: "secrets/pseudonym.key" for p in homes}, operator_keys / "pseudonym.key")
        (operator_keys / "pseudonym.key").unlink()  # the parties' secret: the operator keeps no copy
        for home in homes.values():
            (home / "raw").mkdir(parents=True, exist_ok=True)
        text = HEADER.format(name=collaboration, today=date.today()) + yaml.safe_dump(raw, sort_keys=False)
        (partial / "consortium.yaml").write_text(text)
        from cleanroom.spec.loader import load_spec

        load_spec(partial / "consortium.yaml")  # the skeleton validates, or nothing is left behind
        if target.exists():
            target.rmdir()  # empty (checked): replaced by the finished folder
        partial.rename(target)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return Scaffolded(target, target / "consortium.yaml", [*compute, *inputs], [a.name for a in approvers])


def _check(
    target: Path, collaboration: str, compute: list[str], inputs: list[str], approvers: list[Approver]
) -> None:
    problems = []
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        problems.append(f"{target} exists and is not an empty folder (keys are never overwritten)")
    names = [collaboration, *compute, *inputs, *(a.name for a in approvers)]
    bad = [n for n in names if not re.match(NAME_PATTERN, n)]
    if bad:
        problems.append(f"not a name: {', '.join(bad)} (lower case letters, digits and '-', 2-31 characters)")
    if len(compute) != 3:
        problems.append(f"--compute names {len(compute)} parties; the secure computation needs exactly 3")
    members = [*compute, *inputs]
    if len(set(members)) != len(members) or COORDINATOR in members:
        problems.append(f"party names must be distinct and not '{COORDINATOR}'")
    if not approvers:
        problems.append("name at least one --approver (name@party): the report is encrypted to them")
    strangers = [f"{a.name}@{a.party}" for a in approvers if a.party not in members]
    if strangers:
        problems.append(f"approvers of undeclared parties: {', '.join(strangers)}")
    if problems:
        raise ConfigurationError(
            "; ".join(problems), where="cleanroom init", fix="correct the arguments (cleanroom init --help)"
        )


def _skeleton(
    collaboration: str, compute: list[str], inputs: list[str], approvers: list[Approver], currency: str
) -> dict:
    def party(name: str, role: str) -> dict:
        tables = {
            table: {
                "location": f"raw/{table}.csv",
                "purpose": purpose,
                "lawful_basis": "gdpr-legitimate-interests",
                "retention_days": 90,
            }
            for table, purpose in TABLE_PURPOSES.items()
        }
        return {
            "name": name,
            "display_name": name.replace("-", " ").title(),
            "role": role,
            "data": {"tables": tables},
        }

    this_year = date.today().replace(month=1, day=1)
    return {
        "collaboration": collaboration,
        "version": 1,
        "currency": currency,
        "objectives": [
            {
                "id": "market-trends",
                "description": "Total sales by product category and month across the retailers.",
            },
            {
                "id": "shared-customers",
                "description": "How many customers the retailers share, without learning who.",
            },
        ],
        "parties": [*(party(n, "compute") for n in compute), *(party(n, "input") for n in inputs)],
        "approvers": [{"name": a.name, "party": a.party, "email": a.email} for a in approvers],
        "analyses": [
            {
                "id": "category-month-sales",
                "kind": "category_month_sales",
                "objective": "market-trends",
                "categories": ["Grocery", "Beverages", "Household"],
                "period_start": this_year.isoformat(),
                "grain": "month",
                "periods": 12,
                "time_zone": "UTC",
            },
            {
                "id": "customer-overlap",
                "kind": "customer_overlap",
                "objective": "shared-customers",
                "join_keys": ["email", "phone"],
            },
        ],
        "secure_computation": {"protocol": "aby3"},
        "privacy": {"min_group_size": 10, "dominance": {"min_contributors": 2, "max_share_percent": 80}},
        "reporting": {"bucket": f"{collaboration}-reports"[:63], "prefix": "reports"},
    }


def _host(member: str, collaboration: str) -> str:
    return f"{member}.{collaboration}.example"


def next_steps(done: Scaffolded) -> list[str]:
    """What to do next, in order, with the commands."""
    folder, spec = done.folder, done.spec
    first = done.parties[0]
    node = folder / "parties" / first
    return [
        f"Hand each parties/<name>/ folder to that retailer ({', '.join(done.parties)}): it holds the retailer's "
        "private keys and the shared pseudonym key; nobody else keeps a copy. Hand each approvers/<name>.age "
        f"and <name>.signing.pem to that person ({', '.join(done.approvers)}).",
        "Each retailer puts its exports in raw/ on its own host and lets the product propose the mapping: "
        f"cleanroom inspect {node}/raw/transactions.csv (paste the section into the spec), then "
        f"cleanroom party check --spec {spec} --config {node}/node.yaml",
        "The members agree on objectives, analyses and privacy policy, set each endpoint (host:port of each "
        f"node; the TLS names do not change) and check: cleanroom check-spec {spec}",
        f"Each retailer signs the agreed spec and starts its node: cleanroom spec sign --party {first} "
        f"--spec consortium.yaml --config node.yaml; cleanroom node start --party {first} --config node.yaml "
        "(PREFECT_API_URL and CLEANROOM_S3_ENDPOINT_URL set)",
        f"The operator runs it: CLEANROOM_WORKSPACE={folder / 'operator'} cleanroom run --spec {spec}",
    ]
