"""Small self-contained SVG charts (no JavaScript, no network: the report opens anywhere)."""

from __future__ import annotations

from html import escape

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"]


def bar_chart(
    labels: list[str], series: dict[str, list[float]], title: str, unit: str, *, stacked: bool = True
) -> str:
    """Bar chart, one group per label and one colour per series (stacked or side by side), with a legend."""
    width, height, left, bottom, top = 760, 320, 70, 40, 30
    if stacked:
        peak = max(sum(values[i] for values in series.values()) for i in range(len(labels))) if labels else 1
    else:
        peak = max((max(values) for values in series.values() if values), default=1)
    peak = peak or 1
    slot = (width - left - 160) / max(len(labels), 1)
    scale = (height - bottom - top) / peak
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(f"<title>{escape(title)}</title>")
    parts.append(f'<text x="{left}" y="18" font-size="14" font-weight="bold">{escape(title)}</text>')
    for tick in range(5):
        value = peak * tick / 4
        y = height - bottom - value * scale
        parts.append(f'<line x1="{left}" x2="{width - 160}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{value:,.0f}</text>')
    for i, label in enumerate(labels):
        x = left + i * slot + slot * 0.15
        y = height - bottom
        bar = slot * 0.7 if stacked else slot * 0.7 / max(len(series), 1)
        for j, (colour, values) in enumerate(zip(PALETTE, series.values())):
            h = values[i] * scale
            y = y - h if stacked else height - bottom - h
            bx = x if stacked else x + j * bar
            parts.append(f'<rect x="{bx:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="{colour}"/>')
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 14}" font-size="10" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    for j, (name, colour) in enumerate(zip(series, PALETTE)):
        y = top + j * 18
        parts.append(f'<rect x="{width - 150}" y="{y}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{width - 132}" y="{y + 10}" font-size="11">{escape(name)}</text>')
    parts.append(f'<text x="12" y="{top + 10}" font-size="10">{escape(unit)}</text></svg>')
    return "".join(parts)
