"""`cleanroom ledger show | verify`: the consortium's record of every release, for every member. Reads
the consortium bucket when CLEANROOM_S3_ENDPOINT_URL is set, else a member's own mirror, and compares it
with every mirror given (a node's is `<its workspace>/ledger/<collaboration>/`)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cleanroom.errors import CleanroomError
from cleanroom.privacy.budget import budget_folder, status
from cleanroom.release.ledger import (
    SignedEntry,
    against_mirror,
    chain_problems,
    ledger_mirror,
    read_mirror,
    read_store,
)
from cleanroom.settings import Settings

console = Console()


def _entries(
    spec_path: Path | None, mirrors: list[Path] | None
) -> tuple[object, list[SignedEntry], str, list[Path]]:
    from cleanroom.demo_setup import demo_spec_path
    from cleanroom.spec import pin_spec

    settings = Settings()
    spec = pin_spec(spec_path or demo_spec_path(settings)).spec
    mirrors = mirrors or [ledger_mirror(settings.workspace, spec.collaboration)]
    if settings.s3_endpoint_url:
        from tasks.context import object_store

        source = f"s3://{spec.exchange_bucket}/ledger/{spec.collaboration}/"
        return spec, read_store(object_store(settings), spec.exchange_bucket, spec.collaboration), source, mirrors
    return spec, read_mirror(mirrors[0]), str(mirrors[0]), mirrors


def show(spec: Path | None, mirror: list[Path] | None) -> None:
    """Every release: when, which run and spec, what was released (figure counts and the rule), who
    approved it and which nodes countersigned. No figure values: those are in the sealed reports."""
    parsed, entries, source, _ = _entries(spec, mirror)
    nodes = len(parsed.data_parties)  # type: ignore[attr-defined]
    table = Table(title=f"Release ledger ({source})")
    columns = ("#", "released (UTC)", "run", "figures shown / withheld", "rho", "approved by", "countersigned")
    for column in columns:
        table.add_column(column, no_wrap=column == "run")
    for signed in entries:
        entry = signed.entry
        shown = sum(len(f.released) for f in entry.figures)
        withheld = sum(f.withheld for f in entry.figures)
        approvers = ", ".join(
            f"{a['approver']}{' (standing)' if a.get('standing') else ''}" for a in entry.approvals
        )
        table.add_row(
            str(entry.index),
            entry.released_at.replace("T", " ")[:16],
            entry.run_id,
            f"{shown} / {withheld}",
            f"{sum(entry.privacy_budget_spent.values()):.3g}" if entry.privacy_budget_spent else "-",
            approvers,
            f"{len(signed.countersignatures)} of {nodes} nodes",
        )
    console.print(table)
    if not entries:
        console.print("no release recorded yet")
    budget = parsed.privacy.budget  # type: ignore[attr-defined]
    if budget is not None:
        folder = budget_folder(Settings().workspace, parsed.collaboration)  # type: ignore[attr-defined]
        now = status(folder, [s.entry for s in entries], budget, datetime.now(timezone.utc))
        counted = "" if folder.is_dir() else " (released runs only: the coordinator also counts runs in flight)"
        console.print(f"privacy budget: {now.line()}{counted}", soft_wrap=True)


def verify(spec: Path | None, mirror: list[Path] | None) -> None:
    """Check the ledger: indices in order, every entry chained to the one before, the coordinator's
    signature and every data party's countersignature valid under the spec's keys, and every mirror's
    entries present and unchanged. Lists every problem, then raises."""
    parsed, entries, source, mirrors = _entries(spec, mirror)
    problems = chain_problems(entries, parsed)  # type: ignore[arg-type]
    for folder in mirrors:
        if str(folder) != source:
            problems += against_mirror(entries, [m.entry for m in read_mirror(folder)], str(folder))
    if problems:
        for problem in problems:
            console.print(f"[red]✗[/] {problem}", soft_wrap=True)
        raise CleanroomError(
            f"the ledger at {source} has {len(problems)} problem(s)",
            where=source,
            fix="do not trust the releases named; compare with every member's mirror",
        )
    console.print(
        f"[green]✓[/] {len(entries)} entries: chained, signed and countersigned; {len(mirrors)} mirror(s) agree"
    )
