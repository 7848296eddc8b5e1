"""The report's charts, drawn by matplotlib (Agg) as inline SVG: readable ticks and axis titles, cells
withheld by disclosure control marked as withheld (never drawn as zero), intervals where a figure has
them. Text stays text (searchable, printable); no script, no network: the report opens anywhere."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

STYLE = {
    "svg.fonttype": "none",  # text as <text>, not paths
    "svg.hashsalt": "cleanroom",  # the same figure gives the same SVG (reports are hashed)
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e5e5e5",
    "axes.axisbelow": True,
}
WITHHELD_COLOUR = "#9a9a9a"


def _pyplot() -> Any:
    """matplotlib, loaded when a chart is drawn: the nodes and players import the analyses (and so this
    module) but never draw, and should not pay for matplotlib's import."""
    import matplotlib

    matplotlib.use("Agg")  # no display, and no backend chosen by the environment
    import matplotlib.pyplot as plt

    return plt


def _formatter(format_value: Any) -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(format_value)


def _svg(figure: Any) -> str:
    plt = _pyplot()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _thousands(value: float, _: object) -> str:
    return f"{value:,.0f}"


def trend_chart(
    periods: Sequence[str],
    series: dict[str, list[float | None]],
    title: str,
    y_title: str,
    *,
    interval: float | None = None,
) -> str:
    """One line per category over the periods; a withheld cell is a gap in its line with a grey ×
    on the axis, and the legend says how many of each line's cells were withheld. `interval`: every
    value's 95% half-width (noise), drawn as an error bar at each point."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(9.5, 4.2))
        x = range(len(periods))
        for name, values in series.items():
            shown = [math.nan if v is None else v for v in values]
            withheld = [i for i, v in enumerate(values) if v is None]
            label = f"{name} ({len(withheld)} withheld)" if withheld else name
            (line,) = axes.plot(x, shown, marker="o", markersize=3, linewidth=1.6, label=label)
            if interval:  # thin error bars: bands of nine overlapping lines would merge into one
                colour = line.get_color()
                axes.errorbar(
                    x, shown, yerr=interval, fmt="none", ecolor=colour, elinewidth=0.8, capsize=2, alpha=0.6
                )
            if withheld:
                axes.scatter(withheld, [0] * len(withheld), marker="x", color=line.get_color(), s=28, zorder=3)
        axes.set_xticks(list(x), list(periods), rotation=45 if len(periods) > 8 else 0, ha="right")
        axes.set_ylim(bottom=0)
        axes.yaxis.set_major_formatter(_formatter(_thousands))
        axes.set_ylabel(y_title)
        axes.set_title(title, loc="left", fontweight="bold")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="× on the axis: withheld")
        return _svg(figure)


def grouped_bars(
    groups: Sequence[str],
    series: dict[str, list[float | None]],
    title: str,
    y_title: str,
    *,
    decimals: int = 0,
    intervals: dict[str, list[tuple[float, float] | None]] | None = None,
) -> str:
    """Bars side by side per group, one colour per series; a withheld value is an empty grey-outlined
    bar labelled 'withheld'; an interval is drawn as an error bar (e.g. a 95% confidence interval)."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(figsize=(9.5, 3.8))
        width = 0.8 / max(len(series), 1)
        peak = max((v for values in series.values() for v in values if v is not None), default=1.0) or 1.0
        for j, (name, values) in enumerate(series.items()):
            positions = [i - 0.4 + width * (j + 0.5) for i in range(len(groups))]
            heights = [0.0 if v is None else v for v in values]
            errors = None
            if intervals and name in intervals:
                spans = intervals[name]
                errors = [
                    [0.0 if s is None else max(h - s[0], 0.0) for h, s in zip(heights, spans)],
                    [0.0 if s is None else max(s[1] - h, 0.0) for h, s in zip(heights, spans)],
                ]
            bars = axes.bar(positions, heights, width * 0.92, label=name, yerr=errors, capsize=3 if errors else 0)
            for bar, value in zip(bars, values):
                if value is None:
                    bar.set_height(peak * 0.04)
                    bar.set_facecolor("none")
                    bar.set_edgecolor(WITHHELD_COLOUR)
                    bar.set_hatch("//")
                    axes.annotate(
                        "withheld",
                        (bar.get_x() + bar.get_width() / 2, peak * 0.05),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                        color=WITHHELD_COLOUR,
                        rotation=90,
                    )
        axes.set_xticks(range(len(groups)), list(groups))
        axes.yaxis.set_major_formatter(_formatter(lambda v, _: f"{v:,.{decimals}f}"))
        axes.set_ylabel(y_title)
        axes.set_title(title, loc="left", fontweight="bold")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return _svg(figure)
