"""Render a Report as one self-contained HTML page and as canonical JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from html import escape

from cleanroom.report.charts import bar_chart
from cleanroom.report.content import Report

STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1000px;color:#222}
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}
th{background:#f4f4f4}td.suppressed{background:#eee;color:#888;text-align:center}
.notice{background:#fee;border:2px solid #c00;padding:.6rem;font-weight:bold}
.meta{color:#666;font-size:12px}"""


def render_json(report: Report) -> bytes:
    return json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=False).encode()


def render_html(report: Report) -> bytes:
    table = report.category_month
    series = {
        category: [(v or 0) / 100 for v in row] for category, row in zip(table.categories, table.sales_cents)
    }
    chart = bar_chart(table.periods, series, f"Market sales by {table.grain} and category", report.currency)
    header = "".join(f"<th>{escape(m)}</th>" for m in table.periods)
    rows = _grid_rows(table.categories, table.sales_cents, 100)
    units = (
        f"""<h2>Units sold by category and {escape(table.grain)}</h2>
<p class="meta">Summed under MPC beside the sales, with the same disclosure control per cell.</p>
<table><tr><th></th>{header}</tr>{"".join(_grid_rows(table.categories, table.units, 1))}</table>"""
        if table.units is not None
        else ""
    )
    verification = "".join(
        f"<li>{escape(check)}: {'passed' if ok else 'FAILED'}</li>" for check, ok in report.verification.items()
    )
    headline = "".join(f"<li>{escape(line)}</li>" for line in report.headline_lines())
    overlap = (
        _overlap_section(report)
        + _segments_section(report)
        + _lift_section(report)
        + _basket_section(report)
        + _recommender_section(report)
    )
    notice = f'<p class="notice">{escape(report.notice)}</p>' if report.notice else ""
    page = f"""<!-- {escape(report.notice or report.title)} -->
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(report.title)}</title>
<style>{STYLE}</style></head><body>{notice}
<h1>{escape(report.title)}</h1>
<p class="meta">Run {escape(report.run_id)} &middot; {escape(report.created_at)}
&middot; protocol {escape(report.protocol)} &middot; spec sha256 {escape(report.spec_sha256)}
<br>Parties: {escape(", ".join(report.parties))}</p>
<h2>Headline</h2><ul>{headline}</ul>
{chart}
<h2>Sales by category and {escape(table.grain)} ({escape(report.currency)})</h2>
<p class="meta">Disclosure control, evaluated inside the secure computation: {escape(report.disclosure_rule)}.
Cells that fail were never revealed (&#8212;); which rule a cell failed is not revealed either.</p>
<table><tr><th></th>{header}</tr>{"".join(rows)}</table>
{units}
{overlap}
<h2>Cross-verification</h2><ul>{verification}</ul>
{_signatures_section(report)}
</body></html>"""
    return page.encode()


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


def _segments_section(report: Report) -> str:
    table = report.segments
    if table is None:
        return ""
    header = "".join(f"<th>{escape(label)}</th>" for label in table.monetary)
    rows = []
    for r_label, by_frequency in zip(table.recency, table.customers):
        for f_label, counts in zip(table.frequency, by_frequency):
            cells = "".join(_cell(c) for c in counts)
            rows.append(f"<tr><th>{escape(r_label)}</th><th>{escape(f_label)}</th>{cells}</tr>")
    return f"""<h2>Customer segments (recency, frequency, spend)</h2>
<p class="meta">Customers per segment across all retailers, counted under MPC with the same disclosure
control as the totals (&#8212; = suppressed). Recency is days since the last purchase.</p>
<table><tr><th>recency</th><th>frequency</th>{header}</tr>{"".join(rows)}</table>"""


def _lift_section(report: Report) -> str:
    if not report.copurchase:
        return ""
    rows = "".join(
        f"<tr><th>{escape(row.categories[0])} &amp; {escape(row.categories[1])}</th>"
        + _cell(row.baskets_together)
        + _cell(row.lift, "{:.2f}")
        + "</tr>"
        for row in report.copurchase
    )
    return f"""<h2>Categories bought together (co-purchase lift)</h2>
<p class="meta">Baskets across all retailers containing both categories, and the lift: how many times
more often than if the categories were chosen independently (1.0). Counts under MPC with the same
disclosure control; a lift needs all four of its counts revealed.</p>
<table><tr><th>categories</th><th>baskets</th><th>lift</th></tr>{rows}</table>"""


def _grid_rows(categories: list[str], values: list[list[int | None]], per_unit: int) -> list[str]:
    rows = []
    for category, row in zip(categories, values):
        cells = "".join(
            '<td class="suppressed" title="fewer contributing customers than the minimum">&#8212;</td>'
            if v is None
            else f"<td>{v / per_unit:,.0f}</td>"
            for v in row
        )
        rows.append(f"<tr><th>{escape(category)}</th>{cells}</tr>")
    return rows


def _basket_section(report: Report) -> str:
    table = report.baskets
    if table is None:
        return ""
    sizes = list(dict.fromkeys(row.size for row in table.rows))
    regions = list(dict.fromkeys(row.region for row in table.rows))
    mean = {(row.region, row.size): (row.mean_cents or 0) / 100 for row in table.rows}
    chart = bar_chart(
        regions,
        {size: [mean.get((region, size), 0) for region in regions] for size in sizes},
        "Mean basket value by postal region and basket size",
        report.currency,
        stacked=False,
    )
    header = "".join(f"<th>{escape(band)}</th>" for band in table.value_bands)
    rows = "".join(
        f"<tr><th>{escape(row.region)}</th><th>{escape(row.size)}</th>"
        + _cell(row.baskets)
        + _cell(None if row.value_cents is None else row.value_cents / 100, "{:,.0f}")
        + _cell(None if row.mean_cents is None else row.mean_cents / 100, "{:,.2f}")
        + "".join(_cell(c) for c in row.histogram)
        + "</tr>"
        for row in table.rows
    )
    return f"""<h2>Baskets by postal region and size</h2>
<p class="meta">Checkouts across all retailers by the first digit(s) of the customer's postcode and the
number of items, with their value ({escape(report.currency)}), mean value and a histogram over value
bands; sums under MPC with the same disclosure control (&#8212; = suppressed). {table.groups_hidden}
region/size groups had nothing to reveal and are left out.</p>
{chart}
<table><tr><th>region</th><th>size</th><th>baskets</th><th>value</th><th>mean</th>{header}</tr>{rows}</table>"""


def _recommender_section(report: Report) -> str:
    rec = report.recommender
    if rec is None:
        return ""
    names = list(rec.recall)
    chart = bar_chart(
        names,
        {
            "joint model (MPC)": [rec.recall[n].joint for n in names],
            "same model, own data alone": [rec.recall[n].alone for n in names],
            "own best sellers": [rec.recall[n].popularity for n in names],
        },
        f"Recall@{rec.top_n} on each retailer's held-out purchases",
        f"Recall@{rec.top_n}",
        stacked=False,
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


def _cell(value: float | None, form: str = "{:,}") -> str:
    """A revealed figure, or the mark of a value that disclosure control suppressed."""
    return f"<td>{form.format(value)}</td>" if value is not None else '<td class="suppressed">&#8212;</td>'
