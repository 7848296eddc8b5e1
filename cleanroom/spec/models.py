"""Pydantic models of the collaboration spec. Parties, roles and protocols are types, not strings."""

from __future__ import annotations

import base64
import re
from datetime import date
from enum import Enum
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from cleanroom.crypto.pki import certificate_problem
from cleanroom.network.topology import COORDINATOR, ClusterAddresses, split_endpoint
from cleanroom.spec.analyses import (
    NAME_PATTERN,
    Analysis,
    AnalysisKind,
    BasketStatistics,
    CategoryMonthSales,
    CopurchaseLift,
    CustomerOverlap,
    CustomerSegments,
    JointRecommender,
    Name,
    Protocol,
)
from cleanroom.spec.approval import ApprovalPolicy
from cleanroom.spec.base import Strict
from cleanroom.spec.noise import PrivacyBudget
from cleanroom.spec.sources import CanonicalTable, PartyData


class PartyRole(str, Enum):
    COMPUTE = "compute"  # holds data and runs a secure-computation player
    INPUT = "input"  # holds data, provides secret-shared input only
    OBSERVER = "observer"  # receives approved outputs, holds no data


def _check_age_recipient(value: str) -> str:
    from pyrage import x25519  # local import: pyrage is only needed where keys are checked

    try:
        x25519.Recipient.from_str(value)
    except Exception as exc:  # pyrage raises its own types; any failure means a bad key
        raise ValueError(f"not an age X25519 public key (age1...): {value[:16]}...") from exc
    return value


