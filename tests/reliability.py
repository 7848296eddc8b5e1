"""The reliability figures (`make check-reliability`, and at the end of `make test`): what the fault
and malformed-input tests observed, recorded before they assert, so the printed counts are measured.

An input ends accepted or as a clear error (one CleanroomError line); anything else is a traceback. A
fault is survived when the run's work is intact afterwards; a report that could not be recovered is
lost. Half-written files are counted wherever a test looks for them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from cleanroom.errors import CleanroomError

ACCEPTED, CLEAR, TRACEBACK = "accepted", "clear error", "traceback"
SURVIVED, LOST = "survived", "report lost"


@dataclass(frozen=True)
class Observation:
    kind: str  # "input" or "fault"
    name: str
    outcome: str
    half_written: int = 0


OBSERVED: list[Observation] = []


def input_outcome(name: str, error: BaseException | None, half_written: int = 0) -> str:
    """Record how one malformed (or generated) input ended; returns the outcome for the caller's assert."""
    if error is None:
        outcome = ACCEPTED
    elif isinstance(error, CleanroomError) and "\n" not in error.one_line():
        outcome = CLEAR
    else:
        outcome = TRACEBACK
    OBSERVED.append(Observation("input", name, outcome, half_written))
    return outcome


def cli_outcome(name: str, exit_code: int, output: str, half_written: int = 0) -> str:
    """A command's ending: exit 0, or exit 2 with one `error:` line and no traceback."""
    if exit_code == 0:
        outcome = ACCEPTED
    elif exit_code == 2 and "Traceback" not in output and output.count("error:") == 1:
        outcome = CLEAR
    else:
        outcome = TRACEBACK
    OBSERVED.append(Observation("input", name, outcome, half_written))
    return outcome


def fault(name: str, survived: bool, half_written: int = 0) -> bool:
    OBSERVED.append(Observation("fault", name, SURVIVED if survived else LOST, half_written))
    return survived


def figures() -> dict[str, int]:
    inputs = Counter(o.outcome for o in OBSERVED if o.kind == "input")
    faults = Counter(o.outcome for o in OBSERVED if o.kind == "fault")
    return {
        "inputs tried": sum(inputs.values()),
        "accepted": inputs[ACCEPTED],
        "clear errors": inputs[CLEAR],
        "tracebacks": inputs[TRACEBACK],
        "half-written files": sum(o.half_written for o in OBSERVED),
        "faults injected": sum(faults.values()),
        "faults survived": faults[SURVIVED],
        "reports lost": faults[LOST],
    }
