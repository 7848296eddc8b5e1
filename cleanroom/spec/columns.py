"""Which canonical columns exist, which ones each analysis needs, and which a retailer may lack.

The spec is checked against this before any data is read: an approved analysis that needs a column a
party declares absent is refused at `check-spec`, naming the analysis, the party and the column. The
party side (`cleanroom.party.canonical`) adds types and privacy classes to the same names.
"""

from __future__ import annotations

from cleanroom.spec.analyses import AnalysisKind, CategoryMonthSales
from cleanroom.spec.sources import CanonicalTable

C, P, T = CanonicalTable.CUSTOMERS, CanonicalTable.PRODUCTS, CanonicalTable.TRANSACTIONS
S = CanonicalTable.STORE_SALES

CANONICAL_COLUMNS: dict[CanonicalTable, tuple[str, ...]] = {
    C: ("customer_id", "full_name", "email", "phone", "loyalty_id", "postcode", "birth_date", "signup_date"),
    P: ("product_id", "product_name", "category", "brand", "list_price_cents"),
    T: (
        "transaction_id",
        "basket_id",
        "customer_id",
        "product_id",
        "quantity",
        "unit_price_cents",
        "line_total_cents",
        "purchased_at",
    ),
    S: ("store_id", "product_id", "category", "period_start", "units", "sales_cents"),
}
# Keys that tie the tables together: every export has them.
KEY_COLUMNS: dict[CanonicalTable, tuple[str, ...]] = {
    C: ("customer_id",),
    P: ("product_id",),
    T: ("customer_id", "product_id"),
    S: ("store_id", "period_start"),
}
# "sales" is a line's money: its line total, or quantity x unit price (rounded once, per line).
SALES = "sales"
ANALYSIS_COLUMNS: dict[AnalysisKind, dict[CanonicalTable, tuple[str, ...]]] = {
    AnalysisKind.CATEGORY_MONTH_SALES: {
        T: ("purchased_at", SALES),
        P: ("category",),
        S: ("category", "sales_cents"),
    },
    AnalysisKind.CUSTOMER_OVERLAP: {},  # one of its join keys, checked on its own
    AnalysisKind.COPURCHASE_LIFT: {T: ("purchased_at",), P: ("category",)},
    AnalysisKind.BASKET_STATISTICS: {T: ("quantity", "purchased_at", SALES), C: ("postcode",)},
    AnalysisKind.JOINT_RECOMMENDER: {T: ("purchased_at",)},
    AnalysisKind.CUSTOMER_SEGMENTS: {T: ("purchased_at", SALES)},
}
# What a column declared absent reads as (others read as null): products without categories are
# "uncategorized", so the analyses that group by category still run (list it to see its sales).
ABSENT_DEFAULTS: dict[tuple[CanonicalTable, str], str] = {
    (P, "category"): "uncategorized",
    (S, "category"): "uncategorized",
}
# What the privacy policy derives from (join keys for overlap, generalized quasi-identifiers): used
# when present, never required.
PRIVACY_DERIVATION_COLUMNS: dict[CanonicalTable, tuple[str, ...]] = {
    C: ("customer_id", "email", "phone", "loyalty_id", "postcode", "birth_date"),
}
JOIN_KEY_COLUMNS = ("email", "phone", "loyalty_id")  # what `hashed: true` may be declared on


def expand(table: CanonicalTable, needed: tuple[str, ...], available: set[str]) -> list[str]:
    """Concrete columns for what an analysis needs, `sales` resolved to the columns this export has."""
    columns: list[str] = []
    for name in needed:
        if name != SALES:
            columns.append(name)
        elif "line_total_cents" in available:
            columns.append("line_total_cents")
        else:
            columns += ["quantity", "unit_price_cents"]
    return columns


def needed_by(analysis: object, table: CanonicalTable) -> tuple[str, ...]:
    """What one approved analysis needs from `table` (the trend's units need quantities)."""
    needed = ANALYSIS_COLUMNS[analysis.kind].get(table, ())  # type: ignore[attr-defined]
    if isinstance(analysis, CategoryMonthSales) and analysis.units and table in (T, S):
        needed = (*needed, "quantity" if table is T else "units")
    return needed


def missing_for(analysis: object, table: CanonicalTable, absent: set[str]) -> list[str]:
    """The columns `analysis` needs from `table` that the export lacks (a missing sales measure is named
    as `line_total_cents or unit_price_cents`)."""
    available = set(CANONICAL_COLUMNS[table]) - absent
    needed = needed_by(analysis, table)
    missing = [c for c in needed if c != SALES and c not in available and (table, c) not in ABSENT_DEFAULTS]
    if SALES in needed and "line_total_cents" not in available:
        lacking = [c for c in ("quantity", "unit_price_cents") if c not in available]
        if lacking:
            missing.append(" and ".join(lacking) + " (or line_total_cents)")
    return missing
