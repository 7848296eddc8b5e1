"""Check every export of a party against the contract in one pass and report every problem of every
table at once (it took up to four failed runs to learn them one at a time). Shared by preparation and
`cleanroom party check`.

Two views of the same problems: the one line that may leave the party (files, columns, rules and
bounds, no figures: it reaches the coordinator as the step's failure) and the party's own report with
the failing-row counts (`reports/problems.json`, and what `party check` prints)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

from cleanroom.errors import DataContractError
from cleanroom.party.canonical import required_columns
from cleanroom.party.compliance import QUARANTINE_DIR
from cleanroom.party.connectors import LocatedExport, locate_export, plan_columns
from cleanroom.party.rules import Expectation, RuleContext, load_suite, party_suite
from cleanroom.party.table_check import CheckedTable, check_table, quarantine_frame, sink
from cleanroom.spec.models import CollaborationSpec
from cleanroom.spec.sources import CanonicalTable

TABLE_ORDER = (CanonicalTable.PRODUCTS, CanonicalTable.CUSTOMERS, CanonicalTable.TRANSACTIONS)

PROBLEMS_FILE = Path("reports") / "problems.json"
QUARANTINE_STAGING = Path("quarantine.staging")
Progress = Callable[[str], object]


def tables_of(spec: CollaborationSpec, party: str) -> tuple[CanonicalTable, ...]:
    """The tables a party exports, in checking order: the customer-level three, or store_sales alone."""
    data = spec.party(party).data
    assert data is not None, "only data parties have exports"
    return (CanonicalTable.STORE_SALES,) if data.store_level else TABLE_ORDER


@dataclass
class ExportCheck:
    """Every table that could be read, checked; and every problem found, in table order."""

    party: str
    exports: dict[CanonicalTable, LocatedExport] = field(default_factory=dict)
    checked: dict[CanonicalTable, CheckedTable] = field(default_factory=dict)
    problems: list[DataContractError] = field(default_factory=list)

    def error(self) -> DataContractError | None:
        """The one error to raise: the problem itself when there is one, else all of them in one line."""
        if len(self.problems) <= 1:
            return self.problems[0] if self.problems else None
        prefix = f"party {self.party}: "
        listed = "; ".join(f"{(p.where or '').removeprefix(prefix)}: {p.message}" for p in self.problems)
        return DataContractError(
            f"{len(self.problems)} problems in its exports: {listed}",
            where=f"party {self.party}",
            fix="correct each; `cleanroom party check` lists every failing rule with its bound and failing rows",
        )


def find_exports(spec: CollaborationSpec, party: str, workspace: Path, check: ExportCheck) -> None:
    for table in tables_of(spec, party):
        try:
            check.exports[table] = locate_export(spec.party(party), table, workspace)
        except DataContractError as problem:
            check.problems.append(problem)


def check_exports(
    spec: CollaborationSpec,
    check: ExportCheck,
    context: RuleContext,
    after_table: Callable[[CheckedTable], None] | None = None,
    progress: Progress | None = None,
) -> None:
    """Check every table that was found (in dependency order: foreign keys refer to the clean keys of
    tables checked before), adding its problems; a table that cannot be read leaves its references
    unchecked rather than failing them all."""
    data = spec.party(check.party).data
    assert data is not None, "only data parties have exports"
    max_share = data.bounds.max_quarantine_share
    for table in tables_of(spec, check.party):
        export = check.exports.get(table)
        result = None
        if export is not None:
            if progress:
                progress(f"checking {export.label}")
            try:
                plan = plan_columns(export, partial(required_columns, spec, table))
                suite = party_suite(spec, export.source, table, set(plan.read), data.bounds)
                result = check.checked[table] = check_table(export, suite, context, plan)
            except DataContractError as problem:
                check.problems.append(problem)
        if result is not None:
            if after_table:
                after_table(result)
            check.problems += usability_problems(
                result, spec.privacy.max_quarantine_share if max_share is None else max_share
            )
        clean = result.clean() if result is not None else None
        for (referenced, column), _ in references_to(table):
            keys = clean.select(column).collect(engine="streaming")[column] if clean is not None else None
            context.keys[referenced, column] = keys


def usability_problems(checked: CheckedTable, max_share: float) -> list[DataContractError]:
    """Blocking failures (all of them), and more quarantined rows than the spec allows (with every rule
    that quarantined rows), each as one problem without figures."""
    export, problems = checked.export, []
    if checked.blocking:
        problems.append(
            export.error(
                f"blocking expectation failed: {', '.join(checked.blocking)}",
                fix="correct the export; see the party's Data Docs (gx/) for what failed",
            )
        )
    if checked.rows and checked.quarantined_rows / checked.rows > max_share:
        failing = sorted(
            (c for c in checked.counts if c.severity == "quarantine" and c.failing_rows),
            key=lambda c: -c.failing_rows,
        )
        column, rule = failing[0].label.split(":", 1) if failing else ("*", "row checks")
        rules = ", ".join(c.label.split(":", 1)[1].strip() if ":" in c.label else c.label for c in failing)
        problems.append(
            export.error(
                f"more than {max_share:.1%} of rows fail row checks (most often {rule.strip()}; all: {rules})",
                fix="correct the export or its column mapping; the failing rows are in the party's quarantine/",
                column=column.split(".")[-1],
            )
        )
    return problems


def references_to(table: CanonicalTable) -> list[tuple[tuple[CanonicalTable, str], str]]:
    """Foreign keys other suites declare into `table` (its clean keys are what they may reference)."""
    found = []
    for other in TABLE_ORDER:
        for expectation in load_suite(other).expectations:
            if expectation.reference and expectation.reference[0] is table:
                found.append((expectation.reference, expectation.label))
    return found


def stage_quarantine(workspace: Path, checked: dict[CanonicalTable, CheckedTable]) -> None:
    staging = workspace / QUARANTINE_STAGING
    shutil.rmtree(staging, ignore_errors=True)
    for table, result in checked.items():
        if result.quarantined_rows:
            sink(quarantine_frame(result), staging / f"{table.value}.parquet")


def swap_in_quarantine(workspace: Path) -> None:
    """The staged quarantine replaces the previous one (none staged: none is left)."""
    old = workspace / f"{QUARANTINE_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if (workspace / QUARANTINE_DIR).exists():
        (workspace / QUARANTINE_DIR).rename(old)
    if (workspace / QUARANTINE_STAGING).exists():
        (workspace / QUARANTINE_STAGING).rename(workspace / QUARANTINE_DIR)
    shutil.rmtree(old, ignore_errors=True)


def rule_rows(check: ExportCheck) -> list[dict]:
    """Every rule of every checked table with its bound and failing rows (the party's own view)."""
    rows = []
    for table, result in check.checked.items():
        expectations: dict[str, Expectation] = {e.label: e for e in result.suite.expectations}
        for count in result.counts:
            expectation = expectations.get(count.label)
            rows.append(
                {
                    "table": table.value,
                    "export": result.export.label,
                    "rule": count.label,
                    "bound": expectation.bound if expectation else "parses as its type",
                    "severity": count.severity,
                    "failing_rows": count.failing_rows,
                    "rows": result.rows,
                }
            )
    return rows


def write_problem_report(workspace: Path, check: ExportCheck, now: datetime) -> Path:
    """The party's own record of a stopped preparation: every problem and every rule's failing rows."""
    path = workspace / PROBLEMS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "party": check.party,
        "checked_at": now.isoformat(),
        "problems": [p.one_line() for p in check.problems],
        "rules": rule_rows(check),
    }
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(report, indent=2))
    temporary.replace(path)
    return path


def check_party(
    spec: CollaborationSpec, party: str, workspace: Path, progress: Progress | None = None
) -> ExportCheck:
    """Every export of one party against the spec, as preparation checks it, writing nothing (`cleanroom
    party check`: a data engineer's dry run)."""
    from datetime import timezone

    check = ExportCheck(party)
    find_exports(spec, party, workspace, check)
    check_exports(spec, check, RuleContext(now=datetime.now(timezone.utc)), progress=progress)
    return check
