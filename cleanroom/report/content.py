"""The report's content, built from approved revealed outputs only."""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import BaseModel

from cleanroom.psi.overlap import RevealedOverlap
from cleanroom.recommend.retail import PartyRecall, RecommenderOutcome
from cleanroom.secure.requests import RevealedTotals
from cleanroom.secure.shared_sales import RevealedSharedSales
from cleanroom.spec.analyses import BasketStatistics, money_band_labels
from cleanroom.spec.models import CategoryMonthSales, CollaborationSpec, CopurchaseLift, CustomerSegments
from cleanroom.spec.signatures import SpecSignature

PLAINTEXT_NOTICE = (
    "WARNING: this run's players talked plaintext gRPC (development flag, TLS off); anyone on the network "
    "could read its shares. Do not rely on its privacy."
)


class SignatureRow(BaseModel):
    """A party's signature over the spec's hash, checked against the key the spec declares for it."""

    party: str  # display name
    signed_at: str
    signature: str  # base64 Ed25519 over the spec hash


class CategoryMonthTable(BaseModel):
    categories: list[str]
    grain: str = "month"  # day, week (ISO), month or quarter
    periods: list[str]  # labels: 2025-03-14, 2025-W11, 2025-03, 2025-Q1
    sales_cents: list[list[int | None]]  # [category][period]; None = suppressed
    units: list[list[int | None]] | None = None  # units sold, the same grid; None: not approved

    def period_totals(self) -> list[int]:
        return [sum(row[m] or 0 for row in self.sales_cents) for m in range(len(self.periods))]

    def category_totals(self) -> list[int]:
        return [sum(v or 0 for v in row) for row in self.sales_cents]

    @property
    def units_shown(self) -> int | None:
        """Units sold over the revealed cells."""
        return None if self.units is None else sum(v or 0 for row in self.units for v in row)


class OverlapRow(BaseModel):
    parties: list[str]  # display names; the count is customers of the first who shop at all the others
    customers: int | None  # None = suppressed (below the minimum group size)


class SegmentTable(BaseModel):
    """Customers per RFM segment across all retailers; None = suppressed by disclosure control."""

    recency: list[str]
    frequency: list[str]
    monetary: list[str]
    customers: list[list[list[int | None]]]  # [recency][frequency][monetary]


class LiftRow(BaseModel):
    categories: tuple[str, str]
    baskets_together: int | None
    lift: float | None  # None when any count it needs was suppressed


class RecommenderSection(BaseModel):
    protocol: str
    items: int
    factors: int
    epochs: int
    top_n: int
    delivered: dict[str, bool]  # by display name
    recall: dict[str, PartyRecall]  # by display name; empty when the spec keeps evaluations private


class BasketRow(BaseModel):
    region: str
    size: str
    baskets: int | None  # None = suppressed by disclosure control
    value_cents: int | None
    mean_cents: float | None  # from the revealed value and count, when both are shown
    histogram: list[int | None]  # baskets per value band


class BasketTable(BaseModel):
    value_bands: list[str]
    rows: list[BasketRow]  # groups with at least one revealed figure
    groups_hidden: int  # groups with nothing revealed


class Headline(BaseModel):
    market_sales_cents: int  # over the revealed cells
    cells_shown: int
    cells_suppressed: int
    top_category: str
    peak_period: str


