"""Phase 2 inside one party: connect, validate, quarantine, anonymize, minimize, pre-aggregate.

Runs in the party's own process with the party's workspace as working directory. It writes only under
that workspace, all outputs at once (staged, then swapped in), and returns a summary for the
coordinator without any row, identifier or per-party figure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

import cleanroom
from cleanroom.analyses.category_month_sales import GRID_FILE as TREND_GRID
from cleanroom.analyses.category_month_sales import store_grid
from cleanroom.errors import DataContractError, StorageError, file_system_error
from cleanroom.party import validation
from cleanroom.party.anonymization import (
    e164_phone,
    enforce_k_anonymity,
    exported_hash,
    generalized,
    hashed_join_keys,
    load_join_key_secret,
    load_pseudonym_key,
    normalized_email,
    normalized_loyalty_id,
    pseudonyms,
)
from cleanroom.party.canonical import SCHEMAS, columns_in_use
from cleanroom.party.compliance import delete_expired
from cleanroom.party.connectors import LocatedExport
from cleanroom.party.export_check import (
    PROBLEMS_FILE,
    QUARANTINE_STAGING,
    TABLE_ORDER,
    ExportCheck,
    check_exports,
    find_exports,
    stage_quarantine,
    swap_in_quarantine,
    write_problem_report,
)
from cleanroom.party.pre_aggregation import pre_aggregate
from cleanroom.party.rules import EXPECTATIONS_DIR, RuleContext
from cleanroom.party.runs import pinned_versions
from cleanroom.party.table_check import CheckedTable, sample_for_docs, sink
from cleanroom.party.versions import (
    MANIFEST,
    PREPARED_DIR,
    commit_version,
    is_complete,
    make_current,
    preparation_lock,
    recently_pinned,
    remove_unused_versions,
    version_dir,
)
from cleanroom.spec.loader import canonical_hash
from cleanroom.spec.models import CollaborationSpec
from cleanroom.spec.sources import CanonicalTable
from cleanroom.stopwatch import Stopwatch
from cleanroom.whole_files import write_whole_file

REPORT_FILE = Path("reports") / "preparation.json"
# Referenced tables first, so foreign keys check against clean keys.


@dataclass
class PreparationSummary:
    """What a party tells the coordinator: status and expectation names, no figures."""

    party: str
    status: str  # ok | unchanged | failed
    expectations_evaluated: int = 0
    failed_blocking: list[str] = field(default_factory=list)
    failed_warning: list[str] = field(default_factory=list)
    quarantined: bool = False
    k_anonymity_met: bool = False
    aggregate_digest: str = ""
    version: str = ""  # the prepared version's fingerprint (stays inside the party)
    error: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def prepare_party(
    spec: CollaborationSpec, party_name: str, workspace: Path, now: datetime | None = None
) -> PreparationSummary:
    """Prepare one party's data inside its workspace as an immutable version (`prepared/<fingerprint>`);
    unchanged inputs reuse their version. Preparations of one party take turns."""
    with preparation_lock(workspace, party_name):
        try:
            return _prepare(spec, party_name, workspace, now or datetime.now(timezone.utc))
        except OSError as exc:  # a full disk: polars' writers say so without naming the file
            known = file_system_error(exc)
            if known is None:
                raise
            where = f"party {party_name}: {exc.filename or workspace}"
            raise StorageError(known.message, where=where, fix=known.fix or "") from None


def _prepare(spec: CollaborationSpec, party_name: str, workspace: Path, now: datetime) -> PreparationSummary:
    watch = Stopwatch()
    party = spec.party(party_name)
    assert party.data is not None, "only data parties prepare data"
    expired = delete_expired(party.data, workspace, now)
    check = ExportCheck(party.name)
    with watch.step("read and hash exports"):
        find_exports(spec, party.name, workspace, check)
    # Store-level totals carry no customers: nothing to pseudonymize.
    key = b"" if party.data.store_level else load_pseudonym_key(party.data, workspace, party.name)
    join_secret = load_join_key_secret(party.data, workspace, party.name) if spec.hashed_join_keys else None
    fingerprint = _fingerprint(spec, check.exports, key, join_secret) if not check.problems else ""
    existing = version_dir(workspace, fingerprint) if fingerprint else None
    if existing is not None and is_complete(existing):
        manifest = json.loads((existing / MANIFEST).read_text())
        make_current(workspace, fingerprint)  # current again, if another version was prepared since
        return PreparationSummary(
            party.name,
            "unchanged",
            aggregate_digest=manifest["aggregate_digest"],
            version=fingerprint,
            **manifest["summary"],
        )

    context = RuleContext(now=now)
    docs: list[validation.DocsOutcome] = []

    def data_docs(checked: CheckedTable) -> None:  # Data Docs too show what failed when the party stops
        with watch.step("great expectations"):
            sample, sampled = sample_for_docs(checked, validation.SAMPLE_ROWS)
            docs.extend(
                validation.validate_for_data_docs(checked.suite, sample, context, workspace, sampled=sampled)
            )

    with watch.step("polars row checks"):
        check_exports(spec, check, context, after_table=data_docs)
    checked = check.checked
    if (error := check.error()) is not None:  # every problem of every table, in one run
        with watch.step("quarantine"):
            stage_quarantine(workspace, checked)
            swap_in_quarantine(workspace)
        write_problem_report(workspace, check, now)
        validation.build_data_docs(workspace)
        raise error

    with watch.step("great expectations"):
        validation.build_data_docs(workspace)
    staging = workspace / PREPARED_DIR / f".staging-{fingerprint[:16]}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        if party.data.store_level:
            outputs = _write_store_outputs(spec, party.name, checked, staging, watch)
        else:
            outputs = _write_outputs(spec, party.name, checked, key, join_secret, now, staging, watch)
        with watch.step("quarantine"):
            stage_quarantine(workspace, checked)
    except BaseException:  # nothing half-written stays behind
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(workspace / QUARANTINE_STAGING, ignore_errors=True)
        raise

    counts = [asdict(c) | {"table": t.value} for t, r in checked.items() for c in r.counts]
    summary = PreparationSummary(
        party=party.name,
        status="ok",
        expectations_evaluated=len(counts),
        failed_warning=sorted({c["label"] for c in counts if c["severity"] == "warn" and c["failing_rows"]}),
        quarantined=any(r.quarantined_rows for r in checked.values()),
        k_anonymity_met=outputs["k_anonymity"]["satisfied"],
        aggregate_digest=outputs["aggregate_digest"],
        version=fingerprint,
    )
    report = {
        "party": party.name,
        "prepared_at": now.isoformat(),
        "spec_sha256": canonical_hash(spec),
        "expired_files_deleted": expired,
        "seconds": watch.rounded(),
        "tables": {
            t.value: {
                "export": r.export.label,
                "sha256": r.export.sha256,
                "rows": r.rows,
                "quarantined_rows": r.quarantined_rows,
                "purpose": r.export.source.purpose,
                "lawful_basis": r.export.source.lawful_basis.value,
                "retention_days": r.export.source.retention_days,
                "columns_carried": columns_in_use(spec, t),
                "rules": [asdict(c) for c in r.counts],
            }
            for t, r in checked.items()
        },
        "data_docs": [asdict(d) for d in docs],
        "anonymization": outputs["anonymization"] | {"k_anonymity": outputs["k_anonymity"]},
    }
    _commit(workspace, staging, report, fingerprint, summary, outputs["files"])
    remove_unused_versions(workspace, recently_pinned(workspace, pinned_versions(workspace)))
    return summary


def _write_outputs(
    spec: CollaborationSpec,
    party: str,
    checked: dict[CanonicalTable, CheckedTable],
    key: bytes,
    join_secret: bytes | None,
    now: datetime,
    staging: Path,
    watch: Stopwatch,
) -> dict:
    """Anonymize customers, pseudonymize and minimize transactions, pre-aggregate; write to staging."""
    data = spec.party(party).data
    assert data is not None
    policy = spec.privacy
    customers = (
        checked[CanonicalTable.CUSTOMERS]
        .clean()
        .select(columns_in_use(spec, CanonicalTable.CUSTOMERS))
        .collect(engine="streaming")
    )
    with watch.step("hmac pseudonyms"):
        pseudonym = pseudonyms(customers["customer_id"], key, "customer").alias("customer_pseudonym")
    # customer_code: the customer's row in this party's prepared customers, a compact surrogate that
    # transactions carry instead of the customer number (the pseudonym links across parties).
    customers = customers.with_columns(pseudonym).with_row_index("customer_code")
    linkage = ["customer_code", "customer_pseudonym"]
    with watch.step("join keys"):
        join_keys = _join_keys(spec, party, customers, join_secret).select(*linkage, *JOIN_KEY_NAMES.values())
    join_keys.write_parquet(staging / "join_keys.parquet")
    quasi = [q.value for q in policy.quasi_identifiers]
    dimension = customers.select(*linkage, *generalized(now.date(), policy.generalization))
    dimension, k_outcome = enforce_k_anonymity(dimension.select(*linkage, *quasi), quasi, policy.k_anonymity)
    if k_outcome.removed_share(customers.height) > policy.max_k_anonymity_removed_share:
        # No figure in the message: it reaches the coordinator as the step's failure.
        raise DataContractError(
            f"k-anonymity (k={policy.k_anonymity} over {', '.join(quasi)}) would remove more than "
            f"{policy.max_k_anonymity_removed_share:.0%} of the party's customers",
            where=f"party {party}: customers",
            fix="lower privacy.k_anonymity, coarsen privacy.generalization, or (if the consortium agrees) raise "
            "privacy.max_k_anonymity_removed_share in the spec",
        )
    dimension.write_parquet(staging / "customers.parquet")

    categories = checked[CanonicalTable.PRODUCTS].clean().select(columns_in_use(spec, CanonicalTable.PRODUCTS))
    # An Enum over the clean customer numbers maps each line to its code while streaming; a join with
    # the customer table would hold far more memory. Foreign-key checks already removed unknown ones.
    code = pl.col("customer_id").cast(pl.Enum(customers["customer_id"]), strict=False).to_physical()
    transactions = (
        checked[CanonicalTable.TRANSACTIONS]
        .clean()
        .select(*columns_in_use(spec, CanonicalTable.TRANSACTIONS), "sales_cents")
        .with_columns(code.alias("customer_code"))
        .filter(pl.col("customer_code").is_not_null())
        .join(categories, on="product_id", how="inner")
        .select(
            "customer_code",
            "product_id",
            "category",
            "quantity",
            "sales_cents",  # rounded once per line (cleanroom.party.parsing.line_sales)
            "purchased_at",
        )
    )
    with watch.step("anonymize and write transactions"):
        sink(transactions, staging / "transactions.parquet")
    with watch.step("pre-aggregate for the analyses"):
        files, payload = ["customers.parquet", "join_keys.parquet", "transactions.parquet"], b""
        for name, grid in pre_aggregate(spec, staging):
            (staging / name).write_bytes(grid.astype("<i8").tobytes())
            files.append(name)
            payload = payload or grid.astype("<i8").tobytes()  # the market totals come first
    dropped = [c.name for c in SCHEMAS[CanonicalTable.CUSTOMERS].columns if c.privacy.value == "direct identifier"]
    return {
        "files": files,
        "aggregate_digest": hashlib.sha256(payload).hexdigest(),
        "k_anonymity": asdict(k_outcome) | {"satisfied": k_outcome.satisfied},
        "anonymization": {
            "dropped_direct_identifiers": dropped,
            "kept_inside_party_for_overlap": {
                "email": "email_key",
                "phone": f"phone_key (E.164, {data.phone_region})",
                "loyalty_id": "loyalty_id_key",
                "compared hashed (HMAC-SHA256, agreed secret)": sorted(spec.hashed_join_keys),
            },
            "pseudonymized": {
                "customer_id": "customer_pseudonym: HMAC-SHA256, collaboration key, 128 bits; transactions "
                "carry customer_code, a row number in prepared/customers.parquet"
            },
            "generalized": {
                "birth_date": f"age_band ({policy.generalization.age_band_years}-year bands on {now.date()})",
                "postcode": f"postcode_prefix (first {policy.generalization.postcode_prefix_length} characters)",
            },
            "not_carried_past_validation": {
                t.value: [c for c in SCHEMAS[t].names if c not in columns_in_use(spec, t)] for t in TABLE_ORDER
            },
        },
    }


def _write_store_outputs(
    spec: CollaborationSpec,
    party: str,
    checked: dict[CanonicalTable, CheckedTable],
    staging: Path,
    watch: Stopwatch,
) -> dict:
    """A store-level party: its trend grid straight from the validated totals (no customers, so no
    pseudonyms, join keys or k-anonymity); the totals themselves stay in the party's exports."""
    analysis = spec.category_month_sales
    source = checked[CanonicalTable.STORE_SALES]
    with watch.step("pre-aggregate the store totals"):
        grid = store_grid(source.clean(), analysis, spec.privacy.min_stores_per_cell, spec.privacy.min_group_size)
    (staging / TREND_GRID).write_bytes(grid.astype("<i8").tobytes())
    return {
        "files": [TREND_GRID],
        "aggregate_digest": hashlib.sha256(grid.astype("<i8").tobytes()).hexdigest(),
        "k_anonymity": {"satisfied": True, "not_applicable": "store-level totals, no customer rows"},
        "anonymization": {
            "store_level": f"a cell counts as a full group ({spec.privacy.min_group_size}) when its figures come "
            f"from at least {spec.privacy.min_stores_per_cell} stores, else as none"
        },
    }


