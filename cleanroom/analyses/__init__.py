"""The analyses a consortium can approve that are computed as secure sums, one module each (spec model,
local grid, report section): the lifecycle, the party's pre-aggregation, the secure request and the
report loop over `SUMMED`. See `cleanroom.analyses.summed` for the interface."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field

from cleanroom.analyses.basket_statistics import Baskets
from cleanroom.analyses.category_month_sales import Trend
from cleanroom.analyses.copurchase_lift import Copurchase
from cleanroom.analyses.customer_segments import Segments
from cleanroom.analyses.summed import PreparedTables, ReportContext, SummedKind
from cleanroom.spec.kinds import AnalysisKind

SUMMED: dict[AnalysisKind, SummedKind[Any, Any]] = {
    kind.kind: kind for kind in (Trend(), Segments(), Copurchase(), Baskets())
}


# The report's sections of the summed analyses besides the trend (which has its own place), told apart
# by their `kind` in the JSON report.
Section = Annotated[
    Union[tuple(k.section_model for k in SUMMED.values() if k.kind is not AnalysisKind.CATEGORY_MONTH_SALES)],  # noqa: UP007
    Field(discriminator="kind"),
]


def summed_analyses(analyses: list[Any]) -> list[tuple[Any, SummedKind[Any, Any]]]:
    """The approved summed analyses with their kind, the market trend first (its grid is the one the
    parties cross-verify and the preparation's digest covers), the others in spec order."""
    found = [(a, SUMMED[a.kind]) for a in analyses if a.kind in SUMMED]
    return sorted(found, key=lambda pair: pair[0].kind is not AnalysisKind.CATEGORY_MONTH_SALES)


__all__ = ["SUMMED", "PreparedTables", "ReportContext", "Section", "SummedKind", "summed_analyses"]
