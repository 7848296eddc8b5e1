"""Load a spec file into models with one-line errors, and pin it by its canonical hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from cleanroom.errors import ConfigurationError
from cleanroom.spec.models import CollaborationSpec
from cleanroom.strict_yaml import read_yaml_file

FIXES = {
    "missing": "add the field",
    "extra_forbidden": "remove it or check its spelling",
    "enum": "use one of the listed values",
    "string_pattern_mismatch": "use lower-case letters, digits and '-', starting with a letter",
}


def load_spec(path: Path) -> CollaborationSpec:
    """Read and validate a collaboration spec; raise ConfigurationError naming file, field and fix."""
    path = Path(path)
    raw = read_yaml_file(path, "spec file", fix_missing="pass --spec with the path of your consortium YAML")
    if not isinstance(raw, dict):
        raise ConfigurationError("the spec must be a YAML mapping", where=str(path), fix="see demo spec")
    try:
        return CollaborationSpec.model_validate(raw)
    except ValidationError as exc:
        raise first_error(path, exc) from exc


def first_error(path: Path, exc: ValidationError) -> ConfigurationError:
    """The first validation error as one line naming file, field and fix (and how many more there are)."""
    error = exc.errors()[0]
    field = ".".join(_loc_part(p) for p in error["loc"]).replace(".[", "[")
    message = error["msg"].removeprefix("Value error, ")
    # Model-level checks already name their field at the start of the message.
    if not field and ":" in message:
        field, message = message.split(":", 1)
        message = message.strip()
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    fix = FIXES.get(error["type"], "correct the value")
    return ConfigurationError(message + extra, where=f"{path}: {field or '<root>'}", fix=fix)


def _loc_part(part: object) -> str:
    return f"[{part}]" if isinstance(part, int) else str(part)


def canonical_hash(spec: CollaborationSpec) -> str:
    """SHA-256 over the spec's canonical JSON (sorted keys, no whitespace): formatting does not matter."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class PinnedSpec:
    """A validated spec with the hash that every output of the run records."""

    path: Path
    spec: CollaborationSpec
    sha256: str


def pin_spec(path: Path) -> PinnedSpec:
    spec = load_spec(path)
    analysis = spec.joint_recommender
    if analysis is not None:
        from cleanroom.recommend.oblivious_cost import too_slow
        from cleanroom.spec.catalogue import load_catalogue  # the files a spec pins are checked with it

        items = len(load_catalogue(Path(path), spec))
        shape = (analysis.users_per_party, len(spec.data_parties), items, analysis.factors, analysis.epochs)
        problem = too_slow(*shape) if analysis.mode.value == "oblivious" else None
        if problem:
            raise ConfigurationError(
                problem,
                where=f"{path}: analyses[{spec.analyses.index(analysis)}]",
                fix="lower users_per_party, factors or epochs, agree a smaller catalogue, or use mode: scalable",
            )
    return PinnedSpec(Path(path).resolve(), spec, canonical_hash(spec))
