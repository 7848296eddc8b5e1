"""Party-side preparation: correct pre-aggregates, anonymized outputs, quarantine, no-op reruns."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cleanroom.analyses.category_month_sales import GRID_FILE as CATEGORY_MONTH_FILE
from cleanroom.party.preparation import REPORT_FILE, prepare_party
from cleanroom.party.runs import PartyRun
from cleanroom.party.versions import MANIFEST, current_version, version_dir, versions
from cleanroom.spec import AnalysisKind
from tests.conftest import home, prepared, small_disk
from tests.plaintext_oracle import plaintext_grid
from tests.reliability import CLEAR, fault, input_outcome

TX = "raw/transactions.csv"


def test_aggregates_match_independent_plaintext(prepared_workspace, small_spec) -> None:
    """All three layouts (canonical CSV, and Alpine's mapped CSV + Parquet) give the oracle's grid."""
    analysis = small_spec.spec.analysis(AnalysisKind.CATEGORY_MONTH_SALES)
    cells = analysis.cells
    for party in small_spec.spec.data_parties:
        grid_file = prepared(prepared_workspace, party.name) / CATEGORY_MONTH_FILE
        grid = np.frombuffer(grid_file.read_bytes(), "<i8").reshape(2, cells)
        sales, customers = plaintext_grid([home(prepared_workspace, party.name) / "raw"], analysis)
        assert grid[0].tolist() == sales
        assert grid[1].tolist() == customers


def test_prepared_outputs_are_anonymized(prepared_workspace) -> None:
    version = prepared(prepared_workspace, "harbor")
    raw = pl.read_csv(home(prepared_workspace, "harbor") / "raw" / "customers.csv")
    customers = pl.read_parquet(version / "customers.parquet")
    assert customers.columns == ["customer_code", "customer_pseudonym", "age_band", "postcode_prefix"]
    counts = customers.group_by("age_band", "postcode_prefix").len()["len"]
    assert counts.min() >= 5  # the demo spec's k
    transactions = pl.read_parquet(version / "transactions.parquet")
    assert "customer_id" not in transactions.columns and "transaction_id" not in transactions.columns
    # Only join_keys.parquet (kept for overlap counting) may hold identifiers, and only normalized ones.
    blob = b"".join(p.read_bytes() for p in version.iterdir() if p.name != "join_keys.parquet")
    for value in raw["email"].head(50).to_list() + raw["full_name"].head(50).to_list():
        assert value.encode() not in blob
        assert value.lower().encode() not in blob
    for value in raw["customer_id"].head(50).to_list():
        assert value.encode() not in blob
    keys = pl.read_parquet(version / "join_keys.parquet")
    assert keys["phone_key"].str.contains(r"^\+49[0-9]{9}$").all()  # harbor writes "+49 151 234 5678"
    assert (keys["email_key"] == keys["email_key"].str.to_lowercase()).all()


def test_pseudonyms_link_the_same_email_across_parties_only_through_the_key(prepared_workspace) -> None:
    """Normalized emails agree across retailers (overlap is countable); pseudonyms are keyed."""
    keys = [
        pl.read_parquet(prepared(prepared_workspace, p) / "join_keys.parquet") for p in ("northwind", "harbor")
    ]
    shared = set(keys[0]["email_key"].drop_nulls()) & set(keys[1]["email_key"].drop_nulls())
    assert shared  # the demo population puts some people at several retailers


@pytest.fixture()
def harbor(tmp_path: Path, small_workspace) -> Path:
    """A private copy of Harbor's workspace (exports and pseudonym key), not yet prepared."""
    folder = tmp_path / "harbor"
    source = home(small_workspace, "harbor")
    shutil.copytree(source / "raw", folder / "raw")
    shutil.copytree(source / "secrets", folder / "secrets")
    return folder


def edit_csv(path: Path, *columns: pl.Expr) -> None:
    pl.read_csv(path, infer_schema=False).with_columns(*columns).write_csv(path)


def first_rows(n: int, value: object, otherwise: str) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) < n).then(pl.lit(value)).otherwise(pl.col(otherwise)).alias(otherwise)


