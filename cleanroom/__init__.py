"""Secure multi-party analytics for retail consortia: the domain library (no Prefect imports here)."""

__version__ = "0.1.0"
