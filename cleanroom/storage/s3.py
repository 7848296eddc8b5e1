"""The S3 object store, through boto3 against any endpoint (moto on loopback, MinIO or AWS)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from cleanroom.errors import StorageError

SERVER_SIDE_ENCRYPTION = "AES256"


@dataclass
class S3ObjectStore:
    endpoint_url: str | None
    region: str
    access_key_id: SecretStr
    secret_access_key: SecretStr

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id.get_secret_value(),
            aws_secret_access_key=self.secret_access_key.get_secret_value(),
            config=Config(retries={"max_attempts": 5, "mode": "standard"}, signature_version="s3v4"),
        )

    def ensure_bucket(self, bucket: str) -> None:
        client = self.client()
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise _storage_error(exc, bucket) from exc
        try:
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, bucket) from exc

    def put(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Upload with server-side encryption requested; return the s3:// URI."""
        try:
            response = self.client().put_object(
                Bucket=bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                ServerSideEncryption=SERVER_SIDE_ENCRYPTION,
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, f"{bucket}/{key}") from exc
        if response.get("ServerSideEncryption") != SERVER_SIDE_ENCRYPTION:
            raise StorageError(
                "the store did not confirm server-side encryption",
                where=f"s3://{bucket}/{key}",
                fix="enable SSE-S3 on the bucket or use a store that supports it",
            )
        return f"s3://{bucket}/{key}"

    def presigned_get_url(self, bucket: str, key: str, expires_seconds: int = 900) -> str:
        return self.client().generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds
        )

    def fetch_presigned(self, url: str) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read()
        except OSError as exc:
            raise StorageError(
                "could not fetch the object back", where=url.split("?")[0], fix="check the endpoint"
            ) from exc


def _storage_error(exc: Exception, where: str) -> StorageError:
    return StorageError(
        f"S3 request failed ({type(exc).__name__})",
        where=f"s3://{where}",
        fix="check CLEANROOM_S3_ENDPOINT_URL and the credentials",
    )


@contextmanager
def object_store(
    endpoint_url: str | None, region: str, access_key_id: SecretStr, secret_access_key: SecretStr, log_dir: Path
) -> Iterator[S3ObjectStore]:
    """The configured S3 endpoint, or, when none is set, moto's server on loopback for the block."""
    if endpoint_url:
        yield S3ObjectStore(endpoint_url, region, access_key_id, secret_access_key)
        return
    from cleanroom.storage.moto_server import MotoServer

    with MotoServer(log_dir) as server:
        yield S3ObjectStore(server.endpoint_url, region, access_key_id, secret_access_key)
