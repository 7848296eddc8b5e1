"""The collaboration spec: who takes part, what they may learn, and how it is computed.

Names load on first use (PEP 562), so the analysis modules can import `cleanroom.spec.kinds` while
the spec models import them."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "PinnedSpec": "cleanroom.spec.loader",
    "canonical_hash": "cleanroom.spec.loader",
    "load_spec": "cleanroom.spec.loader",
    "pin_spec": "cleanroom.spec.loader",
    "Analysis": "cleanroom.spec.models",
    "AnalysisKind": "cleanroom.spec.models",
    "Approver": "cleanroom.spec.models",
    "CollaborationSpec": "cleanroom.spec.models",
    "Party": "cleanroom.spec.models",
    "PartyRole": "cleanroom.spec.models",
    "Protocol": "cleanroom.spec.models",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'cleanroom.spec' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
