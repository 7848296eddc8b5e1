"""Table cells of the HTML report: a revealed figure, or the mark of one disclosure control withheld."""

from __future__ import annotations

from html import escape

SUPPRESSED = '<td class="suppressed" title="withheld by disclosure control">&#8212;</td>'


def cell(value: float | None, form: str = "{:,}") -> str:
    return f"<td>{form.format(value)}</td>" if value is not None else SUPPRESSED


def grid_rows(labels: list[str], values: list[list[int | None]], per_unit: int) -> str:
    """One row per label, each value divided by `per_unit` (100: cents shown in currency units)."""
    rows = []
    for label, row in zip(labels, values):
        cells = "".join(cell(None if v is None else v / per_unit, "{:,.0f}") for v in row)
        rows.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    return "".join(rows)
