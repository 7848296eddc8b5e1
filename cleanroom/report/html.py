"""Render a Report as one self-contained HTML page and as canonical JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cleanroom.analyses import SUMMED
from cleanroom.report.cells import cell as _cell
from cleanroom.report.comparison import change_sentence
from cleanroom.report.content import Report, money
from cleanroom.report.plots import grouped_bars
from cleanroom.spec.kinds import AnalysisKind

TEMPLATES = Environment(
    loader=PackageLoader("cleanroom.report", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    keep_trailing_newline=True,
)


def render_json(report: Report) -> bytes:
    return json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=False).encode()


def render_html(report: Report) -> bytes:
    """The page from `templates/report.html.j2` (autoescaped); the sections each analysis renders and
    the charts come in as markup."""
    context = report.context
    trend = SUMMED[AnalysisKind.CATEGORY_MONTH_SALES].html(report.category_month, context)
    sections = "".join(SUMMED[AnalysisKind(section.kind)].html(section, context) for section in report.sections)
    page = TEMPLATES.get_template("report.html.j2").render(
        report=report,
        summary=summary_lines(report),
        trend=Markup(trend),
        details=Markup(_overlap_section(report) + sections + _recommender_section(report)),
        compared=report.compared(),
        signatures=Markup(_signatures_section(report)),
    )
    return page.encode()


def summary_lines(report: Report) -> list[str]:
    """The executive summary in plain words: the biggest facts, then what was withheld and why."""
    headline, trend = report.headline, report.category_month
    lines = (
        []
        if not (report.previous_release or report.first_release)
        else [change_sentence(report.previous_release, report.compared())]
    )
    lines.append(f"{headline.top_category} sold the most over the period; sales peaked in {headline.peak_period}.")
    if report.distinct_shared is not None and report.distinct_customers:
        share = report.distinct_shared / report.distinct_customers
        lines.append(
            f"{share:.0%} of the consortium's customers shop at more than one retailer "
            f"({report.distinct_shared:,} of {report.distinct_customers:,})."
        )
    rec = report.recommender
    if rec is not None and rec.recall:
        gained = [n for n, r in rec.recall.items() if r.lift_interval[0] > 0]
        unclear = [n for n in rec.recall if n not in gained]
        if gained:
            lines.append(
                f"The joint recommender measurably beats each retailer's own data at {', '.join(gained)}."
            )
        if unclear:
            lines.append(
                f"No gain is established at {', '.join(unclear)}: the 95% interval of the lift includes zero."
            )
    total = headline.cells_shown + headline.cells_suppressed
    lines.append(
        f"{headline.cells_suppressed} of {total} {trend.grain}-by-category cells were withheld because too few "
        f"customers or retailers stood behind them, or one retailer dominated them; they are marked, never zero."
    )
    noise = trend.interval_95.get("sales_cents")
    shown = sorted(abs(v) for row in trend.sales_cents for v in row if v is not None)
    if noise is not None and shown:
        typical = shown[len(shown) // 2]
        size = "small beside" if noise < 0.1 * typical else "large against"
        lines.append(
            f"Privacy noise of ±{money(round(noise), report.currency, whole=True)} (95%) per cell is {size} a "
            f"typical cell of {money(typical, report.currency, whole=True)}"
            + (
                "."
                if noise < 0.1 * typical
                else ": read single cells with care; totals over many cells are firmer."
            )
        )
    return lines


def _signatures_section(report: Report) -> str:
    if not report.signatures:
        return ""
    rows = "".join(
        f"<tr><th>{escape(row.party)}</th><td>{escape(_utc_minute(row.signed_at))}</td>"
        f'<td style="text-align:left;font-family:monospace">{escape(row.signature[:24])}&hellip;</td></tr>'
        for row in report.signatures
    )
    return f"""<h2>Spec approved by every party</h2>
<p class="meta">Each retailer signed the hash of this spec ({escape(report.spec_sha256[:16])}&hellip;) with its
own key; its node serves no run of a spec it has not signed. Signatures checked against the keys in the spec.</p>
<table><tr><th>retailer</th><th>signed at</th><th>Ed25519 signature</th></tr>{rows}</table>"""


def _utc_minute(timestamp: str) -> str:
    """2026-12-01T08:11:36+00:00 -> 2026-12-01 08:11 UTC"""
    return datetime.fromisoformat(timestamp).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _overlap_section(report: Report) -> str:
    if not report.overlap:
        return ""
    rows = "".join(
        f"<tr><th>{escape(' & '.join(row.parties))}</th>" + _cell(row.customers) + "</tr>"
        for row in report.overlap
    )
    return f"""<h2>Shared customers (private set intersection)</h2>
