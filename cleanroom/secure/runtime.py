"""TF Encrypted's global config and protocol, set inside a scope that restores them."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cleanroom.errors import SecureComputationError
from cleanroom.spec.models import Protocol

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def import_tfe() -> Any:
    import tf_encrypted as tfe

    logging.getLogger("tf_encrypted").setLevel(logging.WARNING)
    return tfe


def secure_randomness_available() -> bool:
    import_tfe()
    from tf_encrypted.operations.secure_random import supports_secure_randomness

    return bool(supports_secure_randomness())


def require_secure_randomness() -> None:
    """Refuse to compute without secure randomness: shares would be predictable. There is no switch to
    allow it (a development flag that weakens every share is one mistyped deployment away)."""
    if not secure_randomness_available():
        raise SecureComputationError(
            "TF Encrypted's secure random ops are not loaded: shares would be predictable",
            where="secure engine",
            fix="install tensorflow==2.9.1 with tf-encrypted==0.9.1 (make setup)",
        )


def make_protocol(protocol: Protocol, config: Any, players: list[str]) -> Any:
    tfe = import_tfe()
    resolved = [config.get_player(name) for name in players]
    if protocol is Protocol.ABY3:
        return tfe.protocol.ABY3(*resolved)
    # Pond itself has no secure comparison; SecureNN is Pond (same two servers, same shares, the third
    # player as triple dealer) plus the third player's comparison protocol, so the Pond setting runs
    # sums in Pond and the disclosure check with SecureNN's comparison.
    return tfe.protocol.SecureNN(*resolved)


def greater_than(prot: Any, x: Any, threshold: float) -> Any:
    """Private bit x > threshold; the method name differs between TF Encrypted protocols."""
    if hasattr(prot, "greater_than"):
        return prot.greater_than(x, threshold)
    return prot.greater(x, threshold)


def all_true(prot: Any, bits: list[Any]) -> Any:
    """The AND of private bits: boolean shares in ABY3, 0/1 arithmetic shares in Pond/SecureNN."""
    result = bits[0]
    for bit in bits[1:]:
        result = prot.and_(result, bit) if hasattr(prot, "and_") else result * bit
    return result


@contextmanager
def protocol_scope(protocol: Protocol, config: Any, players: list[str]) -> Iterator[Any]:
    """Set TF Encrypted's config and protocol for the block, then restore what was there."""
    tfe = import_tfe()
    from tf_encrypted import config as tfe_config

    previous_config = tfe_config.get_config()
    previous_protocol = tfe.get_protocol()
    tfe.set_config(config)
    try:
        prot = make_protocol(protocol, config, players)
        tfe.set_protocol(prot)
        yield prot
    finally:
        tfe.set_config(previous_config)
        tfe.set_protocol(previous_protocol)
