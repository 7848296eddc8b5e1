"""The collaboration spec: who takes part, what they may learn, and how it is computed."""

from cleanroom.spec.loader import PinnedSpec, canonical_hash, load_spec, pin_spec
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
    "PinnedSpec",
    "Protocol",
    "canonical_hash",
    "load_spec",
    "pin_spec",
]