<p class="meta">Matched on {escape(", ".join(report.overlap_keys))} by ECDH-PSI: no retailer learned who is
shared, only these counts. Each count is of the first-named retailer's customers who also shop at the
others, each customer once; counts below {report.min_group_size} are suppressed (&#8212;).</p>
<table><tr><th>retailers</th><th>customers</th></tr>{rows}</table>
<p class="meta">Over all retailers, each person once (linked by any shared key, also across retailers
that know different keys of them):</p>
<table><tr><th></th><th>distinct customers</th></tr>
<tr><th>at two or more retailers</th>{_cell(report.distinct_shared)}</tr>
<tr><th>at any retailer</th>{_cell(report.distinct_customers)}</tr></table>{_shared_sales(report)}"""


def _shared_sales(report: Report) -> str:
    shared = report.shared_sales
    if shared is None:
        return ""
    if not shared.shown:
        return "<p>Sales of customers who shop at more than one retailer: suppressed by disclosure control.</p>"
    return f"""<p class="meta">Computed under MPC from secret-shared overlap indicators (no one, the
coordinator included, learned which customers they are).</p>
<table><tr><th></th><th>customer-retailer pairs</th><th>sales ({escape(report.currency)})</th></tr>
<tr><th>pairs whose customer also shops elsewhere</th>{_cell(shared.shared_customers)}
{_cell(None if shared.shared_sales_cents is None else shared.shared_sales_cents / 100, "{:,.0f}")}</tr>
<tr><th>all pairs (loyalty customers per retailer, summed)</th>{_cell(shared.all_customers)}
{_cell(None if shared.all_sales_cents is None else shared.all_sales_cents / 100, "{:,.0f}")}</tr></table>"""


def _recommender_section(report: Report) -> str:
    rec = report.recommender
    if rec is None:
        return ""
    names = list(rec.recall)
    chart = grouped_bars(
        names,
        {
            "joint model (MPC)": [rec.recall[n].joint for n in names],
            "same model, own data alone": [rec.recall[n].alone for n in names],
            "own best sellers": [rec.recall[n].popularity for n in names],
        },
        f"Recall@{rec.top_n} on each retailer's held-out purchases",
        f"Recall@{rec.top_n}",
        decimals=2,
    ) + grouped_bars(
        names,
        {"lift: joint - alone": [rec.recall[n].lift for n in names]},
        f"Lift in Recall@{rec.top_n} over the retailer's own data alone, with 95% bootstrap interval",
        "lift",
        decimals=3,
        intervals={"lift: joint - alone": [tuple(rec.recall[n].lift_interval) for n in names]},
    )
    rows = "".join(
        f"<tr><th>{escape(n)}</th><td>{r.joint:.3f}</td><td>{r.alone:.3f}</td><td>{r.popularity:.3f}</td>"
        f"<td>{r.lift:+.3f} ({r.lift_interval[0]:+.3f} to {r.lift_interval[1]:+.3f})</td></tr>"
        for n, r in rec.recall.items()
    )
    delivered = ", ".join(escape(n) for n, ok in rec.delivered.items() if ok)
    evaluation = (
        f"""{chart}<table><tr><th>retailer</th><th>joint</th><th>alone</th><th>best sellers</th>
<th>lift: joint - alone (95% interval)</th></tr>{rows}</table>"""
        if rows
        else "<p>The spec keeps each retailer's evaluation with that retailer.</p>"
    )
    return f"""<h2>Joint recommendation model</h2>
<p class="meta">Matrix factorization (k = {rec.factors}, {rec.epochs} epochs, {escape(rec.protocol)}) trained
under MPC on all retailers' purchases over a shared catalogue of {rec.items} products; the mask of who
bought what stayed secret-shared. Item factors were revealed; each retailer received only its own
customers' factors and top-{rec.top_n} lists ({delivered}). Recall@{rec.top_n}: share of the products a
customer bought for the first time after the training period that were in their top {rec.top_n}.</p>
{evaluation}"""
