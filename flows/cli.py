"""Thin command line (`cleanroom ...`): each subcommand parses arguments and calls a flow or a library
function. It lives beside the flows because it starts them; the library stays free of Prefect."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cleanroom.errors import CleanroomError, ConfigurationError, file_system_error
from cleanroom.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Secure multi-party retail analytics.")
console = Console()
err_console = Console(stderr=True)


def one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """User mistakes print one line naming file, field and fix, and exit 2 (no stack trace)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            Settings()  # a mistyped or malformed setting stops every command before it starts anything
            return command(*args, **kwargs)
        except CleanroomError as exc:
            _print_error(exc)
        except OSError as exc:  # a full, read-only or forbidden disk: one line too; anything else is a bug
            known = file_system_error(exc)
            if known is None:
                raise
            _print_error(known)

    return wrapper


def _print_error(exc: CleanroomError) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {exc.one_line()}", highlight=False, soft_wrap=True)
    raise typer.Exit(2) from None


def _quiet_runtime() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@app.command()
@one_line_errors
def demo(scale: Annotated[float, typer.Option(help="size of the generated retailers")] = 1.0) -> None:
    """Run the whole lifecycle on the bundled demo consortium: an embedded Prefect server and object
    store, one node per retailer as its own processes, TLS between the players (keys, data and nodes
    are created on first use)."""
    from cleanroom.demo_setup import ensure_demo_workspace
    from cleanroom.report.publish import read_archive

    settings = Settings()
    with console.status("preparing the demo consortium (CA, keys, spec, each retailer's node and exports)"):
        spec_path = ensure_demo_workspace(settings, scale=scale)
    outcome = _run_demo(settings, spec_path)
    first = _pinned(spec_path).spec.approvers[0]
    identity = settings.keys_root / "approvers" / f"{first.name}.age"
    console.rule(f"[bold]Report opened as approver {first.name}")
    _print_report(spec_path, identity, read_archive(Path(outcome.archive_dir)))
    _print_outcome(outcome, identity, spec_path, embedded_store=not settings.s3_endpoint_url)


@app.command()
@one_line_errors
def run(spec: Annotated[Path, typer.Option(help="collaboration spec (YAML)")]) -> None:
    """Run the lifecycle for a collaboration spec (the coordinator's side; every party's node must be
    online and have signed the spec)."""
    outcome = _run(spec)
    _print_outcome(outcome, None, spec)


@app.command()
@one_line_errors
def decrypt(
    identity: Annotated[Path, typer.Option(help="your age identity file (approver's private key)")],
    run_id: Annotated[str | None, typer.Option("--run", help="run id; default: the latest archived run")] = None,
    spec: Annotated[Path | None, typer.Option(help="spec the run used; default: the demo spec")] = None,
    archive: Annotated[
        Path | None,
        typer.Option(
            help="an archive folder or one run's folder; default: the workspace's, or one beside the spec"
        ),
    ] = None,
    draft: Annotated[bool, typer.Option("--draft", help="a run's draft awaiting approval (needs --run)")] = False,
    html: Annotated[Path | None, typer.Option(help="also write the decrypted HTML report there")] = None,
) -> None:
    """Verify and decrypt an archived report (or with --draft a draft awaiting approval), then print its
    headline figures. Works from any directory: the archive is the one given, the workspace's, or the
    nearest `archive/` above the spec file; a draft is the coordinator's copy or the store's."""
    from cleanroom.demo_setup import demo_spec_path
    from cleanroom.report.publish import archived_run, find_archive, read_archive

    settings = Settings()
    spec_path = spec or demo_spec_path(settings)
    if draft:
        from cleanroom.release.drafts import fetch_draft
        from flows.approval_client import store_if_configured

        if run_id is None:
            raise ConfigurationError(
                "which draft?", where="--run", fix="give the run id the approval request names"
            )
        pinned = _pinned(spec_path)
        files, _ = fetch_draft(
            run_id, pinned.spec, pinned.sha256, settings.drafts_root, store_if_configured(settings)
        )
    else:
        if archive is not None and (archive / "manifest.json").is_file() and run_id is None:
            run_dir = archive  # one run's folder
        else:
            run_dir = archived_run(find_archive(archive, settings.archive_root, spec_path), run_id)
        files = read_archive(run_dir)
    _print_report(spec_path, identity, files, html)


