"""Render a Report as one self-contained HTML page and as canonical JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from markupsafe import Markup

from cleanroom.analyses import SUMMED
from cleanroom.recommend.retail import PartyRecall
from cleanroom.report.comparison import change_sentence
from cleanroom.report.content import Report, money
from cleanroom.report.plots import grouped_bars
from cleanroom.report.templating import render
from cleanroom.spec.kinds import AnalysisKind


def render_json(report: Report) -> bytes:
    return json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=False).encode()


def render_html(report: Report) -> bytes:
    """The page from `templates/report.html.j2` (autoescaped); the sections each analysis renders and
    the charts come in as markup."""
    context = report.context
    trend = SUMMED[AnalysisKind.CATEGORY_MONTH_SALES].html(report.category_month, context)
    sections = "".join(SUMMED[AnalysisKind(section.kind)].html(section, context) for section in report.sections)
    rec = report.recommender
    page = render(
        "report.html.j2",
        report=report,
        summary=summary_lines(report),
        trend=Markup(trend),
        sections=Markup(sections),
        compared=report.compared(),
        rec=rec,
        chart=_recommender_chart(report),
        delivered=[name for name, ok in rec.delivered.items() if ok] if rec else [],
        ndcg=bool(rec and any(r.ndcg for r in rec.recall.values())),
        blends=bool(rec and rec.recall and all(r.blend is not None for r in rec.recall.values())),
        verdicts=recommender_verdicts(rec.recall, rec.top_n) if rec else [],
        interval=_interval,
        utc_minute=_utc_minute,
    )
    return page.encode()


def summary_lines(report: Report) -> list[str]:
    """The executive summary in plain words: the biggest facts, then what was withheld and why."""
    headline, trend = report.headline, report.category_month
    lines = [report.rerun_note] if report.rerun_note else []
    if report.previous_release or report.first_release:
        lines.append(change_sentence(report.previous_release, report.compared()))
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


def recommender_verdicts(recall: dict[str, PartyRecall], top_n: int) -> list[str]:
    """Per retailer, in plain words: does the collaboration measurably help it (through the lists its
    customers got: the joint model's, or its blend with the retailer's own), and does the joint model beat
    its own best sellers."""
    lines = []
    for name, r in recall.items():
        blended = r.delivered == "blend" and r.blend_lift is not None and r.blend_lift_interval is not None
        lift, (low, high) = (r.blend_lift, r.blend_lift_interval) if blended else (r.lift, r.lift_interval)
        model = "the blend of the joint model and its own" if blended else "the joint model"
        if low > 0:
            verdict = f"{name} gains from the collaboration: Recall@{top_n} {lift:+.3f} over its own data alone"
            verdict += " with lists blending the joint model and its own" if blended else ""
        elif high < 0:
            verdict = f"{name} does worse with {model} than with its own data alone ({lift:+.3f})"
        else:
            verdict = f"{name} gains nothing measurable from the collaboration (the lift's interval includes zero)"
        if r.delivered == "own":
            verdict += (
                "; it sends its customers its own model's lists, which did better on its validation purchases"
            )
        elif blended:
            verdict += (
                "; it sends its customers lists blending the joint model with its own, which did best on its "
                "validation purchases"
            )
        lines.append(
            verdict
            + (
                "; the joint model beats its own best sellers."
                if r.joint > r.popularity
                else "; its own best sellers do as well."
            )
        )
    return lines


def _interval(bounds: tuple[float, float] | None) -> Markup:
    if bounds is None:
        return Markup("")
    return Markup('<span class="meta"> ({:.3f}–{:.3f})</span>').format(bounds[0], bounds[1])


def _utc_minute(timestamp: str) -> str:
    """2026-12-01T08:11:36+00:00 -> 2026-12-01 08:11 UTC"""
    return datetime.fromisoformat(timestamp).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _recommender_chart(report: Report) -> Markup:
    rec = report.recommender
    if rec is None or not rec.recall:
        return Markup("")
    names = list(rec.recall)
    blends = all(rec.recall[n].blend is not None for n in names)  # the scalable mode's
    series: dict[str, list[float | None]] = {
        "joint model (MPC)": [rec.recall[n].joint for n in names],
        **({"blend of joint and own": [rec.recall[n].blend for n in names]} if blends else {}),
        "same model, own data alone": [rec.recall[n].alone for n in names],
        "own best sellers": [rec.recall[n].popularity for n in names],
    }
    lifts: dict[str, list[float | None]] = {"lift: joint - alone": [rec.recall[n].lift for n in names]}
    intervals: dict[str, list[tuple[float, float] | None]] = {
        "lift: joint - alone": [tuple(rec.recall[n].lift_interval) for n in names]
    }
    if blends:
        lifts["lift: blend - alone"] = [rec.recall[n].blend_lift for n in names]
        intervals["lift: blend - alone"] = [rec.recall[n].blend_lift_interval for n in names]
    return Markup(
        grouped_bars(
            names,
            series,
            f"Recall@{rec.top_n} on each retailer's held-out purchases",
            f"Recall@{rec.top_n}",
            decimals=2,
        )
        + grouped_bars(
            names,
            lifts,
            f"Lift in Recall@{rec.top_n} over the retailer's own data alone, with 95% bootstrap interval",
            "lift",
            decimals=3,
            intervals=intervals,
        )
    )
