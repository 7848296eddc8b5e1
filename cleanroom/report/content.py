"""The report's content, built from approved revealed outputs only."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from cleanroom.analyses import SUMMED, ReportContext, Section, summed_analyses
from cleanroom.analyses.category_month_sales import CategoryMonthTable
from cleanroom.privacy.budget import BudgetStatus
from cleanroom.privacy.statement import PrivacyStatement, privacy_statement
from cleanroom.psi.overlap import RevealedOverlap
from cleanroom.recommend.retail import PartyRecall, RecommenderOutcome, TriedSettings
from cleanroom.release.rerun import Rerun
from cleanroom.report.comparison import ComparedFigure, PreviousRelease, compared, headline_figures
from cleanroom.secure.requests import RevealedTotals
from cleanroom.secure.shared_sales import RevealedSharedSales
from cleanroom.spec.kinds import AnalysisKind
from cleanroom.spec.models import CategoryMonthSales, CollaborationSpec
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


class OverlapRow(BaseModel):
    parties: list[str]  # display names; the count is customers of the first who shop at all the others
    customers: int | None  # None = suppressed (below the minimum group size)


class RecommenderSection(BaseModel):
    protocol: str
    mode: str = "oblivious"
    items: int
    items_modelled: int | None = None  # scalable: bought by enough customers at enough retailers
    rho: float | None = None  # scalable: the training's privacy loss
    search: list[TriedSettings] = []  # scalable: the settings tried (phase 5.2), the chosen one marked

    def choice(self) -> dict | None:
        """What the ledger records of the search: the chosen settings, their validation recall, how many tried."""
        chosen = [t for t in self.search if t.chosen]
        return chosen[0].model_dump(exclude={"chosen"}) | {"candidates": len(self.search)} if chosen else None

    factors: int
    epochs: int
    top_n: int
    delivered: dict[str, bool]  # by display name
    recall: dict[str, PartyRecall]  # by display name; empty when the spec keeps evaluations private


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
    sections: list[Section] = []  # the other approved summed analyses, in spec order
    store_level: list[str] = []  # retailers that contributed store-level totals (no customers)
    min_stores_per_cell: int = 0  # ... whose figures in a cell count as a full group from this many stores
    recommender: RecommenderSection | None = None
    shared_sales: RevealedSharedSales | None = None  # sales of customers shopping at several retailers
    signatures: list[SignatureRow] = []  # every data party approved exactly this spec
    privacy: PrivacyStatement | None = None  # differential privacy: noise per figure, budget spent
    # The ledger's previous release, to compare with; first_release when the ledger was read and is empty.
    previous_release: PreviousRelease | None = None
    first_release: bool = False
    rerun_note: str | None = None  # this run repeats another with stricter disclosure control

    def compared(self) -> list[ComparedFigure]:
        """Every headline figure beside the previous release's (none without its figures)."""
        previous = self.previous_release
        if previous is None or previous.figures is None:
            return []
        return compared(previous.figures, headline_figures(self), lambda cents: money(cents, self.currency))

    @property
    def context(self) -> ReportContext:
        return ReportContext(self.currency, self.min_group_size, self.disclosure_rule)

    @property
    def disclosure_rule(self) -> str:
        return disclosure_rule(self.min_group_size, self.min_contributors, self.max_share_percent)

    @property
    def store_level_rule(self) -> str:
        return (
            f"Store-level totals from {', '.join(self.store_level)} (no customer counts): their figures in a cell "
            f"count as {self.min_group_size} customers when they come from at least {self.min_stores_per_cell} "
            "stores, else as none"
        )

    def section(self, kind: AnalysisKind) -> Any:
        """The section of an approved summed analysis (None when the spec does not approve it)."""
        return next((s for s in self.sections if s.kind == kind.value), None)

    def headline_lines(self) -> list[str]:
        h = self.headline
        return [
            f"Market sales (revealed cells): {money(h.market_sales_cents, self.currency)}",
            *SUMMED[AnalysisKind.CATEGORY_MONTH_SALES].headline(self.category_month),
            f"Cells shown: {h.cells_shown}, suppressed: {h.cells_suppressed} ({self.disclosure_rule})",
            *([self.store_level_rule] if self.store_level else []),
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
        lines = [
            line for section in self.sections for line in SUMMED[AnalysisKind(section.kind)].headline(section)
        ]
        shared = self.shared_sales
        if shared is not None and shared.shown and shared.all_customers and shared.all_sales_cents:
            lines.append(
                f"Loyalty sales by customers who also shop elsewhere: "
                f"{shared.shared_sales_cents / shared.all_sales_cents:.0%} (customer-retailer pairs: "
                f"{shared.shared_customers:,} of {shared.all_customers:,})"
            )
        if self.recommender is not None and self.recommender.recall:
            lifts = ", ".join(_sent_lift(n, r) for n, r in self.recommender.recall.items())
            lines.append(f"Joint recommender, Recall@{self.recommender.top_n} over each alone: {lifts}")
        return lines


def disclosure_rule(min_group_size: int, min_contributors: int, max_share_percent: float) -> str:
    return (
        f"a cell needs >= {min_group_size} customers and >= {min_contributors} retailers, "
        f"none above {max_share_percent:g}% of it"
    )


def money(cents: int, currency: str, whole: bool = False) -> str:
    """12345 cents in the spec's currency, for people: "€123.45", "US$123.45", "¥123" ("€123" whole)."""
    from babel.numbers import format_currency

    if whole:
        return format_currency(round(cents / 100), currency, locale="en", format="¤#,##0", currency_digits=False)
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
    sums: dict[str, RevealedTotals] | None = None,
    recommender: RecommenderOutcome | None = None,
    shared_sales: RevealedSharedSales | None = None,
    signatures: dict[str, SpecSignature] | None = None,
    plaintext_players: bool = False,
    budget: BudgetStatus | None = None,
    previous: PreviousRelease | None = None,
    ledger_read: bool = False,
    rerun: Rerun | None = None,
) -> Report:
    """The report from the revealed outputs: `revealed` is the market trend's, `sums` every other summed
    analysis's by id (each becomes its module's section)."""
    rule = spec.privacy.dominance
    context = ReportContext(
        spec.currency,
        spec.privacy.min_group_size,
        disclosure_rule(spec.privacy.min_group_size, rule.min_contributors, rule.max_share_percent),
        len(spec.compute_parties),
    )
    table = SUMMED[analysis.kind].section(analysis, revealed, context)
    periods, cells = table.periods, analysis.grid_cells
    per_period, by_category = table.period_totals(), table.category_totals()
    shown = analysis.sales_cells_shown(revealed.shown)
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
        sections=[
            kind.section(other, (sums or {})[other.id], context)
            for other, kind in summed_analyses(spec.analyses)
            if other.id in (sums or {}) and other.kind is not AnalysisKind.CATEGORY_MONTH_SALES
        ],
        recommender=_recommender_section(spec, recommender) if recommender else None,
        store_level=[p.display_name for p in spec.data_parties if p.data is not None and p.data.store_level],
        min_stores_per_cell=spec.privacy.min_stores_per_cell,
        shared_sales=shared_sales,
        signatures=[
            SignatureRow(party=spec.party(p).display_name, signed_at=s.signed_at, signature=s.signature)
            for p, s in (signatures or {}).items()
        ],
        privacy=privacy_statement(spec, budget),
        previous_release=previous,
        first_release=ledger_read and previous is None,
        rerun_note=_rerun_note(rerun) if rerun else None,
    )