def test_bad_rows_go_to_quarantine_with_reasons(harbor: Path, small_spec) -> None:
    path = harbor / TX
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.with_columns(
        first_rows(1, "-250", "unit_price_cents"),
        first_rows(2, "0", "quantity"),
    )
    future = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat(timespec="seconds")
    frame[2, "purchased_at"] = future
    frame[3, "gtin"] = "4006380999999"  # not in Harbor's catalogue
    frame[4, "transaction_id"] = frame[5, "transaction_id"]
    frame.write_csv(path)
    summary = prepare_party(small_spec.spec, "harbor", harbor)
    assert summary.status == "ok" and summary.quarantined
    quarantine = pl.read_parquet(harbor / "quarantine" / "transactions.parquet")
    reasons = dict(zip(quarantine["transaction_id"], quarantine["reason"]))
    tx = frame["transaction_id"]
    assert "unit_price_cents:expect_column_values_to_be_between" in reasons[tx[0]]
    assert "quantity:expect_column_values_to_be_between" in reasons[tx[1]]
    assert "purchased_at:expect_column_values_to_be_between" in reasons[tx[2]]
    assert "product_id:expect_column_values_to_be_in_set" in reasons[tx[3]]
    assert "transaction_id:expect_column_values_to_be_unique" in reasons[tx[5]]
    assert quarantine.height == 6  # both rows sharing the duplicated id
    # The rows kept as exported: the data engineer sees what to fix.
    assert quarantine.filter(pl.col("transaction_id") == tx[0])["unit_price_cents"][0] == "-250"
    # The summary (what the coordinator sees) says that rows were quarantined, not which or how many.
    assert tx[0] not in summary.to_json() and "-250" not in summary.to_json()


def test_data_docs_agree_with_row_checks_and_hold_no_identifier(harbor: Path, small_spec) -> None:
    path = harbor / "raw" / "customers.csv"
    secrets = ["leak.one@secret.example", "Hidden Person Name"]
    edit_csv(path, first_rows(1, "not-an-email " + secrets[0], "email"), first_rows(1, secrets[1], "full_name"))
    frame = pl.read_csv(path, infer_schema=False)
    frame[1, "birth_date"] = "2090-01-01"  # in the future: quarantined
    frame.write_csv(path)
    summary = prepare_party(small_spec.spec, "harbor", harbor)
    assert "customers.email:expect_column_values_to_match_regex" in summary.failed_warning
    report = json.loads((harbor / REPORT_FILE).read_text())
    polars_counts = {r["label"]: r["failing_rows"] for t in report["tables"].values() for r in t["rules"]}
    for outcome in report["data_docs"]:
        if outcome["unexpected_count"] is not None:
            assert outcome["unexpected_count"] == polars_counts[outcome["label"]], outcome["label"]
    assert polars_counts["customers.birth_date:expect_column_values_to_be_between"] == 1
    docs = list((harbor / "gx").rglob("*"))
    assert any(p.name == "index.html" for p in docs)
    for path in docs:
        if path.is_file():
            text = path.read_bytes()
            for secret in secrets + frame["customer_id"].head(20).to_list() + [frame["email"][5]]:
                assert secret.encode() not in text, (path, secret)


def test_rerun_with_unchanged_input_is_a_no_op(harbor: Path, small_spec) -> None:
    first = prepare_party(small_spec.spec, "harbor", harbor)
    grid = version_dir(harbor, first.version) / CATEGORY_MONTH_FILE
    stamp = grid.stat().st_mtime_ns
    again = prepare_party(small_spec.spec, "harbor", harbor)
    assert again.status == "unchanged" and again.aggregate_digest == first.aggregate_digest
    assert again.version == first.version and grid.stat().st_mtime_ns == stamp
    edit_csv(harbor / TX, first_rows(1, "7", "quantity"))
    changed = prepare_party(small_spec.spec, "harbor", harbor)
    assert changed.status == "ok" and changed.aggregate_digest != first.aggregate_digest


def test_expired_prepared_files_are_deleted_then_rebuilt(harbor: Path, small_spec) -> None:
    first = prepare_party(small_spec.spec, "harbor", harbor)
    old = time.time() - 91 * 86400  # transactions are kept 90 days in the demo spec
    os.utime(version_dir(harbor, first.version) / "transactions.parquet", (old, old))
    summary = prepare_party(small_spec.spec, "harbor", harbor)
    assert summary.status == "ok"  # not "unchanged": the expired version was deleted, then rebuilt
    report = json.loads((harbor / REPORT_FILE).read_text())
    assert report["expired_files_deleted"] == [f"prepared/{first.version}"]
    assert (version_dir(harbor, summary.version) / "transactions.parquet").stat().st_mtime > old


def test_a_failed_run_leaves_the_previous_outputs_whole(harbor: Path, small_spec) -> None:
    from cleanroom.errors import DataContractError

    first = prepare_party(small_spec.spec, "harbor", harbor)
    manifest = (version_dir(harbor, first.version) / MANIFEST).read_text()
    edit_csv(harbor / TX, pl.lit("-1").alias("quantity"))
    with pytest.raises(DataContractError):
        prepare_party(small_spec.spec, "harbor", harbor)
    assert current_version(harbor) == version_dir(harbor, first.version)
    assert (version_dir(harbor, first.version) / MANIFEST).read_text() == manifest
    assert json.loads(manifest)["aggregate_digest"] == first.aggregate_digest
    assert [v.name for v in versions(harbor)] == [first.version]
    assert not list((harbor / "prepared").glob(".staging*"))  # nothing half-written is left


