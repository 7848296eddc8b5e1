"""Pydantic models of the collaboration spec. Parties, roles and protocols are types, not strings."""

from __future__ import annotations

import base64
import re
from datetime import date
from enum import Enum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[a-z][a-z0-9-]{1,30}$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartyRole(str, Enum):
    COMPUTE = "compute"  # holds data and runs a secure-computation player
    INPUT = "input"  # holds data, provides secret-shared input only
    OBSERVER = "observer"  # receives approved outputs, holds no data


class Protocol(str, Enum):
    ABY3 = "aby3"  # three compute parties, honest majority, replicated sharing
    POND = "pond"  # two compute parties plus a dealer of multiplication triples
    SECURENN = "securenn"  # Pond plus the third party's comparison protocol


class AnalysisKind(str, Enum):
    CATEGORY_MONTH_SALES = "category_month_sales"


def _check_age_recipient(value: str) -> str:
    from pyrage import x25519  # local import: pyrage is only needed where keys are checked

    try:
        x25519.Recipient.from_str(value)
    except Exception as exc:  # pyrage raises its own types; any failure means a bad key
        raise ValueError(f"not an age X25519 public key (age1...): {value[:16]}...") from exc
    return value


class Party(Strict):
    name: Name
    display_name: str
    role: PartyRole
    # Where the party's exports are, relative to that party's own workspace. Only the party's own
    # processes resolve it; the coordinator passes it on untouched.
    data_location: str = "raw"
    public_key: str = Field(description="age X25519 recipient for outputs addressed to this party")

    _age = field_validator("public_key")(_check_age_recipient)

    @field_validator("data_location")
    @classmethod
    def _relative_location(cls, value: str) -> str:
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("must be a path inside the party's own workspace (relative, no '..')")
        return value


class Approver(Strict):
    name: Name
    party: Name
    email: str
    public_key: str = Field(description="age X25519 recipient: the report is encrypted to it")

    _age = field_validator("public_key")(_check_age_recipient)


class Objective(Strict):
    id: Name
    description: str


class Analysis(Strict):
    id: Name
    kind: AnalysisKind
    objective: Name
    categories: list[str] = Field(min_length=1)
    period_start: date
    months: int = Field(ge=1, le=36)
    time_zone: str = "UTC"  # months are calendar months in this zone

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone '{value}' (use an IANA name like Europe/Berlin)") from exc
        return value

    @field_validator("period_start")
    @classmethod
    def _first_of_month(cls, value: date) -> date:
        if value.day != 1:
            raise ValueError("must be the first day of a month (YYYY-MM-01)")
        return value

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("categories must be unique")
        return value

    @property
    def month_labels(self) -> list[str]:
        labels = []
        year, month = self.period_start.year, self.period_start.month
        for _ in range(self.months):
            labels.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return labels


class SecureComputation(Strict):
    protocol: Protocol = Protocol.ABY3


class PrivacyPolicy(Strict):
    min_group_size: int = Field(ge=2, description="cells with fewer contributing customers are suppressed")


class Reporting(Strict):
    signing_public_key: str = Field(description="Ed25519 public key (base64) that signs report manifests")
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{2,62}$")]
    prefix: str = "reports"

    @field_validator("signing_public_key")
    @classmethod
    def _ed25519(cls, value: str) -> str:
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise ValueError("not base64") from exc
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes (44 base64 characters)")
        return value


PLAYERS_PER_PROTOCOL = {Protocol.ABY3: 3, Protocol.POND: 3, Protocol.SECURENN: 3}


class CollaborationSpec(Strict):
    collaboration: Name
    version: int = Field(ge=1)
    objectives: list[Objective] = Field(min_length=1)
    parties: list[Party] = Field(min_length=2)
    approvers: list[Approver] = Field(min_length=1)
    analyses: list[Analysis] = Field(min_length=1)
    secure_computation: SecureComputation = SecureComputation()
    privacy: PrivacyPolicy
    reporting: Reporting

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
        objective_ids = {o.id for o in self.objectives}
        for i, analysis in enumerate(self.analyses):
            if analysis.objective not in objective_ids:
                raise ValueError(f"analyses[{i}].objective: '{analysis.objective}' is not a declared objective")
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


def _no_duplicates(field: str, names: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{field}[{i}]: duplicate name '{name}'")
        seen.add(name)


def is_valid_name(value: str) -> bool:
    return re.match(NAME_PATTERN, value) is not None
