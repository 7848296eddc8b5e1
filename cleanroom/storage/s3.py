"""The S3 object store, through boto3 against any endpoint (moto on loopback, MinIO or AWS)."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
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
    connect_timeout: float = field(default=10.0, compare=False)

    @cached_property
    def _client(self) -> Any:  # boto3 clients are thread-safe; building one costs tens of milliseconds
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id.get_secret_value(),
            aws_secret_access_key=self.secret_access_key.get_secret_value(),
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                signature_version="s3v4",
                connect_timeout=self.connect_timeout,
                read_timeout=60,
                max_pool_connections=32,
            ),
        )

    def client(self) -> Any:
        return self._client

    def ensure_bucket(self, bucket: str) -> None:
        client = self.client()
        try:
            client.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                raise _storage_error(exc, bucket) from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, bucket) from exc
        try:
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":  # another node made it
                raise _storage_error(exc, bucket) from exc
        except BotoCoreError as exc:
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

    def put_once(self, bucket: str, key: str, data: bytes) -> None:
        """Create an object that must not exist yet (exchange messages are written once)."""
        try:
            self.client().put_object(
                Bucket=bucket, Key=key, Body=data, IfNoneMatch="*", ServerSideEncryption=SERVER_SIDE_ENCRYPTION
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                raise StorageError(
                    "the object exists already: messages are written once",
                    where=f"s3://{bucket}/{key}",
                    fix="a second writer used this run id; start a new run",
                ) from exc
            raise _storage_error(exc, f"{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, f"{bucket}/{key}") from exc

    def get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""
        try:
            return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise _storage_error(exc, f"{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, f"{bucket}/{key}") from exc

    def delete(self, bucket: str, key: str) -> None:
        try:
            self.client().delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, f"{bucket}/{key}") from exc

    def check_writable(self, bucket: str, prefix: str, probe: str) -> None:
        """Reachable, credentials accepted, and the bucket takes and gives back an object under
        prefix: checked before a run computes anything, so its end cannot fail on the store's account."""
        key = f"{prefix}/.write-check/{probe}"
        self.ensure_bucket(bucket)
        self.put(bucket, key, b"")
        self.delete(bucket, key)

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client().head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise _storage_error(exc, f"{bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise _storage_error(exc, f"{bucket}/{key}") from exc

    def keys(self, bucket: str, prefix: str) -> list[str]:
        try:
            pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, f"{bucket}/{prefix}") from exc

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        keys = self.keys(bucket, prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[start : start + 1000]]
            try:
                self.client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            except (ClientError, BotoCoreError) as exc:
                raise _storage_error(exc, f"{bucket}/{prefix}") from exc
        return len(keys)

    def expire_prefix(self, bucket: str, prefix: str, days: int) -> None:
        """A lifecycle rule that removes what is left under `prefix` after `days` (the backstop for runs
        that could not clean up)."""
        rule = {
            "ID": f"expire-{prefix}",
            "Filter": {"Prefix": prefix},
            "Status": "Enabled",
            "Expiration": {"Days": days},
        }
        try:
            try:
                rules = self.client().get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchLifecycleConfiguration":
                    raise
                rules = []
            if rule in rules:
                return
            rules = [r for r in rules if r.get("ID") != rule["ID"]] + [rule]  # other rules of the bucket stay
            self.client().put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": rules}
            )
        except (ClientError, BotoCoreError) as exc:
            raise _storage_error(exc, bucket) from exc

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
                f"could not fetch the object back ({exc})",
                where=url.split("?")[0],
                fix="check the endpoint",
                transient=True,
            ) from exc


# Refusals that trying again will not change: wrong keys, no permission, no such bucket.
CREDENTIAL_ERRORS = {
    "403",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidToken",
    "ExpiredToken",
}


def _storage_error(exc: Exception, where: str) -> StorageError:
    """One line for a failed request: what the store said (or that it could not be reached) and which
    setting to check; transient unless the store refused."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, status = error.get("Code", "?"), exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        credentials = code in CREDENTIAL_ERRORS
        return StorageError(
            f"the object store refused the request ({code})",
            where=f"s3://{where}",
            fix="check CLEANROOM_AWS_ACCESS_KEY_ID, CLEANROOM_AWS_SECRET_ACCESS_KEY and the bucket's permissions"
            if credentials
            else "check the store's status and CLEANROOM_S3_ENDPOINT_URL",
            transient=not credentials and (status >= 500 or code in ("SlowDown", "RequestTimeout", "Throttling")),
        )
    return StorageError(
        f"the object store could not be reached ({type(exc).__name__})",
        where=f"s3://{where}",
        fix="check CLEANROOM_S3_ENDPOINT_URL and that the store is running and reachable from here",
        transient=True,
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
