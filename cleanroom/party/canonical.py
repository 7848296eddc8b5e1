"""The canonical retail schema every party's exports are mapped to, and what each column is for.

Privacy classes drive anonymization; `ANALYSIS_COLUMNS` drives data minimization: a column that no
approved analysis (and no privacy derivation) needs is validated, then never carried further.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from cleanroom.spec.models import AnalysisKind, CollaborationSpec
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
        Column("postcode", Kind.TEXT, Privacy.QUASI_IDENTIFIER),
        Column("birth_date", Kind.DATE, Privacy.QUASI_IDENTIFIER),
        Column("signup_date", Kind.DATE),
    ),
    primary_key="customer_id",
)
PRODUCTS = TableSchema(
    CanonicalTable.PRODUCTS,
    (
        Column("gtin", Kind.TEXT),
        Column("product_name", Kind.TEXT),
        Column("category", Kind.TEXT),
        Column("brand", Kind.TEXT),
        Column("list_price_cents", Kind.MONEY),
    ),
    primary_key="gtin",
)
TRANSACTIONS = TableSchema(
    CanonicalTable.TRANSACTIONS,
    (
        Column("transaction_id", Kind.TEXT),
        Column("basket_id", Kind.TEXT),
        Column("customer_id", Kind.TEXT, Privacy.LINKABLE_ID),
        Column("gtin", Kind.TEXT),
        Column("quantity", Kind.INTEGER),
        Column("unit_price_cents", Kind.MONEY),
        Column("purchased_at", Kind.TIMESTAMP),
    ),
    primary_key="transaction_id",
)
SCHEMAS: dict[CanonicalTable, TableSchema] = {s.table: s for s in (CUSTOMERS, PRODUCTS, TRANSACTIONS)}

# Foreign keys checked row by row: (table, column) -> (referenced table, column).
FOREIGN_KEYS: dict[tuple[CanonicalTable, str], tuple[CanonicalTable, str]] = {
    (CanonicalTable.TRANSACTIONS, "gtin"): (CanonicalTable.PRODUCTS, "gtin"),
    (CanonicalTable.TRANSACTIONS, "customer_id"): (CanonicalTable.CUSTOMERS, "customer_id"),
}

ANALYSIS_COLUMNS: dict[AnalysisKind, dict[CanonicalTable, tuple[str, ...]]] = {
    AnalysisKind.CATEGORY_MONTH_SALES: {
        CanonicalTable.TRANSACTIONS: ("customer_id", "gtin", "quantity", "unit_price_cents", "purchased_at"),
        CanonicalTable.PRODUCTS: ("gtin", "category"),
        CanonicalTable.CUSTOMERS: ("customer_id",),
    },
    AnalysisKind.CUSTOMER_OVERLAP: {CanonicalTable.CUSTOMERS: ("customer_id", "email", "phone")},
    AnalysisKind.COPURCHASE_LIFT: {
        CanonicalTable.TRANSACTIONS: ("customer_id", "gtin", "purchased_at"),
        CanonicalTable.PRODUCTS: ("gtin", "category"),
        CanonicalTable.CUSTOMERS: ("customer_id",),
    },
    AnalysisKind.BASKET_STATISTICS: {
        CanonicalTable.TRANSACTIONS: ("customer_id", "quantity", "unit_price_cents", "purchased_at"),
        CanonicalTable.CUSTOMERS: ("customer_id",),  # the region comes from the generalized postcode
    },
    AnalysisKind.JOINT_RECOMMENDER: {
        CanonicalTable.TRANSACTIONS: ("customer_id", "gtin", "purchased_at"),
        CanonicalTable.CUSTOMERS: ("customer_id",),
    },
    AnalysisKind.CUSTOMER_SEGMENTS: {
        CanonicalTable.TRANSACTIONS: ("customer_id", "quantity", "unit_price_cents", "purchased_at"),
        CanonicalTable.CUSTOMERS: ("customer_id",),
    },
}
# What the privacy policy itself derives from: join keys for overlap counting and generalized
# quasi-identifiers for segment dimensions, both kept inside the party.
PRIVACY_DERIVATION_COLUMNS: dict[CanonicalTable, tuple[str, ...]] = {
    CanonicalTable.CUSTOMERS: ("customer_id", "email", "phone", "postcode", "birth_date"),
}


def columns_in_use(spec: CollaborationSpec, table: CanonicalTable) -> list[str]:
    """The canonical columns carried past validation: what approved analyses and privacy derivation use."""
    needed: set[str] = set(PRIVACY_DERIVATION_COLUMNS.get(table, ()))
    for analysis in spec.analyses:
        needed.update(ANALYSIS_COLUMNS[analysis.kind].get(table, ()))
    return [c for c in SCHEMAS[table].names if c in needed]