def _rerun_note(rerun: Rerun) -> str:
    why = f' ("{rerun.comment}")' if rerun.comment else ""
    return (
        f"This is a re-run of run {rerun.previous_run}, requested by {rerun.requested_by}{why} with stricter "
        f"disclosure control than the spec's: {'; '.join(rerun.changes)}. Nothing of the earlier run was released."
    )


def _recommender_section(spec: CollaborationSpec, outcome: RecommenderOutcome) -> RecommenderSection:
    shown = spec.party
    return RecommenderSection(
        protocol=outcome.protocol.value,
        mode=outcome.mode,
        items=outcome.items,
        items_modelled=outcome.items_modelled,
        rho=outcome.rho,
        search=outcome.search,
        factors=outcome.factors,
        epochs=outcome.epochs,
        top_n=outcome.top_n,
        delivered={shown(p).display_name: ok for p, ok in outcome.delivered.items()},
        recall={shown(p).display_name: r for p, r in outcome.recall.items()},
    )


def _sent_lift(name: str, recall: PartyRecall) -> str:
    """A retailer's gain in Recall@N over its own data alone, through the lists it sends its customers."""
    if recall.delivered == "blend" and recall.blend_lift is not None:
        return f"{name} {recall.blend_lift:+.3f} (the blend of joint and own)"
    if recall.delivered == "own":
        return f"{name} none (sends its own model's lists; the joint model's {recall.lift:+.3f})"
    return f"{name} {recall.lift:+.3f}"
