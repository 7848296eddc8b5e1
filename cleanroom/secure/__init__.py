"""The secure engine: the only package that imports tensorflow / tf_encrypted (lazily, inside functions)."""

from cleanroom.secure.requests import AggregateRequest, RevealedTotals

__all__ = ["AggregateRequest", "RevealedTotals"]