@app.command()
@one_line_errors
def approve(
    identity: Annotated[Path, typer.Option(help="your Ed25519 signing key (<name>.signing.pem)")],
    run_id: Annotated[str | None, typer.Option("--run", help="the run whose draft you decide on")] = None,
    spec: Annotated[Path | None, typer.Option(help="spec the run used; default: the demo spec")] = None,
    reject: Annotated[bool, typer.Option("--reject", help="reject the draft: nothing is released")] = False,
    rerun: Annotated[
        bool, typer.Option("--rerun", help="compute again, stricter (with --min-group-size / --max-share-percent)")
    ] = False,
    min_group_size: Annotated[
        int | None, typer.Option(help="with --rerun: raise the minimum group size (within the spec's bounds)")
    ] = None,
    max_share_percent: Annotated[
        float | None,
        typer.Option(help="with --rerun: lower the largest retailer share (within the spec's bounds)"),
    ] = None,
    comment: Annotated[str, typer.Option(help="why (recorded, signed, shown to everyone)")] = "",
    print_only: Annotated[
        bool, typer.Option("--print", help="print the form's fields instead of resuming the run")
    ] = False,
    standing_until: Annotated[
        str | None,
        typer.Option(
            "--standing-until",
            help="sign a standing approval of this spec until YYYY-MM-DD (scheduled runs then need nobody)",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="with --standing-until: where to write it")] = None,
) -> None:
    """Approve (or --reject) a run's draft report with your own key: verifies the draft's signed
    manifest, signs your decision over run, spec and draft, and resumes the paused run with it. Or sign
    a standing approval of the spec for scheduled runs (--standing-until)."""
    from datetime import date

    from cleanroom.demo_setup import demo_spec_path
    from cleanroom.release.approvals import Decision
    from flows.approval_client import (
        form_fields,
        rerun_adjustments,
        resume_with,
        signed_decision,
        standing_approval,
    )

    settings = Settings()
    pinned = _pinned(spec or demo_spec_path(settings))
    if standing_until is not None:
        try:
            until = date.fromisoformat(standing_until)
        except ValueError:
            raise ConfigurationError(
                f"'{standing_until}' is not a date", where="--standing-until", fix="write YYYY-MM-DD"
            ) from None
        written = standing_approval(pinned, identity, until, out, settings)
        console.print(f"[green]standing approval[/] of spec {pinned.sha256[:16]} until {until}: {written}")
        return
    if run_id is None:
        raise ConfigurationError("which run?", where="--run", fix="give the run id the approval request names")
    adjustments = rerun_adjustments(pinned, reject, rerun, min_group_size, max_share_percent)
    decision = Decision.REJECT if reject else Decision.RERUN if rerun else Decision.APPROVE
    signed, flow_run_id = signed_decision(pinned, run_id, identity, decision, comment, settings, adjustments)
    if print_only:
        console.print(f"Fields for the form of flow run {flow_run_id} (Prefect UI, 'Resume'):")
        for field, value in form_fields(signed).items():
            console.print(f"  {field}: {value}", highlight=False, soft_wrap=True)
        return
    require_prefect_server()
    with console.status(f"resuming run {run_id} with your decision"):
        resume_with(flow_run_id, signed)
    console.print(f"[green]{decision.value}[/] of draft {signed.draft_sha256[:16]} by {signed.approver} sent")


