"""The canonical retail schema every party's exports are mapped to, and what each column is for.

Privacy classes drive anonymization; `cleanroom.spec.columns` says what each analysis needs, which
drives both what an export must have (its other columns may be absent) and data minimization: a column
that no approved analysis (and no privacy derivation) needs is validated, then never carried further.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cleanroom.spec.analyses import CustomerOverlap
from cleanroom.spec.columns import (
    ANALYSIS_COLUMNS,
    CANONICAL_COLUMNS,
    KEY_COLUMNS,
    PRIVACY_DERIVATION_COLUMNS,
    SALES,
    expand,
    needed_by,
)
from cleanroom.spec.models import CollaborationSpec
from cleanroom.spec.sources import CanonicalTable


class Kind(str, Enum):
    TEXT = "text"
    INTEGER = "integer"
    MONEY = "money"  # integer cents once canonical
    DATE = "date"
    TIMESTAMP = "timestamp"  # UTC once canonical


class Privacy(str, Enum):
    DIRECT_IDENTIFIER = "direct identifier"  # dropped after deriving join keys
    LINKABLE_ID = "linkable id"  # replaced by a keyed pseudonym
    QUASI_IDENTIFIER = "quasi-identifier"  # generalized, then k-anonymity checked
    ATTRIBUTE = "attribute"


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    privacy: Privacy = Privacy.ATTRIBUTE


@dataclass(frozen=True)
class TableSchema:
    table: CanonicalTable
    columns: tuple[Column, ...]
    primary_key: str

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CUSTOMERS = TableSchema(
    CanonicalTable.CUSTOMERS,
    (
        Column("customer_id", Kind.TEXT, Privacy.LINKABLE_ID),
        Column("full_name", Kind.TEXT, Privacy.DIRECT_IDENTIFIER),
        Column("email", Kind.TEXT, Privacy.DIRECT_IDENTIFIER),
        Column("phone", Kind.TEXT, Privacy.DIRECT_IDENTIFIER),
        Column("loyalty_id", Kind.TEXT, Privacy.DIRECT_IDENTIFIER),  # shared across retailers: a join key
        Column("postcode", Kind.TEXT, Privacy.QUASI_IDENTIFIER),
        Column("birth_date", Kind.DATE, Privacy.QUASI_IDENTIFIER),
        Column("signup_date", Kind.DATE),
    ),
    primary_key="customer_id",
)
PRODUCTS = TableSchema(
    CanonicalTable.PRODUCTS,
    (
        Column("product_id", Kind.TEXT),  # any string SKU; GTINs are checked only where declared
        Column("product_name", Kind.TEXT),
        Column("category", Kind.TEXT),
        Column("brand", Kind.TEXT),
        Column("list_price_cents", Kind.MONEY),
    ),
    primary_key="product_id",
)
TRANSACTIONS = TableSchema(
    CanonicalTable.TRANSACTIONS,
    (
        Column("transaction_id", Kind.TEXT),
        Column("basket_id", Kind.TEXT),
        Column("customer_id", Kind.TEXT, Privacy.LINKABLE_ID),
        Column("product_id", Kind.TEXT),
        Column("quantity", Kind.INTEGER),
        Column("unit_price_cents", Kind.MONEY),
        Column("line_total_cents", Kind.MONEY),
        Column("purchased_at", Kind.TIMESTAMP),
    ),
    primary_key="transaction_id",
)
STORE_SALES = TableSchema(
    CanonicalTable.STORE_SALES,
    (
        Column("store_id", Kind.TEXT),
        Column("product_id", Kind.TEXT),  # optional: what a hierarchy file's key may be
        Column("category", Kind.TEXT),
        Column("period_start", Kind.DATE),  # first day of the period the row covers (tables.store_sales.period)
        Column("units", Kind.INTEGER),
        Column("sales_cents", Kind.MONEY),
    ),
    primary_key="store_id",
)
SCHEMAS: dict[CanonicalTable, TableSchema] = {s.table: s for s in (CUSTOMERS, PRODUCTS, TRANSACTIONS, STORE_SALES)}
assert all(tuple(SCHEMAS[t].names) == names for t, names in CANONICAL_COLUMNS.items()), "columns.py differs"


def required_columns(spec: CollaborationSpec, table: CanonicalTable, available: set[str]) -> set[str]:
    """What an export must have for the approved analyses (the keys, each analysis's columns, the overlap's
    join keys); anything else may be missing from it. A column declared absent is never required (the
    spec check refused the analyses that cannot do without it). `available`: the columns the export has."""
    needed = set(KEY_COLUMNS[table])
    for analysis in spec.analyses:
        needed.update(expand(table, needed_by(analysis, table), available))
        if isinstance(analysis, CustomerOverlap) and table is CanonicalTable.CUSTOMERS:
            needed.update(key.value for key in analysis.join_keys)
    return needed


def columns_in_use(spec: CollaborationSpec, table: CanonicalTable) -> list[str]:
    """The canonical columns carried past validation: what approved analyses and privacy derivation use
    (absent ones are carried as nulls, so later steps find every column they name)."""
    needed: set[str] = set(PRIVACY_DERIVATION_COLUMNS.get(table, ())) | set(KEY_COLUMNS[table])
    for analysis in spec.analyses:
        for name in ANALYSIS_COLUMNS[analysis.kind].get(table, ()):
            needed.update(("quantity", "unit_price_cents", "line_total_cents") if name == SALES else (name,))
    return [c for c in SCHEMAS[table].names if c in needed]
