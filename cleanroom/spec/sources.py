"""Where each party's exports are and how they map to the canonical retail schema, plus the compliance
declarations (purpose, lawful basis, retention) every table carries. Only the party's own processes
resolve these locations; the coordinator passes the spec on untouched."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from cleanroom.spec.base import Strict


class CanonicalTable(str, Enum):
    CUSTOMERS = "customers"
    PRODUCTS = "products"
    TRANSACTIONS = "transactions"
    STORE_SALES = "store_sales"  # a retailer without customer-level data: totals per store and period


CUSTOMER_LEVEL = (CanonicalTable.CUSTOMERS, CanonicalTable.PRODUCTS, CanonicalTable.TRANSACTIONS)
StoreGrain = Literal["day", "week", "month", "quarter"]


class SourceFormat(str, Enum):
    CSV = "csv"
    PARQUET = "parquet"


class Encoding(str, Enum):
    UTF8 = "utf-8"
    LATIN1 = "latin-1"
    CP1252 = "cp1252"


class MoneyUnit(str, Enum):
    CENTS = "cents"  # integer minor units: 1299
    DECIMAL = "decimal"  # major units with a decimal point: 12.99


class LawfulBasis(str, Enum):
    GDPR_CONSENT = "gdpr-consent"
    GDPR_CONTRACT = "gdpr-contract"
    GDPR_LEGITIMATE_INTERESTS = "gdpr-legitimate-interests"
    CCPA_BUSINESS_PURPOSE = "ccpa-business-purpose"
    CCPA_OPT_IN = "ccpa-opt-in"


class ColumnSource(Strict):
    """How one canonical column is read from the retailer's export."""

    source: str = Field(min_length=1, description="the column's name in the export")
    unit: MoneyUnit | None = Field(default=None, description="money columns only")
    format: str | None = Field(default=None, description="strftime format of dates and timestamps")
    time_zone: str | None = Field(default=None, description="zone of timestamps written without an offset")
    gtin: bool = Field(default=False, description="product ids only: they are GTINs (8-14 digits, checked)")
    hashed: bool = Field(
        default=False,
        description="join keys only: exported as hex HMAC-SHA256 of the normalized key under the consortium's "
        "agreed join-key secret (see README)",
    )

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            check_time_zone(value)
        return value


class CategoryLookup(Strict):
    """Product categories from a hierarchy file (departments, aisles): each product's `key` looked up
    in the file, whose `category` column names the category. A key the file lacks leaves the product
    without a category (its rows then fail the not-null rule and are quarantined)."""

    location: str = Field(description="CSV or Parquet inside the party workspace")
    key: str = Field(min_length=1, description="the column the products export and the file share")
    category: str = Field(min_length=1, description="the file's column with the category name")
    separator: Annotated[str, Field(min_length=1, max_length=1)] = ","
    encoding: Encoding = Encoding.UTF8

    _inside = field_validator("location")(classmethod(lambda cls, value: _inside_workspace(value, s3=False)))


class TableSource(Strict):
    """One canonical table: its export, column mapping and compliance declaration."""

    location: str = Field(description="path inside the party workspace, or s3://bucket/key")
    format: SourceFormat | None = Field(default=None, description="default: from the file suffix")
    encoding: Encoding = Encoding.UTF8
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (MinIO, moto)")
    columns: dict[str, str | ColumnSource] = Field(
        default_factory=dict, description="canonical name -> export column; unlisted columns keep their name"
    )
    ignore_columns: list[str] = Field(default_factory=list, description="export columns deliberately unused")
    absent: list[str] = Field(
        default_factory=list, description="canonical columns this export does not have (checked against analyses)"
    )
    separator: Annotated[str, Field(min_length=1, max_length=1)] = Field(default=",", description="CSV only")
    decimal_comma: bool = Field(default=False, description="amounts written 12,99 (CSV only)")
    category_from: CategoryLookup | None = Field(
        default=None, description="products or store_sales: categories from a hierarchy file"
    )
    period: StoreGrain | None = Field(
        default=None, description="store_sales only: the period each row covers, from its period_start"
    )
    purpose: str = Field(min_length=3, description="why this table is processed")
    lawful_basis: LawfulBasis
    retention_days: Annotated[int, Field(ge=1, le=3650)]

    _inside = field_validator("location")(classmethod(lambda cls, value: _inside_workspace(value, s3=True)))

    @property
    def resolved_format(self) -> SourceFormat:
        if self.format is not None:
            return self.format
        return SourceFormat.PARQUET if self.location.endswith(".parquet") else SourceFormat.CSV

    def column(self, canonical: str) -> ColumnSource:
        mapped = self.columns.get(canonical, canonical)
        return mapped if isinstance(mapped, ColumnSource) else ColumnSource(source=mapped)