@app.command()
@one_line_errors
def publish(
    run_id: Annotated[str | None, typer.Option("--run", help="run id; default: every run waiting")] = None,
) -> None:
    """Upload archived reports whose upload failed (they wait in the archive; the next run also tries),
    or one run's report again. Idempotent: the same objects, manifest last, read back and verified."""
    from cleanroom.report.publish import archived_run, publish_archived, unpublished_runs
    from tasks.context import object_store

    settings = Settings()
    runs = [archived_run(settings.archive_root, run_id)] if run_id else unpublished_runs(settings.archive_root)
    if not runs:
        console.print(f"nothing waits to be published in {settings.archive_root}")
        return
    store = object_store(settings)
    for run_dir in runs:
        with console.status(f"publishing run {run_dir.name}"):
            uris = publish_archived(run_dir, store, wait=60, again=run_id is not None)
        console.print(f"[green]published[/] run {run_dir.name}: {uris['manifest.json']}", soft_wrap=True)


@app.command("check-spec")
@one_line_errors
def check_spec(spec: Path) -> None:
    """Validate a collaboration spec and print its canonical hash."""
    pinned = _pinned(spec)
    console.print(f"[green]valid[/] {pinned.spec.collaboration} v{pinned.spec.version} sha256={pinned.sha256}")


@app.command()
@one_line_errors
def keygen(
    kind: Annotated[
        str,
        typer.Argument(help="'age' (recipient key pair), 'signing' (Ed25519) or 'pseudonym' (shared HMAC key)"),
    ],
    out: Annotated[Path, typer.Option(help="where to write the private key (must not exist)")],
) -> None:
    """Create a key pair and print the public half to paste into the spec (a pseudonym key has none:
    copy the file into every data party's workspace, at data.pseudonym_key_file)."""
    from cleanroom.crypto.keys import new_age_identity, new_pseudonym_key, new_signing_key

    if out.exists():
        raise CleanroomError("file exists", where=str(out), fix="choose a new path; keys are never overwritten")
    if kind not in ("age", "signing", "pseudonym"):
        raise CleanroomError(
            f"unknown key kind '{kind}'", where="keygen KIND", fix="use 'age', 'signing' or 'pseudonym'"
        )
    if kind == "pseudonym":
        new_pseudonym_key(out)
        console.print(f"pseudonym key written to {out}")
        return
    console.print(new_age_identity(out) if kind == "age" else new_signing_key(out))


@app.command("notify-data")
@one_line_errors
def notify_data(party: Annotated[str, typer.Option(help="the party whose new export has arrived")]) -> None:
    """Tell the Prefect server that a party has new data (triggers the `on-new-data` deployment).
    Carries the party name only, never figures or file names."""
    from cleanroom.spec.models import is_valid_name

    if not is_valid_name(party):
        raise CleanroomError(f"'{party}' is not a party name", where="--party", fix="use the name from the spec")
    from prefect.events import emit_event

    event = emit_event(
        event="cleanroom.party.data-arrived", resource={"prefect.resource.id": f"cleanroom.party.{party}"}
    )
    console.print(
        f"event {'sent' if event else 'not sent (no Prefect server configured)'}: data arrived at {party}"
    )


node_app = typer.Typer(no_args_is_help=True, help="A retailer's node: what runs on its own host.")
spec_app = typer.Typer(no_args_is_help=True, help="Collaboration specs: check and sign.")
keys_app = typer.Typer(no_args_is_help=True, help="The consortium's TLS certificates.")
party_app = typer.Typer(no_args_is_help=True, help="A retailer's exports, on its own node.")
app.add_typer(node_app, name="node")
app.add_typer(party_app, name="party")
app.add_typer(spec_app, name="spec")
app.add_typer(keys_app, name="keys")
ledger_app = typer.Typer(
    no_args_is_help=True, help="The release ledger: every release, chained and countersigned."
)
app.add_typer(ledger_app, name="ledger")


@ledger_app.command("show")
@one_line_errors
def ledger_show(
    spec: Annotated[Path | None, typer.Option(help="the consortium's spec; default: the demo spec")] = None,
    mirror: Annotated[
        list[Path] | None, typer.Option(help="a member's mirror folder (default: this workspace's)")
    ] = None,
) -> None:
    """Every release: when, which run and spec, figures released and withheld with the rule, who
    approved, which nodes countersigned (no figure values). The bucket's ledger, else a mirror."""
    from flows.ledger_cli import show

    show(spec, mirror)