class Report(BaseModel):
    notice: str | None  # first line of every rendering when set
    title: str
    collaboration: str
    spec_sha256: str
    run_id: str
    created_at: str
    protocol: str
    parties: list[str]
    min_group_size: int
    currency: str = "EUR"  # ISO 4217, the spec's: every amount is in it
    min_contributors: int = 1
    max_share_percent: float = 100.0
    headline: Headline
    category_month: CategoryMonthTable
    verification: dict[str, bool]
    overlap: list[OverlapRow] = []
    overlap_keys: list[str] = []
    distinct_customers: int | None = None  # each customer once over all retailers (None: suppressed)
    distinct_shared: int | None = None  # of them, at two or more retailers
    segments: SegmentTable | None = None
    copurchase: list[LiftRow] = []
    recommender: RecommenderSection | None = None
    baskets: BasketTable | None = None
    shared_sales: RevealedSharedSales | None = None  # sales of customers shopping at several retailers
    signatures: list[SignatureRow] = []  # every data party approved exactly this spec

    @property
    def disclosure_rule(self) -> str:
        return (
            f"a cell needs >= {self.min_group_size} customers and >= {self.min_contributors} retailers, "
            f"none above {self.max_share_percent:g}% of it"
        )

    def headline_lines(self) -> list[str]:
        h = self.headline
        return [
            f"Market sales (revealed cells): {money(h.market_sales_cents, self.currency)}",
            *(
                [f"Units sold (revealed cells): {self.category_month.units_shown:,}"]
                if self.category_month.units is not None
                else []
            ),
            f"Cells shown: {h.cells_shown}, suppressed: {h.cells_suppressed} ({self.disclosure_rule})",
            f"Top category: {h.top_category}; peak {self.category_month.grain}: {h.peak_period}",
            *[
                f"Shared customers, {' & '.join(row.parties)}: {_count(row.customers)}"
                for row in self.overlap
                if len(row.parties) in (2, len(self.parties))  # pairs and everyone; the report has all
            ],
            *self._distinct_lines(),
            *self._insight_lines(),
        ]

    def _distinct_lines(self) -> list[str]:
        if not self.overlap:
            return []
        if self.distinct_customers is None or self.distinct_shared is None:
            return ["Customers at more than one retailer: suppressed (below the minimum group size)"]
        return [
            f"Customers at more than one retailer: {self.distinct_shared:,} of {self.distinct_customers:,} "
            f"distinct customers ({self.distinct_shared / self.distinct_customers:.0%}; each person once)"
        ]

    def _insight_lines(self) -> list[str]:
        lines = []
        strongest = next((row for row in self.copurchase if row.lift is not None), None)
        if strongest is not None:
            a, b = strongest.categories
            lines.append(f"Strongest category pair: {a} & {b} (lift {strongest.lift:.2f})")
        shared = self.shared_sales
        if shared is not None and shared.shown and shared.all_customers and shared.all_sales_cents:
            lines.append(
                f"Loyalty sales by customers who also shop elsewhere: "
                f"{shared.shared_sales_cents / shared.all_sales_cents:.0%} (customer-retailer pairs: "
                f"{shared.shared_customers:,} of {shared.all_customers:,})"
            )
        if self.recommender is not None and self.recommender.recall:
            lifts = ", ".join(f"{n} {r.lift:+.3f}" for n, r in self.recommender.recall.items())
            lines.append(f"Joint recommender, Recall@{self.recommender.top_n} lift over each alone: {lifts}")
        if self.segments is not None:
            counted = [c for by_f in self.segments.customers for by_m in by_f for c in by_m if c is not None]
            lines.append(f"Customer segments shown: {len(counted)}, customers in them: {sum(counted):,}")
        return lines


def money(cents: int, currency: str) -> str:
    """12345 cents in the spec's currency, for people: "€123.45", "US$123.45", "¥123"."""
    from babel.numbers import format_currency

    return format_currency(cents / 100, currency, locale="en")


def _count(value: int | None) -> str:
    return f"{value:,}" if value is not None else "suppressed (below the minimum group size)"


def build_report(
    spec: CollaborationSpec,
    analysis: CategoryMonthSales,
    spec_sha256: str,
    run_id: str,
    revealed: RevealedTotals,
    verification: dict[str, bool],
    *,
    overlap: RevealedOverlap | None = None,
    segments: RevealedTotals | None = None,
    copurchase: RevealedTotals | None = None,
    recommender: RecommenderOutcome | None = None,
    baskets: RevealedTotals | None = None,
    shared_sales: RevealedSharedSales | None = None,
    signatures: dict[str, SpecSignature] | None = None,
    plaintext_players: bool = False,
) -> Report:
    periods = analysis.period_labels
    n, cells = len(periods), analysis.grid_cells

    def rows(values: list[int | None]) -> list[list[int | None]]:
        return [values[i * n : (i + 1) * n] for i in range(len(analysis.categories))]

    table = CategoryMonthTable(
        categories=analysis.categories,
        grain=analysis.grain.value,
        periods=periods,
        sales_cents=rows(revealed.sales_cents[:cells]),
        units=rows(revealed.sales_cents[cells : 2 * cells]) if analysis.units else None,
    )
    per_period, by_category = table.period_totals(), table.category_totals()
    shown = sum(revealed.shown[:cells])  # cells of the sales grid (the units grid follows the same rule)
    return Report(
        notice=PLAINTEXT_NOTICE if plaintext_players else None,
        title=f"{spec.collaboration}: market sales by category and {analysis.grain.value}",
        collaboration=spec.collaboration,
        spec_sha256=spec_sha256,
        run_id=run_id,
        created_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        protocol=revealed.protocol.value,
        parties=[p.display_name for p in spec.data_parties],
        min_group_size=spec.privacy.min_group_size,
        currency=spec.currency,
        min_contributors=spec.privacy.dominance.min_contributors,
        max_share_percent=spec.privacy.dominance.max_share_percent,
        headline=Headline(
            market_sales_cents=sum(per_period),
            cells_shown=shown,
            cells_suppressed=cells - shown,
            top_category=analysis.categories[by_category.index(max(by_category))],
            peak_period=periods[per_period.index(max(per_period))],
        ),
        category_month=table,
        verification=verification,
        overlap=[
            OverlapRow(parties=[spec.party(p).display_name for p in group], customers=count)
            for group, count in zip(overlap.groups, overlap.counts)
        ]
        if overlap
        else [],
        overlap_keys=overlap.join_keys if overlap else [],
        distinct_customers=overlap.distinct_customers if overlap else None,
        distinct_shared=overlap.distinct_shared if overlap else None,
        segments=_segment_table(spec.customer_segments, segments, spec.currency)
        if segments and spec.customer_segments
        else None,
        copurchase=_lift_rows(spec.copurchase_lift, copurchase) if copurchase and spec.copurchase_lift else [],
        recommender=_recommender_section(spec, recommender) if recommender else None,
        baskets=_basket_table(spec.basket_statistics, baskets, spec.currency)
        if baskets and spec.basket_statistics
        else None,
        shared_sales=shared_sales,
        signatures=[
            SignatureRow(party=spec.party(p).display_name, signed_at=s.signed_at, signature=s.signature)
            for p, s in (signatures or {}).items()
        ],
    )


