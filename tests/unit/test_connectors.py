"""The same data through every connector (CSV, Parquet, Latin-1 CSV, S3) prepares to the same result."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import polars as pl
import pytest
import yaml

from cleanroom.errors import DataContractError
from cleanroom.party.preparation import prepare_party
from cleanroom.spec import CollaborationSpec
from cleanroom.storage.moto_server import MotoServer
from tests.unit.test_preparation import harbor  # noqa: F401 - fixture


def spec_with_harbor_tables(small_spec, **tables: dict) -> CollaborationSpec:
    raw = json.loads(json.dumps(yaml.safe_load(small_spec.path.read_text()), default=str))
    harbor_tables = raw["parties"][1]["data"]["tables"]
    for table, changes in tables.items():
        harbor_tables[table] |= changes
    return CollaborationSpec.model_validate(raw)


def test_parquet_and_latin1_exports_prepare_like_csv(harbor: Path, small_spec) -> None:  # noqa: F811
    baseline = prepare_party(small_spec.spec, "harbor", harbor).aggregate_digest
    pl.read_csv(harbor / "raw/transactions.csv", infer_schema=False).write_parquet(harbor / "raw/tx.parquet")
    customers = (harbor / "raw/customers.csv").read_text(encoding="utf-8")
    customers = customers.replace("Silva", "Simões")  # a character Latin-1 can hold
    (harbor / "raw/kunden-latin1.csv").write_bytes(customers.encode("latin-1"))
    spec = spec_with_harbor_tables(
        small_spec,
        transactions={"location": "raw/tx.parquet"},
        customers={"location": "raw/kunden-latin1.csv", "encoding": "latin-1"},
    )
    assert prepare_party(spec, "harbor", harbor).aggregate_digest == baseline


@pytest.mark.slow
def test_s3_export_is_fetched_into_the_party_cache(harbor: Path, small_spec, tmp_path, monkeypatch) -> None:  # noqa: F811
    baseline = prepare_party(small_spec.spec, "harbor", harbor).aggregate_digest
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "harbor-exports")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "harbor-exports-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    with MotoServer(tmp_path / "moto") as server:
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url)
        s3.create_bucket(Bucket="harbor-exports", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        s3.upload_file(str(harbor / "raw/transactions.csv"), "harbor-exports", "daily/transactions.csv")
        location = {"location": "s3://harbor-exports/daily/transactions.csv", "endpoint_url": server.endpoint_url}
        spec = spec_with_harbor_tables(small_spec, transactions=location)
        assert prepare_party(spec, "harbor", harbor).aggregate_digest == baseline
        assert (harbor / "cache" / "transactions.csv").exists()
        missing = spec_with_harbor_tables(
            small_spec, transactions=location | {"location": "s3://harbor-exports/daily/nope.csv"}
        )
        with pytest.raises(DataContractError) as caught:
            prepare_party(missing, "harbor", harbor)
        assert "party harbor: s3://harbor-exports/daily/nope.csv: object not found" in caught.value.one_line()