@ledger_app.command("verify")
@one_line_errors
def ledger_verify(
    spec: Annotated[Path | None, typer.Option(help="the consortium's spec; default: the demo spec")] = None,
    mirror: Annotated[
        list[Path] | None,
        typer.Option(help="a member's mirror folder to compare with (repeat); default: this workspace's"),
    ] = None,
) -> None:
    """Check order, hash chain, the coordinator's signature and every node's countersignature, and that
    each mirror's entries are all there unchanged (truncation, reordering, tampering). Exit 2 if not."""
    from flows.ledger_cli import verify

    verify(spec, mirror)


@node_app.command("start")
@one_line_errors
def node_start(
    party: Annotated[str, typer.Option(help="this node's party (as in the spec and node.yaml)")],
    config: Annotated[Path, typer.Option(help="the node's node.yaml")],
) -> None:
    """Serve this party's steps of every run of a spec it signed: a Prefect worker on its own work
    pool, and per run its player behind mutual TLS at the spec's endpoint. Runs until stopped."""
    _quiet_runtime()
    require_prefect_server()
    from flows.node_service import start

    raise typer.Exit(start(_node(party, config), announce=console.print))


@node_app.command("draw-noise")
@one_line_errors
def node_draw_noise(
    party: Annotated[str, typer.Option(help="this node's party (as in the spec and node.yaml)")],
    config: Annotated[Path, typer.Option(help="the node's node.yaml")],
    runs: Annotated[int, typer.Option(min=1, help="how many runs ahead")] = 1,
) -> None:
    """Draw this compute party's differential-privacy noise for its next runs of every signed spec with a
    noised scalable recommender, ahead of time (`node start` keeps it topped up by itself, slowly)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from cleanroom.node.noise_keeper import missing, top_up

    node = _node(party, config)
    total = sum(missing(node, runs).values())
    if not total:
        console.print(f"node {party}: the noise reserve already holds what {runs} run(s) may take")
        return
    columns = (TextColumn("drawing noise"), BarColumn(), TextColumn("{task.completed:,}/{task.total:,}"))
    with Progress(*columns, TimeRemainingColumn(), console=console) as progress:
        task = progress.add_task("noise", total=total)
        drawn = top_up(node, runs, lambda batch: progress.advance(task, batch))
    console.print(f"node {party}: {drawn:,} draws added to the noise reserve")


def _node(party: str, config: Path):  # type: ignore[no-untyped-def]
    from cleanroom.node.config import Node

    node = Node.load(config)
    if node.party != party:
        raise CleanroomError(
            f"node.yaml is for party '{node.party}', not '{party}'",
            where=str(config),
            fix="pass the right --config",
        )
    return node


@party_app.command("check")
@one_line_errors
def party_check(
    spec: Annotated[Path, typer.Option(help="the collaboration spec (signed or not yet)")],
    config: Annotated[Path, typer.Option(help="your node's node.yaml (party and workspace)")],
    all_rules: Annotated[bool, typer.Option("--all", help="list every rule, not only failing ones")] = False,
) -> None:
    """Check this party's exports against the spec as preparation would, writing nothing: every problem
    of every table in one run, each rule with its bound and failing rows (figures stay on this node)."""
    from cleanroom.node.config import Node
    from cleanroom.party.export_check import check_party, rule_rows

    node = Node.load(config)
    pinned = _pinned(spec)
    with console.status("finding the exports") as status:
        check = check_party(pinned.spec, node.party, node.workspace, progress=status.update)
    table = Table(title=f"party {node.party}: rules {'' if all_rules else 'with failing rows '}per table")
    for column in ("table", "rule", "bound", "severity", "failing rows"):
        table.add_column(column, justify="right" if column == "failing rows" else "left")
    for row in rule_rows(check):
        if all_rules or row["failing_rows"]:
            failing = f"{row['failing_rows']:,} of {row['rows']:,}"
            table.add_row(row["table"], row["rule"], row["bound"], row["severity"], failing)
    if table.rows:
        console.print(table)
    elif check.checked:
        console.print("no rule fails on any row")
    if (error := check.error()) is not None:
        raise error
    rows = sum(result.rows for result in check.checked.values())
    console.print(f"[green]ready[/] {len(check.checked)} exports, {rows:,} rows checked against the spec")


@app.command()
@one_line_errors
def init(
    folder: Annotated[Path, typer.Argument(help="where the consortium's folder goes (new or empty)")],
    collaboration: Annotated[str, typer.Option(help="the consortium's name (lower case, digits, '-')")],
    compute: Annotated[list[str], typer.Option(help="a retailer that runs a player (exactly three)")],
    approver: Annotated[list[str], typer.Option(help="name@party or name@party:email; repeat")],
    input_party: Annotated[
        list[str] | None, typer.Option("--input", help="a retailer that contributes data only; repeat")
    ] = None,
    currency: Annotated[str, typer.Option(help="ISO 4217 code of every amount")] = "EUR",
    loopback: Annotated[bool, typer.Option(help="endpoints on 127.0.0.1 (a pilot on one machine)")] = False,
) -> None:
    """Scaffold a new consortium: a spec skeleton that validates, keys for every party (in its node
    folder), the approvers, the coordinator, report signing and the shared pseudonym key; then say what
    to do next."""
    from cleanroom.consortium_init import Approver, init_consortium, next_steps

    approvers = [Approver.parse(text) for text in approver]
    with console.status(f"creating keys and the spec of {collaboration}"):
        done = init_consortium(
            folder, collaboration, compute, input_party or [], approvers, currency=currency, loopback=loopback
        )
    console.print(f"[green]created[/] {done.folder}: consortium.yaml, operator/, approvers/, parties/")
    for number, step in enumerate(next_steps(done), start=1):
        console.print(f"{number}. {step}", soft_wrap=True)


@app.command()
@one_line_errors
def inspect(
    export: Annotated[Path, typer.Argument(help="a CSV or Parquet export, on this party's host")],
    table: Annotated[
        str | None, typer.Option(help="customers, products or transactions; default: what it looks like")
    ] = None,
    location: Annotated[
        str | None, typer.Option(help="its path inside the node folder, for the proposal; default: raw/<name>")
    ] = None,
) -> None:
    """Sniff an export (encoding, separator, decimal comma, date formats, id/price/date columns) and
    propose the spec's section for it. Prints a profile of the columns, never their values."""
    import yaml

    from cleanroom.party.inspection import inspect_export
    from cleanroom.spec.sources import CanonicalTable

    if not export.is_file():
        raise ConfigurationError("no such file", where=str(export), fix="give the path of an export file")
    if table is not None and table not in {t.value for t in CanonicalTable}:
        raise ConfigurationError(
            f"unknown table '{table}'", where="--table", fix="use customers, products or transactions"
        )
    size = export.stat().st_size
    with console.status(f"profiling {export.name} ({size / 2**20:,.0f} MiB, every row)"):
        found = inspect_export(export, CanonicalTable(table) if table else None)
    shape = found.shape
    details = f"{shape.format}" + (
        f", {shape.encoding}, separator {shape.separator!r}" if shape.format == "csv" else ""
    )
    console.print(
        f"[bold]{export.name}[/]: {details}, {found.rows:,} rows; looks like [bold]{found.table.value}[/]"
    )
    mapped = {profile.name: canonical for canonical, profile in found.mapping.items()}
    listing = Table()
    for column in ("column", "values", "filled", "distinct (approx.)", "proposed"):
        listing.add_column(column, justify="right" if column in ("filled", "distinct (approx.)") else "left")
    for column in found.columns:
        values = column.shown
        filled = f"{column.filled / found.rows:.0%}" if found.rows else "-"
        listing.add_row(column.name, values, filled, f"{column.distinct:,}", mapped.get(column.name, "-"))
    console.print(listing)
    section = found.spec_section(location or f"raw/{export.name}")
    console.print("[bold]Proposed spec section[/] (under parties\\[*].data.tables):")
    console.print(yaml.safe_dump({found.table.value: section}, sort_keys=False, allow_unicode=True), markup=False)
    for note in found.notes:
        console.print(f"[yellow]then:[/] {note}", soft_wrap=True)