JOIN_KEY_NAMES = {"email": "email_key", "phone": "phone_key", "loyalty_id": "loyalty_id_key"}


def _join_keys(spec: CollaborationSpec, party: str, customers: pl.DataFrame, secret: bytes | None) -> pl.DataFrame:
    """Normalized join keys (kept inside the party for PSI). A kind that some party exports hashed is
    compared hashed by everyone: this party's plain keys are hashed with the agreed secret, its
    exported hashes only normalized."""
    data = spec.party(party).data
    assert data is not None
    source = data.tables[CanonicalTable.CUSTOMERS]
    plain = {
        "email": normalized_email(),
        "phone": e164_phone(data.phone_region),
        "loyalty_id": normalized_loyalty_id(),
    }
    frame = customers
    for kind, column in JOIN_KEY_NAMES.items():
        if source.column(kind).hashed:
            frame = frame.with_columns(exported_hash(kind).alias(column))
            continue
        frame = frame.with_columns(plain[kind].alias(column))
        if kind in spec.hashed_join_keys:
            assert secret is not None, "loaded when a kind is compared hashed"
            frame = frame.with_columns(hashed_join_keys(frame[column], secret, kind))
    return frame


def _fingerprint(
    spec: CollaborationSpec, exports: dict[CanonicalTable, LocatedExport], key: bytes, join_secret: bytes | None
) -> str:
    """What the prepared output depends on: export contents, spec, suites, code and the pseudonym key
    (as an HMAC of a constant, so the fingerprint reveals nothing about the key)."""
    suites = {t.value: (EXPECTATIONS_DIR / f"{t.value}.json").read_text() for t in CanonicalTable}
    material = {
        "exports": {t.value: e.sha256 for t, e in exports.items()},
        "spec": canonical_hash(spec),
        "suites": hashlib.sha256(json.dumps(suites, sort_keys=True).encode()).hexdigest(),
        "code": cleanroom.__version__,
        "key": hmac.new(key, b"cleanroom-fingerprint", "sha256").hexdigest(),
        "join_key_secret": hmac.new(join_secret, b"cleanroom-fingerprint", "sha256").hexdigest()
        if join_secret
        else "",
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _commit(
    workspace: Path, staging: Path, report: dict, fingerprint: str, summary: PreparationSummary, files: list[str]
) -> None:
    """Put the staged version in place (its manifest written last, so a crash before it means a rerun),
    then swap in the quarantine and the preparation report."""
    kept = ("party", "status", "aggregate_digest", "version")
    manifest = {
        "fingerprint": fingerprint,
        "aggregate_digest": summary.aggregate_digest,
        "files": files,
        "summary": {k: v for k, v in asdict(summary).items() if k not in kept},
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2))
    commit_version(workspace, staging, fingerprint)
    swap_in_quarantine(workspace)
    (workspace / PROBLEMS_FILE).unlink(missing_ok=True)  # a stopped preparation's problems are history
    (workspace / REPORT_FILE).parent.mkdir(exist_ok=True)
    write_whole_file(workspace / REPORT_FILE, json.dumps(report, indent=2, default=str))
