"""Band bounds and their labels, shared by the analyses that band customers or baskets."""

from __future__ import annotations

from itertools import pairwise


def check_ascending(value: list[int]) -> list[int]:
    if any(b <= a for a, b in pairwise(value)) or value[0] < 0:
        raise ValueError("band bounds must be non-negative and strictly ascending")
    return value


def band_labels(bounds: list[int], unit: str) -> list[str]:
    return [f"<= {b} {unit}" for b in bounds] + [f"> {bounds[-1]} {unit}"]


def money_band_labels(bounds_cents: list[int], currency: str) -> list[str]:
    upper = [f"<= {currency} {b / 100:,.0f}" for b in bounds_cents]
    return [*upper, f"> {currency} {bounds_cents[-1] / 100:,.0f}"]