@spec_app.command("sign")
@one_line_errors
def spec_sign(
    party: Annotated[str, typer.Option(help="your party")],
    spec: Annotated[Path, typer.Option(help="the spec you reviewed")],
    config: Annotated[Path, typer.Option(help="your node's node.yaml")],
) -> None:
    """Approve a spec for your party: your node will serve its runs (and no other spec's). Publishes
    the signature to the consortium bucket when CLEANROOM_S3_ENDPOINT_URL is set."""
    from cleanroom.node import registry
    from cleanroom.node.config import Node
    from cleanroom.spec.signatures import publish

    node = Node.load(config)
    if node.party != party:
        raise CleanroomError(
            f"node.yaml is for party '{node.party}', not '{party}'",
            where=str(config),
            fix="pass the right --config",
        )
    signature = registry.sign(node, spec)
    console.print(f"[green]signed[/] spec sha256={signature.spec_sha256} for {party}")
    if node.settings.s3_endpoint_url:
        publish(node.store, registry.resolve(node, signature.spec_sha256).spec.exchange_bucket, signature)
        console.print("signature published to the consortium bucket")


@spec_app.command("check")
@one_line_errors
def spec_check(spec: Path) -> None:
    """Validate a collaboration spec and print its canonical hash."""
    check_spec(spec)