def _check_ed25519(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise ValueError("not base64") from exc
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes (44 base64 characters)")
    return value


def _check_endpoint(value: str | None) -> str | None:
    if value is not None:
        split_endpoint(value)
    return value


def _check_pem(value: str | None) -> str | None:
    if value is not None and "-----BEGIN CERTIFICATE-----" not in value:
        raise ValueError("not a PEM certificate (paste what `cleanroom keys issue` printed)")
    return value


class Party(Strict):
    name: Name
    display_name: str
    role: PartyRole
    public_key: str = Field(description="age X25519 recipient for outputs addressed to this party")
    data: PartyData | None = Field(default=None, description="exports of a party that holds data")
    # A data party runs a node: its player's TLS endpoint, the key it signs the spec and its messages
    # with, and its TLS certificate from the consortium CA.
    endpoint: str | None = Field(default=None, description="host:port of the node's player (TLS)")
    signing_key: str | None = Field(default=None, description="Ed25519 public key (base64) of the node")
    certificate: str | None = Field(default=None, description="the node's TLS certificate (PEM)")

    _age = field_validator("public_key")(_check_age_recipient)
    _endpoint = field_validator("endpoint")(_check_endpoint)
    _signing = field_validator("signing_key")(lambda v: v if v is None else _check_ed25519(v))
    _pem = field_validator("certificate")(_check_pem)

    @model_validator(mode="after")
    def _data_matches_role(self) -> Party:
        if self.name == COORDINATOR:
            raise ValueError(f"name: '{COORDINATOR}' is the coordinator's name; choose another")
        if self.role is not PartyRole.OBSERVER and self.data is None:
            raise ValueError(f"data: a {self.role.value} party declares its exports (data.tables)")
        if self.role is PartyRole.OBSERVER and self.data is not None:
            raise ValueError("data: an observer holds no data; remove the section or change the role")
        if self.role is not PartyRole.OBSERVER:
            missing = [f for f in ("endpoint", "signing_key", "certificate") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    f"{missing[0]}: a {self.role.value} party runs a node; declare {', '.join(missing)}"
                )
        return self


class Approver(Strict):
    name: Name
    party: Name
    email: str
    public_key: str = Field(description="age X25519 recipient: the report is encrypted to it")
    signing_key: str = Field(description="Ed25519 public key (base64) that signs this person's decisions")

    _age = field_validator("public_key")(_check_age_recipient)
    _ed25519 = field_validator("signing_key")(_check_ed25519)


class Objective(Strict):
    id: Name
    description: str


class Coordinator(Strict):
    """Who runs the lifecycle: it receives the messages addressed to it, and its secure client joins
    the players' computation over TLS (players fetch client-side tensors from its endpoint)."""

    public_key: str = Field(description="age X25519 recipient for messages addressed to the coordinator")
    endpoint: str = Field(description="host:port where players reach the coordinator's secure client (TLS)")
    certificate: str = Field(description="its TLS certificate (PEM) from the consortium CA")

    _age = field_validator("public_key")(_check_age_recipient)
    _endpoint = field_validator("endpoint")(_check_endpoint)
    _pem = field_validator("certificate")(_check_pem)


class SecureComputation(Strict):
    protocol: Protocol = Protocol.ABY3
    ca_certificate: str = Field(description="the consortium CA (PEM) that issued every member's certificate")

    _pem = field_validator("ca_certificate")(_check_pem)


class Exchange(Strict):
    """Where nodes and the coordinator leave each other messages: per-run prefixes in an S3 bucket,
    every object written once, sealed to its addressee and removed when the run ends."""

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")] | None = None  # default: reporting's
    prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")] = "exchange"
    expire_days: int = Field(default=1, ge=1, le=30, description="lifecycle rule for runs that did not clean up")


class QuasiIdentifier(str, Enum):
    AGE_BAND = "age_band"  # generalized from birth_date
    POSTCODE_PREFIX = "postcode_prefix"  # generalized from postcode


class Generalization(Strict):
    age_band_years: int = Field(default=10, ge=1, le=50)
    postcode_prefix_length: int = Field(default=2, ge=0, le=5)


class DominanceRule(Strict):
    """Competitor disclosure control, evaluated inside MPC before any cell is revealed."""

    min_contributors: int = Field(default=2, ge=1, description="retailers with sales in the cell, at least")
    max_share_percent: float = Field(default=80, gt=0, le=100, description="no retailer above this share")

    @field_validator("max_share_percent")
    @classmethod
    def _tenths(cls, value: float) -> float:
        # Keeps the secure comparison exact at the boundary (see cleanroom.secure.aggregates).
        if abs(value * 10 - round(value * 10)) > 1e-9:
            raise ValueError("give the percentage in steps of 0.1 (e.g. 80 or 66.7)")
        return value


class PrivacyPolicy(Strict):
    min_group_size: int = Field(ge=2, description="cells with fewer contributing customers are suppressed")
    dominance: DominanceRule = DominanceRule()
    k_anonymity: int = Field(default=10, ge=2, description="minimum size of a quasi-identifier class")
    quasi_identifiers: list[QuasiIdentifier] = Field(
        default_factory=lambda: [QuasiIdentifier.AGE_BAND, QuasiIdentifier.POSTCODE_PREFIX]
    )
    generalization: Generalization = Generalization()
    max_quarantine_share: float = Field(
        default=0.01, ge=0, le=1, description="a party stops when more of a table's rows fail row checks"
    )
    min_stores_per_cell: int = Field(
        default=3,
        ge=1,
        description="a store-level party's figures in a cell count as a full group when they come from at "
        "least this many stores (they carry no customer counts)",
    )
    max_k_anonymity_removed_share: float = Field(
        default=0.05, ge=0, le=1, description="a party stops when k-anonymity would remove more of its customers"
    )
    budget: PrivacyBudget | None = Field(
        default=None, description="differential-privacy budget across runs; needed when an analysis adds noise"
    )


class Reporting(Strict):
    signing_public_key: str = Field(description="Ed25519 public key (base64) that signs report manifests")
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")]
    prefix: str = "reports"

    _ed25519 = field_validator("signing_public_key")(_check_ed25519)


PLAYERS_PER_PROTOCOL = {Protocol.ABY3: 3, Protocol.POND: 3, Protocol.SECURENN: 3}


def _check_currency(value: str) -> str:
    from babel.numbers import is_currency

    if not is_currency(value):
        raise ValueError(f"'{value}' is not an ISO 4217 currency code (EUR, USD, GBP, ...)")
    return value


class CollaborationSpec(Strict):
    collaboration: Name
    version: int = Field(ge=1)
    currency: str = Field(default="EUR", description="ISO 4217: every party's amounts are in it")
    history_from: date | None = Field(
        default=None,
        description="earliest plausible purchase (validation bound); default: five years before the "
        "earliest date an analysis names",
    )
    objectives: list[Objective] = Field(min_length=1)
    parties: list[Party] = Field(min_length=2)
    approvers: list[Approver] = Field(min_length=1)
    approval: ApprovalPolicy = ApprovalPolicy()
    analyses: list[Analysis] = Field(min_length=1)
    coordinator: Coordinator
    secure_computation: SecureComputation
    exchange: Exchange = Exchange()
    privacy: PrivacyPolicy
    reporting: Reporting

    _currency = field_validator("currency")(_check_currency)

    @model_validator(mode="after")
    def _consistent(self) -> CollaborationSpec:
        _no_duplicates("parties", [p.name for p in self.parties])
        _no_duplicates("approvers", [a.name for a in self.approvers])
        _no_duplicates("analyses", [a.id for a in self.analyses])
        _no_duplicates("objectives", [o.id for o in self.objectives])
        party_names = {p.name for p in self.parties}
        for i, approver in enumerate(self.approvers):
            if approver.party not in party_names:
                raise ValueError(
                    f"approvers[{i}].party: '{approver.party}' is not a declared party "
                    f"(declared: {', '.join(sorted(party_names))})"
                )
        _check_approval(self)
        kinds = [a.kind for a in self.analyses]
        for i, kind in enumerate(kinds):
            if kind in kinds[:i]:
                raise ValueError(f"analyses[{i}].kind: a second {kind.value} analysis (one per kind)")
        if AnalysisKind.CATEGORY_MONTH_SALES not in kinds:
            raise ValueError("analyses: the lifecycle needs one category_month_sales analysis")
        objective_ids = {o.id for o in self.objectives}
        for i, analysis in enumerate(self.analyses):
            if analysis.objective not in objective_ids:
                raise ValueError(f"analyses[{i}].objective: '{analysis.objective}' is not a declared objective")
        for i, analysis in enumerate(self.analyses):
            if isinstance(analysis, BasketStatistics):
                _check_regions(i, analysis, self.privacy)
        _check_members(self)
        _check_columns(self)
        _check_store_level(self)
        _check_noise(self)
        needed = PLAYERS_PER_PROTOCOL[self.secure_computation.protocol]
        if len(self.compute_parties) != needed:
            raise ValueError(
                f"secure_computation.protocol: {self.secure_computation.protocol.value} runs on exactly "
                f"{needed} compute parties, the spec declares {len(self.compute_parties)} "
                "(parties[*].role: compute)"
            )
        return self

    @property
    def compute_parties(self) -> list[Party]:
        return [p for p in self.parties if p.role is PartyRole.COMPUTE]

    @property
    def data_parties(self) -> list[Party]:
        return [p for p in self.parties if p.role in (PartyRole.COMPUTE, PartyRole.INPUT)]

    @property
    def approvers_by_party(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for approver in self.approvers:
            grouped.setdefault(approver.party, []).append(approver.name)
        return grouped

    def approver(self, name: str) -> Approver:
        return next(a for a in self.approvers if a.name == name)

    def party(self, name: str) -> Party:
        for party in self.parties:
            if party.name == name:
                return party
        raise KeyError(name)

    def analysis(self, kind: AnalysisKind) -> Analysis:
        for analysis in self.analyses:
            if analysis.kind is kind:
                return analysis
        raise KeyError(kind.value)

    @property
    def category_month_sales(self) -> CategoryMonthSales:
        analysis = self.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
        assert isinstance(analysis, CategoryMonthSales)
        return analysis

    @property
    def customer_segments(self) -> CustomerSegments | None:
        return next((a for a in self.analyses if isinstance(a, CustomerSegments)), None)

    @property
    def copurchase_lift(self) -> CopurchaseLift | None:
        return next((a for a in self.analyses if isinstance(a, CopurchaseLift)), None)

    @property
    def basket_statistics(self) -> BasketStatistics | None:
        return next((a for a in self.analyses if isinstance(a, BasketStatistics)), None)

    @property
    def joint_recommender(self) -> JointRecommender | None:
        return next((a for a in self.analyses if isinstance(a, JointRecommender)), None)

    def protocol_for(self, analysis: Analysis) -> Protocol:
        return getattr(analysis, "protocol", None) or self.secure_computation.protocol

    @property
    def customer_overlap(self) -> CustomerOverlap | None:
        return next((a for a in self.analyses if isinstance(a, CustomerOverlap)), None)

    @property
    def earliest_purchase(self) -> date:
        """The validation bound of purchase dates when a party sets none (`history_from`)."""
        if self.history_from is not None:
            return self.history_from
        named = [self.category_month_sales.period_start]
        named += [a.as_of for a in self.analyses if isinstance(a, CustomerSegments)]
        named += [a.holdout_from for a in self.analyses if isinstance(a, JointRecommender)]
        first = min(named)
        return date(first.year - 5, 1, 1)

    @property
    def hashed_join_keys(self) -> set[str]:
        """Join keys some party exports already hashed: every party compares that kind hashed."""
        hashed = set()
        for party in self.data_parties:
            if party.data is not None and not party.data.store_level:
                source = party.data.tables[CanonicalTable.CUSTOMERS]
                hashed |= {name for name in source.columns if source.column(name).hashed}
        return hashed

    @property
    def exchange_bucket(self) -> str:
        return self.exchange.bucket or self.reporting.bucket

    def cluster(self) -> ClusterAddresses:
        """Where each data party's player and the coordinator's client are reached."""
        players = {p.name: p.endpoint for p in self.data_parties if p.endpoint}
        return ClusterAddresses(players=players, client=self.coordinator.endpoint)

    def member_certificates(self) -> dict[str, str]:
        """Every certificate the spec pins, by member name (the data parties and the coordinator)."""
        pinned = {p.name: p.certificate for p in self.data_parties if p.certificate}
        return {**pinned, COORDINATOR: self.coordinator.certificate}

    def trust_bundle(self) -> str:
        """The CA and exactly the member certificates the spec pins: what TLS peers are checked against."""
        pems = [self.secure_computation.ca_certificate, *self.member_certificates().values()]
        return "".join(pem.strip() + "\n" for pem in pems)


def _check_approval(spec: CollaborationSpec) -> None:
    policy = spec.approval
    for group, needed in policy.required(spec.approvers_by_party).items():
        named = len(spec.approvers_by_party.get(group, spec.approvers))
        if needed > named:
            raise ValueError(
                f"approval.quorum: {needed} approvals needed but {group} names {named} approver(s); "
                "lower the quorum or add approvers"
            )
    bounds, privacy = policy.rerun_bounds, spec.privacy
    if bounds.min_group_size_up_to is not None and bounds.min_group_size_up_to < privacy.min_group_size:
        raise ValueError(
            f"approval.rerun_bounds.min_group_size_up_to: {bounds.min_group_size_up_to} is below "
            f"privacy.min_group_size ({privacy.min_group_size}); a re-run may only make disclosure stricter"
        )
    down_to, p = bounds.max_share_percent_down_to, privacy.dominance.max_share_percent
    if down_to is not None and (down_to > p or abs(down_to * 10 - round(down_to * 10)) > 1e-9):
        raise ValueError(
            f"approval.rerun_bounds.max_share_percent_down_to: {down_to:g} must be at most "
            f"privacy.dominance.max_share_percent ({p:g}), in steps of 0.1"
        )


def _check_members(spec: CollaborationSpec) -> None:
    """Endpoints are distinct and every pinned certificate is the named member's, from the CA."""
    seen: dict[str, str] = {spec.coordinator.endpoint: "coordinator.endpoint"}
    for i, party in enumerate(spec.parties):
        if party.endpoint is None:
            continue
        if party.endpoint in seen:
            raise ValueError(f"parties[{i}].endpoint: {party.endpoint} is also {seen[party.endpoint]}")
        seen[party.endpoint] = f"parties[{i}].endpoint"
    places = {p.name: f"parties[{i}].certificate" for i, p in enumerate(spec.parties)}
    places[COORDINATOR] = "coordinator.certificate"
    for member, pem in spec.member_certificates().items():
        problem = certificate_problem(pem, spec.secure_computation.ca_certificate, member)
        if problem:
            raise ValueError(f"{places[member]}: {problem}")


def _check_columns(spec: CollaborationSpec) -> None:
    """Every approved analysis finds the columns it needs at every data party (all problems at once)."""
    from cleanroom.spec.columns import missing_for

    problems = []
    for i, analysis in enumerate(spec.analyses):
        for j, party in enumerate(spec.parties):
            if party.data is None:
                continue
            for table, source in party.data.tables.items():
                for column in missing_for(analysis, table, set(source.absent)):
                    problems.append(
                        f"analyses[{i}] ({analysis.kind.value}) needs {table.value}.{column}, which party "
                        f"{party.name} declares absent (parties[{j}].data.tables.{table.value}.absent)"
                    )
            if isinstance(analysis, CustomerOverlap) and not party.data.store_level:
                absent = set(party.data.tables[CanonicalTable.CUSTOMERS].absent)
                if all(key.value in absent for key in analysis.join_keys):
                    keys = ", ".join(k.value for k in analysis.join_keys)
                    problems.append(
                        f"analyses[{i}] (customer_overlap) matches on {keys}; party {party.name} declares "
                        f"every one absent (parties[{j}].data.tables.customers.absent)"
                    )
    if problems:
        raise ValueError(
            "analyses: "
            + "; ".join(problems)
            + " (remove the analysis, have the party export the column, or for units sold set units: false)"
        )


def _check_store_level(spec: CollaborationSpec) -> None:
    """A store-level party (totals, no customers) takes part in the market trend only, at a grain its
    periods sum into (all problems at once)."""
    from cleanroom.analyses.category_month_sales import GRAINS_FOR_STORE_PERIOD

    problems = []
    for j, party in enumerate(spec.parties):
        if party.data is None or not party.data.store_level:
            continue
        where = f"parties[{j}].data.tables.store_sales"
        for i, analysis in enumerate(spec.analyses):
            if analysis.kind is not AnalysisKind.CATEGORY_MONTH_SALES:
                problems.append(
                    f"analyses[{i}] ({analysis.kind.value}) needs customer-level data; party {party.name} exports "
                    f"store-level totals ({where})"
                )
        period = party.data.tables[CanonicalTable.STORE_SALES].period or "day"
        trend = spec.category_month_sales
        if trend.grain not in GRAINS_FOR_STORE_PERIOD[period]:
            problems.append(
                f"analyses: the trend's grain {trend.grain.value} cannot be summed from party {party.name}'s "
                f"{period}ly totals ({where}.period); use a grain of "
                + " or ".join(sorted(g.value for g in GRAINS_FOR_STORE_PERIOD[period]))
            )
    if problems:
        raise ValueError(
            "analyses: "
            + "; ".join(p.removeprefix("analyses: ") for p in problems)
            + " (remove those analyses, or leave the party out of this spec)"
        )


def _check_noise(spec: CollaborationSpec) -> None:
    """Noise needs a budget that one run fits in, and customers to clip (all problems at once)."""
    from cleanroom.privacy.noise_shares import rho_per_analysis

    spends = rho_per_analysis(spec)
    if not spends:
        return
    budget = spec.privacy.budget
    problems = []
    if budget is None:
        problems.append(
            "privacy.budget: analyses add noise, so the spec needs a budget "
            "(e.g. budget: {period: month, rho_per_period: 1, lifetime_rho: 12})"
        )
    per_run = sum(spends.values())
    if budget is not None and per_run > min(budget.rho_per_period, budget.lifetime_rho) + 1e-9:
        problems.append(
            f"privacy.budget.rho_per_period: one run spends rho {per_run:.4g}, more than the budget allows "
            f"({budget.rho_per_period:.4g} per {budget.period.value}); raise it or lower the analyses' rho"
        )
    for j, party in enumerate(spec.parties):
        if party.data is not None and party.data.store_level:
            problems.append(
                f"parties[{j}].data: noise clips each customer's contribution, and party {party.name} exports "
                "store-level totals without customers; leave it out or remove the noise"
            )
    if problems:
        raise ValueError("; ".join(problems))


def _check_regions(index: int, analysis: BasketStatistics, privacy: PrivacyPolicy) -> None:
    """Regions come from the generalized postcode, so it must be kept and at least as long."""
    if QuasiIdentifier.POSTCODE_PREFIX not in privacy.quasi_identifiers:
        raise ValueError(
            f"analyses[{index}]: regions need postcode_prefix among privacy.quasi_identifiers; add it"
        )
    if analysis.region_digits > privacy.generalization.postcode_prefix_length:
        raise ValueError(
            f"analyses[{index}].region_digits: {analysis.region_digits} digits, but postcodes are generalized "
            f"to {privacy.generalization.postcode_prefix_length} (privacy.generalization.postcode_prefix_length)"
        )


def _no_duplicates(field: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{field}[{i}]: duplicate name '{name}'")
        seen.add(name)


def is_valid_name(value: str) -> bool:
    return re.match(NAME_PATTERN, value) is not None