def _recommender_section(spec: CollaborationSpec, outcome: RecommenderOutcome) -> RecommenderSection:
    shown = spec.party
    return RecommenderSection(
        protocol=outcome.protocol.value,
        items=outcome.items,
        factors=outcome.factors,
        epochs=outcome.epochs,
        top_n=outcome.top_n,
        delivered={shown(p).display_name: ok for p, ok in outcome.delivered.items()},
        recall={shown(p).display_name: r for p, r in outcome.recall.items()},
    )


def _lift_rows(analysis: CopurchaseLift, revealed: RevealedTotals) -> list[LiftRow]:
    """lift(A, B) = n(A and B) * n / (n(A) * n(B)) from revealed basket counts, highest first."""
    counts = revealed.sales_cents  # for co-purchase the revealed values are basket counts
    single = dict(zip(analysis.categories, counts))
    total = counts[-1]
    rows = []
    for i, (a, b) in enumerate(analysis.pairs):
        together = counts[len(analysis.categories) + i]
        parts = (together, single[a], single[b], total)
        known = all(v is not None for v in parts) and single[a] and single[b]
        lift = together * total / (single[a] * single[b]) if known else None  # type: ignore[operator]
        rows.append(LiftRow(categories=(a, b), baskets_together=together, lift=lift))
    return sorted(rows, key=lambda r: -(r.lift or 0.0))


def _segment_table(analysis: CustomerSegments, revealed: RevealedTotals, currency: str) -> SegmentTable:
    f, m = len(analysis.frequency_baskets) + 1, len(analysis.monetary_cents) + 1
    values = revealed.sales_cents  # for segments the revealed values are customer counts
    return SegmentTable(
        recency=analysis.labels(analysis.recency_days, "days"),
        frequency=analysis.labels(analysis.frequency_baskets, "baskets"),
        monetary=money_band_labels(analysis.monetary_cents, currency),
        customers=[
            [[values[(r * f + fi) * m + mi] for mi in range(m)] for fi in range(f)]
            for r in range(len(analysis.recency_days) + 1)
        ],
    )


def _basket_table(analysis: BasketStatistics, revealed: RevealedTotals, currency: str) -> BasketTable:
    values, m = revealed.sales_cents, analysis.measures
    rows = []
    for g, (region, size) in enumerate((r, s) for r in analysis.regions for s in analysis.size_labels):
        cells = values[g * m : (g + 1) * m]
        if all(v is None for v in cells):
            continue  # nothing to show: too few baskets, or none at all
        baskets, value = cells[0], cells[1]
        mean = value / baskets if baskets and value is not None else None
        rows.append(
            BasketRow(
                region=region, size=size, baskets=baskets, value_cents=value, mean_cents=mean, histogram=cells[2:]
            )
        )
    return BasketTable(
        value_bands=money_band_labels(analysis.basket_value_cents, currency),
        rows=rows,
        groups_hidden=len(analysis.regions) * len(analysis.size_labels) - len(rows),
    )