@keys_app.command("init-ca")
@one_line_errors
def keys_init_ca(
    out: Annotated[Path, typer.Option(help="folder for ca.pem and ca.key (the key never leaves it)")],
    consortium: Annotated[str, typer.Option(help="the collaboration's name")] = "cleanroom",
) -> None:
    """Create the consortium CA; paste ca.pem into the spec as secure_computation.ca_certificate."""
    from cleanroom.crypto.pki import init_ca

    certificate = init_ca(out, consortium)
    console.print(f"CA certificate: {certificate} (secure_computation.ca_certificate)")


@keys_app.command("issue")
@one_line_errors
def keys_issue(
    party: Annotated[str, typer.Option(help="the party's name, or 'coordinator'")],
    ca: Annotated[Path, typer.Option(help="the CA folder (init-ca --out)")],
    out: Annotated[Path, typer.Option(help="where to write NAME.crt and NAME.key")],
) -> None:
    """Issue a member's TLS certificate; pin the printed PEM in the spec (parties[].certificate or
    coordinator.certificate) and give the key to that member only."""
    from cleanroom.crypto.pki import fingerprint, issue_certificate
    from cleanroom.spec.models import is_valid_name

    if not is_valid_name(party):
        raise CleanroomError(f"'{party}' is not a party name", where="--party", fix="use the name from the spec")
    certificate, key = issue_certificate(ca, party, out)
    pem = certificate.read_text()
    console.print(pem, end="", highlight=False)
    console.print(f"sha256 {fingerprint(pem)}; key in {key}", highlight=False)


def _pinned(spec_path: Path):  # type: ignore[no-untyped-def]
    from cleanroom.spec import pin_spec

    return pin_spec(spec_path)


def _run(spec_path: Path):  # type: ignore[no-untyped-def]
    _quiet_runtime()
    _pinned(spec_path)  # a malformed spec fails here, before any process starts
    from flows.error_logging import one_line_console_failures
    from flows.lifecycle import collaboration_lifecycle

    require_prefect_server()
    one_line_console_failures()
    return collaboration_lifecycle(spec_path=spec_path.resolve())