def test_a_run_keeps_reading_its_version_while_another_prepares(harbor: Path, small_spec) -> None:
    """Prepared data is immutable per content: a newer preparation never changes what a run pinned."""
    first = prepare_party(small_spec.spec, "harbor", harbor)
    run = PartyRun(harbor, "20261201T000000Z-0001")
    run.pin(first.version)
    before = {p.name: p.read_bytes() for p in run.prepared().iterdir()}
    edit_csv(harbor / TX, first_rows(1, "7", "quantity"))
    changed = prepare_party(small_spec.spec, "harbor", harbor)
    assert changed.version != first.version and current_version(harbor) == version_dir(harbor, changed.version)
    assert run.prepared() == version_dir(harbor, first.version)
    assert {p.name: p.read_bytes() for p in run.prepared().iterdir()} == before


@pytest.mark.reliability
def test_k_anonymity_that_would_remove_the_customers_stops_the_party(harbor: Path, small_spec) -> None:
    """`k_anonymity: 100000` removed all customers and the party still reported k satisfied, status ok."""
    from cleanroom.errors import DataContractError
    from cleanroom.party.anonymization import enforce_k_anonymity

    spec = small_spec.spec
    strict = spec.model_copy(update={"privacy": spec.privacy.model_copy(update={"k_anonymity": 100_000})})
    before = versions(harbor)
    with pytest.raises(DataContractError) as stopped:
        prepare_party(strict, "harbor", harbor)
    assert input_outcome("k-anonymity removing every customer", stopped.value) == CLEAR
    assert stopped.value.message == (  # no figure of the party: the message reaches the coordinator
        "k-anonymity (k=100000 over age_band, postcode_prefix) would remove more than 5% of the party's customers"
    )
    assert versions(harbor) == before and not list((harbor / "prepared").glob(".staging*"))
    frame = pl.DataFrame({"age_band": ["30-39"] * 3, "postcode_prefix": ["10"] * 3})
    kept, outcome = enforce_k_anonymity(frame, ["age_band", "postcode_prefix"], 5)
    assert kept.height == 0 and outcome.records_removed == 3 and not outcome.satisfied
    assert enforce_k_anonymity(frame, ["age_band", "postcode_prefix"], 3)[1].satisfied


@pytest.mark.reliability
def test_two_runs_re_preparing_at_once_both_get_the_same_version(harbor: Path, small_spec) -> None:
    """Two processes preparing one workspace at once broke Great Expectations' shared gx/ context in one
    of them: preparation holds the party's lock, so the second waits, then finds the work done."""
    import subprocess
    import sys

    from cleanroom.party.validation import DATA_DOCS_INDEX

    script = (
        "import sys; from pathlib import Path; from cleanroom.spec import pin_spec; "
        "from cleanroom.party.preparation import prepare_party; "
        "s = prepare_party(pin_spec(Path(sys.argv[1])).spec, 'harbor', Path(sys.argv[2])); "
        "print(s.status, s.version)"
    )
    command = [sys.executable, "-c", script, str(small_spec.path), str(harbor)]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), [err[-2000:] for _, err in outcomes]
    statuses = sorted(out.split()[0] for out, _ in outcomes)
    fault("two preparations of one workspace at once", statuses == ["ok", "unchanged"])
    assert statuses == ["ok", "unchanged"] and len({out.split()[1] for out, _ in outcomes}) == 1
    assert (harbor / DATA_DOCS_INDEX).is_file() and len(versions(harbor)) == 1


@pytest.mark.reliability
def test_a_full_disk_stops_the_party_with_one_line_and_nothing_half_written(harbor: Path, small_spec) -> None:
    """A real tmpfs with room for the exports and little else (the machines are root)."""

    from cleanroom.errors import StorageError

    disk = harbor.parent / "small-disk"
    exports = sum(f.stat().st_size for f in harbor.rglob("*") if f.is_file()) // 1024
    with small_disk(disk, exports + 300):
        shutil.copytree(harbor, disk / "harbor")
        with pytest.raises(StorageError) as full:
            prepare_party(small_spec.spec, "harbor", disk / "harbor")
        half_written = len(versions(disk / "harbor")) + len(list((disk / "harbor" / "prepared").glob(".staging*")))
        assert input_outcome("preparation on a full disk", full.value, half_written) == CLEAR
        assert full.value.one_line().startswith(f"party harbor: {disk / 'harbor'}: No space left on device — fix:")
        assert not versions(disk / "harbor") and not list((disk / "harbor" / "prepared").glob(".staging*"))
        assert not (disk / "harbor" / "quarantine.staging").exists()
