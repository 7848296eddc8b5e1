"""Anonymization inside one party: keyed pseudonyms, normalized join keys, generalization, k-anonymity.

The pseudonym key is shared by the collaborating parties and never leaves them: the coordinator never
reads it, and it is not in the spec (only the path, inside each party's own workspace).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from cleanroom.errors import ConfigurationError
from cleanroom.spec.models import Generalization, QuasiIdentifier
from cleanroom.spec.sources import PartyData
from cleanroom.text_files import read_text_file

PSEUDONYM_BYTES = 16  # 128-bit HMAC-SHA256 truncation: collision-free at any retail scale
MIN_KEY_BYTES = 32
SUPPRESSED = "*"


def load_pseudonym_key(data: PartyData, workspace: Path, party: str) -> bytes:
    """The collaboration's pseudonym key from the party's own workspace (hex, at least 32 bytes)."""
    return _shared_secret(workspace, data.pseudonym_key_file, party, "pseudonym key")


def load_join_key_secret(data: PartyData, workspace: Path, party: str) -> bytes:
    """The consortium's agreed secret for join keys exported already hashed (hex, at least 32 bytes)."""
    return _shared_secret(workspace, data.join_key_secret_file, party, "join-key secret")


def _shared_secret(workspace: Path, relative: str, party: str, what: str) -> bytes:
    where = f"party {party}: {relative}"
    fix = (
        f"put the consortium's {what} (64 hex characters) there; `cleanroom keygen pseudonym --out FILE` makes one"
    )
    text = read_text_file(workspace / relative, f"{what} file", fix_missing=fix, where=where)
    try:
        key = bytes.fromhex(text.strip())
    except ValueError as exc:
        raise ConfigurationError(f"{what} is not hex", where=where, fix=fix) from exc
    if len(key) < MIN_KEY_BYTES:
        raise ConfigurationError(f"{what} is shorter than {MIN_KEY_BYTES} bytes", where=where, fix=fix)
    return key


def hashed_join_keys(values: pl.Series, secret: bytes, kind: str) -> pl.Series:
    """The agreed recipe for join keys hashed before export: lower-case hex of
    HMAC-SHA256(secret, "<kind>:" + normalized key), e.g. kind "email", key "ana@example.org"."""
    prefix = kind.encode() + b":"
    out = [
        None if v is None else hmac.new(secret, prefix + v.encode(), hashlib.sha256).hexdigest() for v in values
    ]
    return pl.Series(values.name, out, dtype=pl.String)


def exported_hash(column: str) -> pl.Expr:
    """A join key exported hashed: 64 hex characters, compared in lower case; anything else is no key."""
    text = pl.col(column).str.strip_chars().str.to_lowercase()
    return pl.when(text.str.contains(r"^[0-9a-f]{64}$")).then(text)


def normalized_loyalty_id(column: str = "loyalty_id") -> pl.Expr:
    """Join key: a shared loyalty or customer id, upper case, without spaces, dots or dashes."""
    text = pl.col(column).str.to_uppercase().str.replace_all(r"[\s.\-]", "")
    return pl.when(text.str.len_chars() > 0).then(text).alias("loyalty_id_key")


def pseudonyms(values: pl.Series, key: bytes, domain: str) -> pl.Series:
    """HMAC-SHA256(key, domain || 0x00 || value), truncated to 128 bits, hex. The domain keeps a
    customer number and an email that happen to be equal from getting the same pseudonym."""
    prefix = domain.encode() + b"\x00"
    digest = hashlib.sha256
    out = [
        None if v is None else hmac.digest(key, prefix + v.encode(), digest)[:PSEUDONYM_BYTES].hex()
        for v in values.to_list()
    ]
    return pl.Series(values.name, out, dtype=pl.String)