class Bounds(Strict):
    """Plausibility bounds of one party's rows; a row outside them goes to its quarantine. Set per
    party, so nobody edits `expectations/*.json` to onboard."""

    max_quantity: int = Field(default=1000, ge=1, description="units on one line")
    max_unit_price: Decimal = Field(default=Decimal(100_000), gt=0, description="major units (12.99)")
    max_line_total: Decimal = Field(default=Decimal(1_000_000), gt=0, description="major units")
    earliest_purchase: date | None = Field(
        default=None, description="default: the spec's `history_from` (purchases before it are implausible)"
    )
    max_quarantine_share: float | None = Field(
        default=None, ge=0, le=1, description="default: privacy.max_quarantine_share"
    )

    @property
    def max_unit_price_cents(self) -> int:
        return int(self.max_unit_price * 100)

    @property
    def max_line_total_cents(self) -> int:
        return int(self.max_line_total * 100)


class PartyData(Strict):
    """A data-holding party's exports (the three customer-level tables, or store-level totals alone) and
    its local secrets' locations."""

    tables: dict[CanonicalTable, TableSource]
    bounds: Bounds = Bounds()
    # Inside the party workspace; the key is shared by the parties and never leaves them.
    pseudonym_key_file: str = "secrets/pseudonym.key"
    # Read only when some party exports a join key already hashed: the others hash theirs with it.
    join_key_secret_file: str = "secrets/join-key.key"
    phone_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = Field(
        default="DE", description="ISO country of phone numbers written without a country code"
    )

    @property
    def store_level(self) -> bool:
        """Totals per store and period, no customers: it takes part in the market trend only."""
        return CanonicalTable.STORE_SALES in self.tables

    @model_validator(mode="after")
    def _all_tables(self) -> PartyData:
        if CanonicalTable.STORE_SALES in self.tables:
            if len(self.tables) != 1:
                raise ValueError(
                    "tables: a party with store_sales exports only that table (store-level totals); the "
                    "customer-level tables are customers, products and transactions"
                )
            if self.tables[CanonicalTable.STORE_SALES].period is None:
                raise ValueError("tables.store_sales.period: say what period each row covers (day, week, month)")
        else:
            missing = [t.value for t in CUSTOMER_LEVEL if t not in self.tables]
            if missing:
                raise ValueError(
                    f"tables: missing {', '.join(missing)} (a data party exports all three, or store_sales alone)"
                )
        from cleanroom.spec.columns import CANONICAL_COLUMNS, JOIN_KEY_COLUMNS, KEY_COLUMNS

        problems = []
        for table, source in self.tables.items():
            known = CANONICAL_COLUMNS[table]
            for name in source.absent:
                if name not in known:
                    problems.append(
                        f"tables.{table.value}.absent: '{name}' is not a column (one of {', '.join(known)})"
                    )
                elif name in KEY_COLUMNS[table]:
                    problems.append(f"tables.{table.value}.absent: '{name}' ties the tables together; map it")
                elif name in source.columns:
                    problems.append(
                        f"tables.{table.value}.absent: '{name}' is also mapped under columns; keep one"
                    )
            for name in source.columns:
                if name not in known:
                    problems.append(
                        f"tables.{table.value}.columns: '{name}' is not a column (one of {', '.join(known)})"
                    )
                elif source.column(name).hashed and (
                    table is not CanonicalTable.CUSTOMERS or name not in JOIN_KEY_COLUMNS
                ):
                    problems.append(
                        f"tables.{table.value}.columns.{name}.hashed: only the customers' join keys "
                        f"({', '.join(JOIN_KEY_COLUMNS)}) can be exported hashed"
                    )
                elif source.column(name).gtin and (table, name) != (CanonicalTable.PRODUCTS, "product_id"):
                    problems.append(
                        f"tables.{table.value}.columns.{name}.gtin: only products.product_id can be GTINs"
                    )
            if source.category_from is not None:
                if table is not CanonicalTable.PRODUCTS:
                    problems.append(
                        f"tables.{table.value}.category_from: only products take categories from a file"
                    )
                elif "category" in source.columns or "category" in source.absent:
                    problems.append(
                        f"tables.{table.value}.category_from: the category comes from the file; remove "
                        "category from columns and absent"
                    )
            money = {"unit_price_cents", "line_total_cents"} - set(source.absent)
            if table is CanonicalTable.TRANSACTIONS and not money:
                problems.append("tables.transactions.absent: give unit_price_cents or line_total_cents (or both)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _inside_workspace(value: str, s3: bool) -> str:
    if s3 and value.startswith("s3://"):
        if len(value.removeprefix("s3://").split("/", 1)) != 2:
            raise ValueError("an S3 location is s3://bucket/key")
        return value
    if value.startswith("/") or ".." in value.split("/") or value.startswith("s3://"):
        where = "(relative, no '..') or s3://" if s3 else "(relative, no '..')"
        raise ValueError(f"must be a path inside the party's own workspace {where}")
    return value


def check_time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone '{value}' (use an IANA name like Europe/Berlin)") from exc
    return value
