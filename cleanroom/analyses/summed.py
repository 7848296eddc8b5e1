"""What an analysis computed as a secure sum is, in one place: its spec model, what each party computes
locally (a [2, cells] grid: values, and the contributors behind each for the minimum group size), the
file its player secret-shares, and its section of the report (content, headline lines, HTML).

The lifecycle loops over the approved analyses through `cleanroom.analyses.SUMMED`; adding a kind is
its module (a `SummedKind` and its spec model) and its tests. The secure computation is the same for
all of them (`cleanroom.secure.aggregates`): each party's grid enters as shares, the sums are compared
with the disclosure rules inside MPC, and only passing cells are revealed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
import polars as pl
from pydantic import BaseModel

from cleanroom.spec.kinds import AnalysisKind

if TYPE_CHECKING:
    from cleanroom.secure.requests import RevealedTotals

Model = TypeVar("Model", bound=BaseModel)
Section = TypeVar("Section", bound=BaseModel)


@dataclass(frozen=True)
class PreparedTables:
    """A party's prepared (pseudonymized, minimized) tables, as its local computations read them."""

    transactions: pl.LazyFrame  # customer_code, product_id, category, quantity, sales_cents, purchased_at
    customers: pl.LazyFrame  # customer_code, customer_pseudonym, generalized quasi-identifiers


@dataclass(frozen=True)
class ReportContext:
    """What a section needs besides its revealed cells: the consortium's currency and display names."""

    currency: str
    min_group_size: int
    disclosure_rule: str  # in words, as the report states it
    compute_parties: int = 3  # each adds its own noise where the spec asks for it


class SummedKind(ABC, Generic[Model, Section]):
    kind: ClassVar[AnalysisKind]
    model: ClassVar[type[BaseModel]]
    grid_file: ClassVar[str]  # in a prepared version and, relative, in each player's folder
    section_model: ClassVar[type[BaseModel]]  # its report content; a `kind` field tells sections apart

    @abstractmethod
    def local_grid(self, analysis: Model, tables: PreparedTables) -> np.ndarray:
        """[2, cells] int64: row 0 what is summed and revealed, row 1 the distinct contributors."""

    @abstractmethod
    def section(self, analysis: Model, revealed: RevealedTotals, context: ReportContext) -> Section:
        """The report's content for this analysis, from its revealed cells (None: suppressed)."""

    def headline(self, section: Section) -> list[str]:
        """Lines for the report's headline (none by default)."""
        return []

    @abstractmethod
    def html(self, section: Section, context: ReportContext) -> str:
        """The section's HTML (charts and tables), from its content only."""

    def cells(self, analysis: Any) -> int:
        return int(analysis.cells)