def normalized_email(column: str = "email") -> pl.Expr:
    """Join key for overlap counting: trimmed and lower-cased; anything without one '@' is no key."""
    email = pl.col(column).str.strip_chars().str.to_lowercase()
    return pl.when(email.str.contains(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")).then(email).alias("email_key")


def e164_phone(region: str, column: str = "phone") -> pl.Expr:
    """Join key: the phone number in E.164 (+491701234567). National numbers (leading 0) get the
    region's calling code; '00' becomes '+'. Results outside 8-15 digits are no key."""
    import phonenumbers  # calling codes per region; the per-row work stays vectorized in polars

    calling_code = str(phonenumbers.country_code_for_region(region))
    text = pl.col(column).str.strip_chars()
    digits = text.str.replace_all(r"[^0-9]", "")
    international = (
        pl.when(text.str.starts_with("+"))
        .then(digits)
        .when(digits.str.starts_with("00"))
        .then(digits.str.slice(2))
        .when(digits.str.starts_with("0"))
        .then(pl.lit(calling_code) + digits.str.slice(1))
        .otherwise(None)
    )
    return pl.when(international.str.len_chars().is_between(8, 15)).then("+" + international).alias("phone_key")


def generalized(reference: date, rules: Generalization) -> list[pl.Expr]:
    """Birth date to an age band ("30-39") at the reference date; postcode to its first digits."""
    width = rules.age_band_years
    years = reference.year - pl.col("birth_date").dt.year()
    had_birthday = (pl.col("birth_date").dt.month() * 100 + pl.col("birth_date").dt.day()) <= (
        reference.month * 100 + reference.day
    )
    age = (years - pl.when(had_birthday).then(0).otherwise(1)).clip(0, 120)
    low = (age // width) * width
    band = low.cast(pl.String) + "-" + (low + width - 1).cast(pl.String)
    prefix = pl.col("postcode").str.strip_chars().str.slice(0, rules.postcode_prefix_length)
    return [band.alias(QuasiIdentifier.AGE_BAND.value), prefix.alias(QuasiIdentifier.POSTCODE_PREFIX.value)]


@dataclass(frozen=True)
class KAnonymityOutcome:
    """k-anonymity over the quasi-identifiers after local suppression (party-local report only)."""

    k_required: int
    quasi_identifiers: list[str]
    classes: int
    smallest_class: int
    records_generalized_to_suppressed: int
    records_removed: int

    @property
    def satisfied(self) -> bool:
        """Every class has k records; removing every record satisfies nothing (it used to say so)."""
        if self.classes == 0:
            return self.records_removed == 0
        return self.smallest_class >= self.k_required

    def removed_share(self, records: int) -> float:
        return self.records_removed / records if records else 0.0


def enforce_k_anonymity(
    frame: pl.DataFrame, quasi_identifiers: list[str], k: int
) -> tuple[pl.DataFrame, KAnonymityOutcome]:
    """Suppress ('*') the quasi-identifiers of records in classes smaller than k; if the suppressed
    records themselves are fewer than k, remove them, so every remaining class has at least k."""
    if not quasi_identifiers:
        return frame, KAnonymityOutcome(k, [], 1, frame.height, 0, 0)
    size = pl.len().over(quasi_identifiers)
    small = frame.select(size < k).to_series()
    suppressed = frame.with_columns(
        pl.when(small).then(pl.lit(SUPPRESSED)).otherwise(pl.col(c).cast(pl.String)).alias(c)
        for c in quasi_identifiers
    )
    removed = 0
    if 0 < int(small.sum()) < k:
        suppressed = suppressed.filter(~small)
        removed = int(small.sum())
    classes = suppressed.group_by(quasi_identifiers).len()
    outcome = KAnonymityOutcome(
        k_required=k,
        quasi_identifiers=quasi_identifiers,
        classes=classes.height,
        smallest_class=int(classes["len"].min()) if classes.height else 0,
        records_generalized_to_suppressed=int(small.sum()) - removed,
        records_removed=removed,
    )
    return suppressed, outcome
