"""The collaboration spec: who takes part, what they may learn, and how it is computed."""

from cleanroom.spec.loader import canonical_hash, load_spec
from cleanroom.spec.models import (
    Analysis,
    AnalysisKind,
    Approver,
    CollaborationSpec,
    Party,
    PartyRole,
    Protocol,
)

__all__ = [
    "Analysis",
    "AnalysisKind",
    "Approver",
    "CollaborationSpec",
    "Party",
    "PartyRole",
    "Protocol",
    "canonical_hash",
    "load_spec",
]