def require_prefect_server() -> None:
    """The coordinator and every node's worker meet on one Prefect server. Without one, Prefect would
    start a temporary server in this process that no node can reach (and, on a busy machine, that timed
    out after 20 s with a traceback, or outlived a killed coordinator)."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise ConfigurationError(
            "no Prefect server: the coordinator and the nodes' workers must use the same one",
            where="PREFECT_API_URL",
            fix="set it to the consortium's server (`make server` starts one here); "
            "`cleanroom demo` runs a whole consortium on this machine",
        )


def _run_demo(settings, spec_path: Path):  # type: ignore[no-untyped-def]
    """Start the embedded services and every demo node, run the lifecycle as the coordinator, stop all."""
    _quiet_runtime()
    from flows.consortium import demo_consortium
    from flows.error_logging import one_line_console_failures
    from flows.lifecycle import collaboration_lifecycle

    one_line_console_failures()
    parties = [p.name for p in _pinned(spec_path).spec.data_parties]
    with ExitStack() as running:
        with console.status(f"starting the services and {len(parties)} retailer nodes"):
            running.enter_context(demo_consortium(settings, parties))
        return collaboration_lifecycle(spec_path=spec_path.resolve())


def _print_report(spec_path: Path, identity_path: Path, files: dict[str, bytes], html: Path | None = None) -> None:
    from cleanroom.crypto.keys import load_age_identity
    from cleanroom.report.publish import open_html, open_report

    pinned = _pinned(spec_path)
    identity = load_age_identity(identity_path)
    report = open_report(files, pinned.spec, pinned.sha256, identity)
    if html is not None:
        html.write_bytes(open_html(files, identity))
    if report.notice:
        console.print(f"[bold red]{report.notice}")
    console.print(f"[bold]{report.title}[/]  (run {report.run_id}, protocol {report.protocol})")
    for line in report.headline_lines():
        console.print(f"  {line}")
    manifest = json.loads(files["manifest.json"])  # verified by open_report
    if manifest.get("stage") == "draft":
        console.print("[yellow]A draft awaiting approval: not released.[/]")
    elif manifest.get("approvals"):
        names = ", ".join(
            a["approver"] + (" (standing)" if a.get("standing") else "") for a in manifest["approvals"]
        )
        console.print(f"Released with the signed approval of {names}", soft_wrap=True)


def _print_outcome(outcome: Any, identity: Path | None, spec_path: Path, embedded_store: bool = False) -> None:
    table = Table(title="KPIs compared with the previous run", show_lines=False)
    for column in ("kpi", "previous", "current"):
        table.add_column(column)
    for change in outcome.kpi_changes:
        table.add_row(
            change.name, "-" if change.previous is None else f"{change.previous:g}", f"{change.current:g}"
        )
    console.print(table)
    console.print(f"[bold]Released with the approval of:[/] {'; '.join(outcome.approvals)}", soft_wrap=True)
    console.print(
        f"[bold]Release ledger:[/] entry {outcome.ledger_index}, countersigned by every node "
        "(`cleanroom ledger show`, `cleanroom ledger verify`)",
        soft_wrap=True,
    )
    console.print(f"[bold]Encrypted report in S3:[/] {outcome.report_uris['report.html.age']}", soft_wrap=True)
    console.print(f"[bold]Signed manifest:[/] {outcome.report_uris['manifest.json']}", soft_wrap=True)
    console.print(f"[bold]Local archive (ciphertext):[/] {outcome.archive_dir}", soft_wrap=True)
    if embedded_store:
        console.print(
            "[yellow]The demo's object store (moto on loopback) stopped with the demo: those s3:// objects are "
            "gone. The local archive holds the same signed files; with CLEANROOM_S3_ENDPOINT_URL set, "
            f"`cleanroom publish --run {outcome.run_id}` uploads them to a store that stays.[/]",
            soft_wrap=True,
        )
    key = identity.resolve() if identity else Path("<your-age-identity-file>")
    console.print(  # absolute paths: it works from any directory
        f"[bold]Decrypt later:[/] {Path(sys.executable).parent / 'cleanroom'} decrypt "
        f"--identity {key} --run {outcome.run_id} --spec {spec_path.resolve()}",
        soft_wrap=True,
    )
    console.print(
        f"[dim]or with the age tool: age -d -i {key} {outcome.archive_dir}/report.html.age > report.html[/]"
    )


if __name__ == "__main__":
    app()
