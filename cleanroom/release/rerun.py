"""Re-run with adjusted parameters (phase 5.2): an approver's signed request to compute again with
stricter disclosure control, within the spec's `approval.rerun_bounds`. The spec and its hash stay as
signed; the run applies the adjustments to its own copy, and the report and the ledger's rule say so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from cleanroom.errors import CleanroomError, ReleaseRefused
from cleanroom.spec.approval import Adjustments
from cleanroom.spec.loader import PinnedSpec
from cleanroom.spec.models import CollaborationSpec

T = TypeVar("T")


class RerunRequested(CleanroomError):
    """An approver asked for the run to be computed again with stricter parameters: nothing released."""

    def __init__(self, rerun: Rerun) -> None:
        self.rerun = rerun
        super().__init__(
            f"re-run requested by {rerun.requested_by}: {'; '.join(rerun.changes)}",
            where=f"run {rerun.previous_run}",
            fix="the lifecycle starts the re-run itself",
        )


@dataclass(frozen=True)
class Rerun:
    """What the run repeats and why (shown in its report)."""

    previous_run: str
    requested_by: str
    adjustments: Adjustments
    changes: list[str]  # in words, against the spec as signed
    comment: str = ""


def adjustment_problems(spec: CollaborationSpec, adjustments: Adjustments) -> list[str]:
    """Every way the adjustments leave the spec's bounds (none: they may be applied)."""
    bounds, privacy, problems = spec.approval.rerun_bounds, spec.privacy, []
    k = adjustments.min_group_size
    if k is not None:
        top = bounds.min_group_size_up_to
        if top is None:
            problems.append(
                "min_group_size: the spec allows no change (approval.rerun_bounds.min_group_size_up_to)"
            )
        elif not privacy.min_group_size <= k <= top:
            problems.append(f"min_group_size: {k} is outside {privacy.min_group_size}..{top}")
    p = adjustments.max_share_percent
    if p is not None:
        bottom, current = bounds.max_share_percent_down_to, privacy.dominance.max_share_percent
        if bottom is None:
            problems.append(
                "max_share_percent: the spec allows no change (approval.rerun_bounds.max_share_percent_down_to)"
            )
        elif not bottom <= p <= current or abs(p * 10 - round(p * 10)) > 1e-9:
            problems.append(f"max_share_percent: {p:g} is outside {bottom:g}..{current:g} (in steps of 0.1)")
    if k is None and p is None:
        problems.append("nothing to adjust: give min_group_size and/or max_share_percent")
    return problems


def adjusted(spec: CollaborationSpec, adjustments: Adjustments) -> CollaborationSpec:
    """The run's copy of the spec with the adjustments applied (checked against the bounds first)."""
    privacy = spec.privacy
    dominance = privacy.dominance
    if adjustments.max_share_percent is not None:
        dominance = dominance.model_copy(update={"max_share_percent": adjustments.max_share_percent})
    update: dict = {"dominance": dominance}
    if adjustments.min_group_size is not None:
        update["min_group_size"] = adjustments.min_group_size
    return spec.model_copy(update={"privacy": privacy.model_copy(update=update)})


def changes(spec: CollaborationSpec, adjustments: Adjustments) -> list[str]:
    return adjustments.lines(spec.privacy.min_group_size, spec.privacy.dominance.max_share_percent)


def combined(earlier: Rerun | None, later: Rerun, spec: CollaborationSpec) -> Rerun:
    """A re-run of a re-run keeps the earlier adjustments it does not tighten further; the changes are
    stated against the spec as signed."""
    if earlier is not None:
        before, after = earlier.adjustments, later.adjustments
        merged = Adjustments(
            min_group_size=after.min_group_size or before.min_group_size,
            max_share_percent=after.max_share_percent or before.max_share_percent,
        )
        later = replace(later, adjustments=merged)
    return replace(later, changes=changes(spec, later.adjustments))


def with_reruns(
    pinned: PinnedSpec, attempt: Callable[[PinnedSpec, Rerun | None], T], log: Callable[[str], None]
) -> T:
    """Run `attempt` (one run of the lifecycle) and, each time an approver asks for a re-run, again with
    the combined adjustments applied to a copy of the spec, up to `approval.rerun_bounds.max_reruns`."""
    rerun: Rerun | None = None
    limit = pinned.spec.approval.rerun_bounds.max_reruns
    for count in range(limit + 1):
        run_pinned = pinned if rerun is None else replace(pinned, spec=adjusted(pinned.spec, rerun.adjustments))
        try:
            return attempt(run_pinned, rerun)
        except RerunRequested as requested:
            rerun = combined(rerun, requested.rerun, pinned.spec)
            if count == limit:
                raise ReleaseRefused(
                    f"re-run requested by {rerun.requested_by}, but the spec allows {limit} re-run(s) of one run "
                    "(approval.rerun_bounds.max_reruns) and they are used",
                    where=f"run {requested.rerun.previous_run}",
                    fix="nothing was released; start a new run, or agree a spec with the stricter parameters",
                ) from None
            log(f"re-running {requested.rerun.previous_run}: {'; '.join(rerun.changes)}")
    raise AssertionError("unreachable: the loop returns or raises")
